import CDVSystem
import DVBasics
import DVCluster
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
    var options = options
    options.executor = options.executor ?? config.executor
    options.resources = config.resources
    let executor = PipelineExecutor(
      pipeline: pipeline, lock: try LockFile.load(workspaceRoot: root), builder: try builder(),
      cacheTypes: config.cacheTypes, observer: observer, registry: plugins, recorder: recorder,
      executors: [.local: LocalExecutor(), .slurm: slurmExecutor()])
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

extension Workspace {
  /// The Slurm executor of this workspace: jobs run this dv binary, in the workspace as this
  /// machine sees it (the nodes must see it at the same path).
  func slurmExecutor() -> SlurmExecutor {
    let executable = FileSystem.realPath("/proc/self/exe") ?? CommandLine.arguments[0]
    return SlurmExecutor(
      settings: .init(
        workspaceRoot: root, dvExecutable: executable, pollInterval: config.slurmPollInterval,
        environment: ProcessInfo.processInfo.environment))
  }

  /// Runs one stage's command or plugin here, as a cluster job does on its node (`dv
  /// exec-stage`): no lock, no staleness, no recording; the submitting dv does all that.
  /// `fingerprint` is the stage's identity when it was submitted: a stages.yaml changed since
  /// then is refused rather than run.
  public func executeStage(named name: String, fingerprint: String) throws {
    guard let pipeline = try PipelineLoader(workspaceRoot: root).load(),
      let stage = pipeline.stages.first(where: { $0.name == name })
    else { throw ReproError.unknownStage(name) }
    guard try plugins.fingerprint(stage) == fingerprint else {
      throw StageRunError.failed("stage '\(name)' in stages.yaml changed after dv submitted this job; run `dv repro` again")
    }
    let (plugin, config) = try plugins.resolve(stage)
    try plugin.validate(config: config)
    for out in stage.outs { try FileSystem.createDirectory(out.path.parent.absolute(under: root)) }
    dv_forward_signals_install()
    let context = StageContext(stage: stage, config: config, workspaceRoot: root)
    let failure = Locked<Error?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
      do { try await plugin.run(context) } catch { failure.withLock { $0 = error } }
      done.signal()
    }
    done.wait()
    if let error = failure.withLock({ $0 }) { throw error }
  }
}
