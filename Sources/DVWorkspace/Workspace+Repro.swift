import DVBasics
import DVPipeline

extension Workspace {
  /// Runs the stale stages of stages.yaml (see `PipelineExecutor`), holding the writer lock.
  public func repro(_ options: ReproOptions, observer: ReproObserver) throws -> [(name: String, outcome: StageOutcome)]
  {
    let lock = try lockForWriting()
    defer { lock.release() }
    guard let pipeline = try pipeline() else { return [] }
    let executor = PipelineExecutor(
      pipeline: pipeline, lock: try LockFile.load(workspaceRoot: root), builder: try builder(),
      cacheTypes: config.cacheTypes, observer: observer)
    return try executor.run(options)
  }
}
