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
      cacheTypes: config.cacheTypes, observer: observer, registry: plugins)
    if !config.noSCM && !options.dryRun {
      // Cached outputs belong in the cache, not in git, as with `dv add`.
      for stage in pipeline.stages {
        for out in stage.outs where out.cache {
          try FileSystem.createDirectory(out.path.parent.absolute(under: root))
          _ = try GitIgnoreEntries.add(out.path, root: root)
        }
      }
    }
    return try executor.run(options)
  }
}
