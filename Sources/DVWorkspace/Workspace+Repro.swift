import DVBasics
import DVLineage
import DVPipeline
import Foundation

extension Workspace {
  /// Runs the stale stages of stages.yaml (see `PipelineExecutor`), holding the writer lock.
  public func repro(_ options: ReproOptions, observer: ReproObserver) throws -> [(name: String, outcome: StageOutcome)]
  {
    let lock = try lockForWriting()
    defer { lock.release() }
    guard let pipeline = try pipeline() else { return [] }
    var recorder: LedgerRecorder?
    // DV_NO_LEDGER=1 exists only so Benchmarks/bench-lineage can measure what recording costs.
    if !options.dryRun && ProcessInfo.processInfo.environment["DV_NO_LEDGER"] != "1" {
      let ledger = try openLedger()
      recorder = LedgerRecorder(ledger: ledger, runID: try beginLedgerRun(ledger, command: "repro"))
    }
    let executor = PipelineExecutor(
      pipeline: pipeline, lock: try LockFile.load(workspaceRoot: root), builder: try builder(),
      cacheTypes: config.cacheTypes, observer: observer, registry: plugins, recorder: recorder)
    if !config.noSCM && !options.dryRun {
      // Cached outputs belong in the cache, not in git, as with `dv add`.
      for stage in pipeline.stages {
        for out in stage.outs where out.cache {
          try FileSystem.createDirectory(out.path.parent.absolute(under: root))
          _ = try GitIgnoreEntries.add(out.path, root: root)
        }
      }
    }
    do {
      let outcomes = try executor.run(options)
      if let recorder { try? recorder.ledger.finishRun(recorder.runID, status: .succeeded) }
      return outcomes
    } catch {
      if let recorder {
        let status: RunStatus = (error as? DVError)?.kind == .interrupted ? .interrupted : .failed
        try? recorder.ledger.finishRun(recorder.runID, status: status)
      }
      throw error
    }
  }
}
