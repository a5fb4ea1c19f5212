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

extension Workspace {
  /// The plugins this workspace's stages can use: built-in ones, then `dv-plugin-<kind>`
  /// executables in `.pipeline/plugins/` and on PATH.
  public var plugins: PluginRegistry {
    BuiltInPlugins.registry(
      searchPath: PluginRegistry.searchPath(workspaceRoot: root, environment: ProcessInfo.processInfo.environment))
  }
}
