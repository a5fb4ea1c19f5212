import DVPipeline

extension Workspace {
  /// The validated stage graph of `stages.yaml`; nil when the workspace has none.
  public func pipeline() throws -> Pipeline? {
    try PipelineLoader(workspaceRoot: root).load()
  }
}
