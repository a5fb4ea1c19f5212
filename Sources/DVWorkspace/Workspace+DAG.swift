import DVPipeline
import DVPlugins
import Foundation

extension Workspace {
  /// The validated stage graph of `stages.yaml`; nil when the workspace has none. Every stage's
  /// plugin exists and accepts its configuration.
  public func pipeline() throws -> Pipeline? {
    guard let pipeline = try PipelineLoader(workspaceRoot: root).load() else { return nil }
    for stage in pipeline.stages {
      let (plugin, config) = try plugins.resolve(stage)
      try plugin.validate(config: config)
    }
    return pipeline
  }
}
