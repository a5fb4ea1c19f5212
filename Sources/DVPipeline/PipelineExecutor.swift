import CDVSystem
import DVBasics
import DVStorage
import Foundation

/// Hears what `repro` does as it does it, so the CLI can print between the stages' own output.
/// With several jobs, `stageOutput` is called from reader threads: implementations lock.
public protocol ReproObserver: AnyObject, Sendable {
  /// A line a stage's command wrote, when stages run in parallel (with one job their output goes
  /// straight to the terminal).
  func stageOutput(_ name: String, line: String)
  /// A stage is up to date (or frozen) and does not run.
  func stageSkipped(_ name: String, frozen: Bool)
  /// A stage is about to run (or, in a dry run, would run) for these reasons.
  func stageStarting(_ name: String, command: String, reasons: [StaleReason], dryRun: Bool)
  /// A stage ran and its outputs are recorded.
  func stageFinished(_ name: String)
  /// A stale stage's outputs were checked out from the run cache instead of running it.
  func stageRestored(_ name: String, reasons: [StaleReason])
  /// A stage failed and is started again (`retries:`); `attempt` is the run about to start.
  func stageRetrying(_ name: String, attempt: Int, of attempts: Int, reason: String)
}

/// Hears every stage run of `repro` for the lineage ledger, and answers run-cache lookups.
public protocol RunRecorder: AnyObject {
  /// A stage is up to date or frozen.
  func stageSkipped(_ stage: Stage, summary: String)
  /// A stale stage starts (runs or is restored); returns a token for `stageEnded`.
  func stageStarted(_ stage: Stage, summary: String, pluginKind: String?, pluginVersion: String?, key: String)
    -> Int64?
  /// How the stage run ended, with its lock record when it succeeded, and where it ran.
  func stageEnded(
    _ token: Int64?, outcome: StageOutcome, record: LockFile.StageRecord?, execution: ExecutionRecord?)
  /// The outputs of an earlier successful stage run with this run-cache key.
  func reusableOutputs(key: String) -> [LockFile.Entry]?
}

/// What `dv repro` should do.
public struct ReproOptions: Sendable {
  public var targets: [String] = []
  public var force = false
  public var dryRun = false
  /// Only the targets, not what they depend on.
  public var singleItem = false
  /// The targets and everything that depends on them.
  public var downstream = false
  /// After a failure, let stages that do not depend on it run.
  public var keepGoing = false
  /// How many independent stages may run at the same time.
  public var jobs = 1
  /// Restore a stale stage's outputs from an earlier run with the same inputs instead of running it.
  public var useRunCache = true
  /// Where stages run unless they name an executor themselves (`--executor`, else the config's;
  /// nil: local).
  public var executor: ExecutorKind?
  /// What stages ask of a cluster unless their `resources:` say otherwise (the config's).
  public var resources = StageResources()
  public init() {}
}

/// How one stage ended.
public enum StageOutcome: Sendable, Equatable {
  case ran
  /// Outputs checked out from the run cache.
  case restored
  case skipped
  case wouldRun
  case failed(exitCode: Int32)
  /// Not started because a stage it depends on failed.
  case blocked

  /// True when stages below must not run.
  var stopsDownstream: Bool {
    switch self {
    case .failed, .blocked: return true
    default: return false
    }
  }
}

/// Errors of running a pipeline.
public enum ReproError: DVError {
  /// A target names no stage.
  case unknownStage(String)
  /// A stage's command exited non-zero, or its plugin failed with a message.
  case stageFailed([(name: String, exitCode: Int32, message: String?)])
  /// A declared output was not created.
  case missingOutput(stage: String, path: String)
  /// An output about to be deleted holds content that is not in the cache.
  case wouldDeleteUncached(stage: String, path: String)
  /// SIGINT/SIGTERM stopped the run.
  case interrupted(stage: String)
  /// The command could not be started.
  case spawnFailed(stage: String, reason: String)
  /// A stage names an executor this dv was not given (`executor: slurm` without Slurm).
  case executorUnavailable(stage: String, ExecutorKind)

  public var kind: FailureKind {
    switch self {
    case .unknownStage: return .badInput
    case .interrupted: return .interrupted
    default: return .failed
    }
  }

  public var description: String {
    switch self {
    case .unknownStage(let name): return "no stage named '\(name)' in stages.yaml; `dv dag` lists them"
    case .stageFailed(let failures):
      return failures.map { failure in
        failure.message.map { "stage '\(failure.name)' failed: \($0)" }
          ?? "stage '\(failure.name)' failed with exit code \(failure.exitCode)"
      }.joined(separator: "; ")
        + "; finished stages are recorded in stages.lock, rerun `dv repro` after fixing it"
    case .missingOutput(let stage, let path):
      return "stage '\(stage)' did not create '\(path)'; make its command write it or remove it from outs"
    case .wouldDeleteUncached(let stage, let path):
      return "stage '\(stage)' would delete '\(path)' before running, and its content is not in the cache; "
        + "`dv add` it or move it away, or rerun with --force to discard it"
    case .interrupted(let stage):
      return "interrupted while stage '\(stage)' ran; finished stages are recorded, rerun `dv repro` to continue"
    case .spawnFailed(let stage, let reason): return "could not start stage '\(stage)': \(reason)"
    case .executorUnavailable(let stage, let kind):
      return "stage '\(stage)' runs on the \(kind.rawValue) executor, which is not available here"
    }
  }
}

/// Runs stale stages in dependency order, recording each in stages.lock as soon as it finishes,
/// and re-checking every stage against the new hashes (early cutoff).
public final class PipelineExecutor {
  let pipeline: Pipeline
  let builder: DataBuilder
  let cacheTypes: [LinkType]
  let observer: ReproObserver
  let registry: PluginRegistry
  let recorder: RunRecorder?
  let executors: [ExecutorKind: any StageExecutor]
  var lock: LockFile

  public init(
    pipeline: Pipeline, lock: LockFile, builder: DataBuilder, cacheTypes: [LinkType], observer: ReproObserver,
    registry: PluginRegistry = .builtIn, recorder: RunRecorder? = nil,
    executors: [ExecutorKind: any StageExecutor] = [.local: LocalExecutor()]
  ) {
    self.executors = executors
    self.registry = registry
    self.recorder = recorder
    self.pipeline = pipeline
    self.lock = lock
    self.builder = builder
    self.cacheTypes = cacheTypes
    self.observer = observer
  }

  private var root: String { builder.workspaceRoot }

  /// The stages `options` select, in dependency order.
  func selection(_ options: ReproOptions) throws -> [Int] {
    guard !options.targets.isEmpty else { return pipeline.order }
    var chosen = Set<Int>()
    for target in options.targets {
      let matches = pipeline.stages.indices.filter {
        pipeline.stages[$0].name == target || pipeline.stages[$0].name.hasPrefix(target + "@")
      }
      if matches.isEmpty { throw ReproError.unknownStage(target) }
      chosen.formUnion(matches)
    }
    if options.downstream { chosen = pipeline.graph.reachable(from: Array(chosen)) }
    if !options.singleItem {
      var upstream = DirectedGraph(count: pipeline.stages.count)
      for (from, tos) in pipeline.graph.successors.enumerated() {
        for to in tos { upstream.addEdge(from: to, to: from) }
      }
      chosen.formUnion(upstream.reachable(from: Array(chosen)))
    }
    return pipeline.order.filter { chosen.contains($0) }
  }

  /// Runs the pipeline; returns each selected stage's outcome, or throws after recording what
  /// finished when a stage fails or a signal arrives.
  public func run(_ options: ReproOptions) throws -> [(name: String, outcome: StageOutcome)] {
    let selected = try selection(options)
    // From here a Ctrl-C is noted, not fatal: plugins working inside dv stop at their next check,
    // and finished stages stay recorded.
    if !options.dryRun { dv_forward_signals_install() }
    var plugins: [Int: (any StagePlugin, PluginConfig)] = [:]
    for i in selected {
      let resolved = try registry.resolve(pipeline.stages[i])
      try resolved.0.validate(config: resolved.1)
      plugins[i] = resolved
    }
    if !options.dryRun { try pipeline.checkDependenciesExist(workspaceRoot: root) }
    let inSelection = Set(selected)
    let predecessors = pipeline.graph.predecessors.map { $0.filter { inSelection.contains($0) } }
    let jobs = max(1, options.jobs)
    var outcomes: [Int: StageOutcome] = [:]
    var failures: [(String, Int32, String?)] = []
    var pending = selected
    var running = Set<Int>()
    var stopStarting = false
    var interruptedStage: String?
    // Stage runs report here from their tasks; the scheduler (this thread) owns everything else.
    let completions = Locked<[(Int, Result<ExecutionRecord, Error>)]>([])
    let completed = DispatchSemaphore(value: 0)
    let sources = Locked<[Int: String]>([:])
    var tokens: [Int: Int64?] = [:]
    var stageJobs: [Int: (job: StageJob, executor: any StageExecutor)] = [:]
    var attempts: [Int: Int] = [:]
    /// Starts attempt `attempts[i]` of stage `i` on its executor, reporting to `completions`.
    func launch(_ i: Int) {
      let (job, executor) = stageJobs[i]!
      let attempt = attempts[i, default: 1]
      running.insert(i)
      Task.detached {
        let result: Result<ExecutionRecord, Error>
        do {
          result = .success(try await executor.run(job, attempt: attempt))
        } catch {
          result = .failure(error)
        }
        completions.withLock { $0.append((i, result)) }
        completed.signal()
      }
    }

    while !pending.isEmpty || !running.isEmpty {
      // Start every stage whose upstream is settled, up to the job limit, in file order.
      var k = 0
      while !stopStarting, running.count < jobs, k < pending.count {
        let i = pending[k]
        if predecessors[i].contains(where: { outcomes[$0] == nil }) {
          k += 1
          continue
        }
        pending.remove(at: k)
        let stage = pipeline.stages[i]
        if predecessors[i].contains(where: { outcomes[$0]?.stopsDownstream == true }) {
          outcomes[i] = .blocked
          continue
        }
        if stage.frozen {
          if !options.dryRun { recorder?.stageSkipped(stage, summary: try registry.summary(stage)) }
          observer.stageSkipped(stage.name, frozen: true)
          outcomes[i] = .skipped
          continue
        }
        // Checked only now, against the hashes its upstream just recorded: early cutoff.
        var params = ParamsReader(root: root)
        var reasons = try StalenessChecker(pipeline: pipeline, lock: lock, builder: builder, registry: registry)
          .ownReasons(stage, params: &params)
        if options.dryRun {
          for p in predecessors[i] where outcomes[p] == .wouldRun { reasons.append(.upstream(pipeline.stages[p].name)) }
        }
        if reasons.isEmpty && !options.force {
          if !options.dryRun { recorder?.stageSkipped(stage, summary: try registry.summary(stage)) }
          observer.stageSkipped(stage.name, frozen: false)
          outcomes[i] = .skipped
          continue
        }
        if options.dryRun {
          observer.stageStarting(stage.name, command: try registry.summary(stage), reasons: reasons, dryRun: true)
          outcomes[i] = .wouldRun
          continue
        }
        let (plugin, config) = plugins[i]!
        let key = try runCacheKey(stage, params: &params)
        let builtIn = plugin.kind == ShellPlugin.kind
        let token = recorder?.stageStarted(
          stage, summary: try registry.summary(stage), pluginKind: builtIn ? nil : plugin.kind,
          pluginVersion: builtIn ? nil : plugin.version, key: key)
        tokens[i] = token
        do {
          // `--force` means run: an earlier run's outputs are not what was asked for.
          if options.useRunCache && !options.force && !plugin.readsExternalSource,
            let restored = try restoreFromRunCache(stage, key: key)
          {
            recorder?.stageEnded(token, outcome: .restored, record: restored, execution: nil)
            observer.stageRestored(stage.name, reasons: reasons)
            outcomes[i] = .restored
            continue
          }
          let kind = stage.executor ?? options.executor ?? .local
          guard let executor = executors[kind] else { throw ReproError.executorUnavailable(stage: stage.name, kind) }
          let context = makeContext(stage, index: i, config: config, parallel: jobs > 1, sources: sources)
          let job = StageJob(
            context: context, plugin: plugin, resources: stage.resources.over(options.resources), key: key,
            fingerprint: try registry.fingerprint(stage))
          stageJobs[i] = (job, executor)
          observer.stageStarting(stage.name, command: try registry.summary(stage), reasons: reasons, dryRun: false)
          // A job an earlier (killed) dv left for exactly this run is writing these outputs:
          // they are waited for, never removed.
          if try !executor.hasExistingJob(for: job) { try removeOutputs(of: stage, force: options.force) }
          // From here until the lock entry is written, whatever appears at the outputs is this
          // run's: if dv is killed meanwhile, the next run may delete it (see `removeOutputs`).
          try LeftoverOutputs(root: root, stage: stage.name).markRunning(
            stage.outs.filter { !$0.persist }.map(\.path.value))
        } catch {
          recorder?.stageEnded(token, outcome: .failed(exitCode: 1), record: nil, execution: nil)
          throw error
        }
        for out in stage.outs { try FileSystem.createDirectory(out.path.parent.absolute(under: root)) }
        attempts[i] = 1
        launch(i)
      }
      if running.isEmpty {
        // Nothing runs and nothing more may start: what is left is blocked or not reached.
        if stopStarting || pending.isEmpty { break }
        continue
      }

      completed.wait()
      guard let (index, completion) = completions.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
      running.remove(index)
      let stage = pipeline.stages[index]
      // What the executor reports of a failure (a cluster job's state) travels beside the error.
      var execution: ExecutionRecord?
      let result: Result<Void, Error>
      switch completion {
      case .success(let record):
        execution = record
        result = .success(())
      case .failure(let failure as ExecutionFailure):
        execution = failure.record
        result = .failure(failure.error)
      case .failure(let error):
        result = .failure(error)
      }
      execution?.attempts = attempts[index, default: 1]
      if case .failure = result { rememberLeftovers(of: stage) }
      let token = tokens[index] ?? nil
      if dv_received_signal() != 0 {
        interruptedStage = interruptedStage ?? stage.name
        stopStarting = true
      }
      // `retries:` starts a failed run again, after removing what the failed run left (it is
      // this run's own, remembered just above); a signal or a stage that cannot start is final.
      if case .failure(let error) = result, dv_received_signal() == 0, attempts[index, default: 1] <= stage.retries {
        var retryable = true
        if case StageRunError.couldNotStart = error { retryable = false }
        if case StageRunError.interrupted = error { retryable = false }
        if retryable {
          let attempt = attempts[index, default: 1] + 1
          observer.stageRetrying(stage.name, attempt: attempt, of: stage.retries + 1, reason: "\(error)")
          do {
            try removeOutputs(of: stage, force: false)
            try LeftoverOutputs(root: root, stage: stage.name).markRunning(
              stage.outs.filter { !$0.persist }.map(\.path.value))
          } catch {
            recorder?.stageEnded(token, outcome: .failed(exitCode: 1), record: nil, execution: execution)
            throw error
          }
          attempts[index] = attempt
          launch(index)
          continue
        }
      }
      switch result {
      case .success:
        var params = ParamsReader(root: root)
        let recorded: LockFile.StageRecord
        do {
          recorded = try record(stage, source: sources.withLock { $0[index] }, params: &params)
        } catch {
          // What is there now is known by hash: the "running" note must not outlive this run,
          // or a file the user writes there later would be taken for this run's leftover.
          rememberLeftovers(of: stage)
          recorder?.stageEnded(token, outcome: .failed(exitCode: 1), record: nil, execution: execution)
          throw error
        }
        recorder?.stageEnded(token, outcome: .ran, record: recorded, execution: execution)
        observer.stageFinished(stage.name)
        outcomes[index] = .ran
      case .failure(let error):
        let code: Int32
        switch error {
        case StageRunError.exited(let exitCode): code = exitCode
        case StageRunError.interrupted: code = 130
        default: code = 1
        }
        recorder?.stageEnded(token, outcome: .failed(exitCode: code), record: nil, execution: execution)
      }
      switch result {
      case .success: break
      case .failure(StageRunError.interrupted):
        interruptedStage = interruptedStage ?? stage.name
        outcomes[index] = .failed(exitCode: 130)
        stopStarting = true
      case .failure(StageRunError.exited(let code)):
        if dv_received_signal() != 0 {
          interruptedStage = interruptedStage ?? stage.name
          stopStarting = true
        } else {
          failures.append((stage.name, code, nil))
          if !options.keepGoing { stopStarting = true }
        }
        outcomes[index] = .failed(exitCode: code)
      case .failure(StageRunError.couldNotStart(let reason)):
        throw ReproError.spawnFailed(stage: stage.name, reason: reason)
      case .failure(StageRunError.failed(let message)):
        failures.append((stage.name, 1, message))
        outcomes[index] = .failed(exitCode: 1)
        if !options.keepGoing { stopStarting = true }
      case .failure(let error):
        failures.append((stage.name, 1, "\(error)"))
        outcomes[index] = .failed(exitCode: 1)
        if !options.keepGoing { stopStarting = true }
      }
    }
    if let interruptedStage { throw ReproError.interrupted(stage: interruptedStage) }
    if !failures.isEmpty { throw ReproError.stageFailed(failures) }
    return selected.compactMap { i in outcomes[i].map { (pipeline.stages[i].name, $0) } }
  }

  // MARK: - One stage

  /// What stage `index` gets while it runs: its output through the observer when stages run in
  /// parallel, and a place to record the version of an outside source it read.
  private func makeContext(
    _ stage: Stage, index: Int, config: PluginConfig, parallel: Bool, sources: Locked<[Int: String]>
  ) -> StageContext {
    let observer = self.observer
    let name = stage.name
    return StageContext(
      stage: stage, config: config, workspaceRoot: root,
      output: parallel ? { @Sendable line in observer.stageOutput(name, line: line) } : nil,
      recordSource: { @Sendable version in sources.withLock { $0[index] = version } })
  }

  /// Outputs are deleted before a stage runs (unless `persist`), but never content that exists
  /// nowhere else: what is not in the cache, and is neither this stage's own recorded uncached
  /// output nor what its last failed or killed run left behind, stops the run (unless `force`).
  private func removeOutputs(of stage: Stage, force: Bool) throws {
    let recorded = lock.record(for: stage.name)
    let leftovers = LeftoverOutputs(root: root, stage: stage.name)
    let leftBehind = leftovers.load()
    // Deleting, creating parents or the stage writing through a symlinked directory could reach
    // outside the workspace.
    for out in stage.outs { try out.path.requireNoSymlinkedAncestor(under: root) }
    for out in stage.outs where !out.persist {
      let absolute = out.path.absolute(under: root)
      guard FileSystem.exists(absolute) else { continue }
      if !force, let current = try builder.build(out.path, mode: .inspect, wantManifest: true) {
        let ownUncached =
          !out.cache && recorded?.outs.contains { $0.path == out.path && $0.hash == current.hash } == true
        let cached: Bool
        if let manifest = current.manifest {
          // Every file cached is enough: a directory half deleted by a killed run has no manifest
          // in the cache, yet nothing in it would be lost.
          cached = manifest.entries.allSatisfy { builder.cache.contains($0.hash) }
        } else {
          cached = builder.cache.contains(current.hash)
        }
        let ownLeftover =
          leftBehind.hashes[out.path.value] == current.hash || leftBehind.running.contains(out.path.value)
        if !cached && !ownUncached && !ownLeftover {
          throw ReproError.wouldDeleteUncached(stage: stage.name, path: out.path.value)
        }
      }
      try FileSystem.removeTree(absolute)
    }
  }

  /// Notes the hashes of the outputs a failed run left, so that the next run may delete exactly
  /// that content (and nothing a user wrote since).
  private func rememberLeftovers(of stage: Stage) {
    var left: [String: ObjectID] = [:]
    for out in stage.outs where !out.persist {
      if let built = try? builder.build(out.path, mode: .inspect) { left[out.path.value] = built.hash }
    }
    LeftoverOutputs(root: root, stage: stage.name).save(left)
  }

  /// Hashes and caches the outputs, hashes the dependencies, and writes the stage's lock entry.
  @discardableResult
  private func record(
    _ stage: Stage, source: String?, params: inout ParamsReader, knownOutputs: [LockFile.Entry]? = nil
  ) throws -> LockFile.StageRecord {
    var outs: [LockFile.Entry] = knownOutputs ?? []
    for out in stage.outs where knownOutputs == nil {
      // Uncached outputs (metrics) are copied into the object store too, so the run cache can restore
      // them; nothing else refers to them there, and `dv gc` removes them.
      guard let built = try builder.build(out.path, mode: .ingest(out.cache ? cacheTypes : [.copy])) else {
        throw ReproError.missingOutput(stage: stage.name, path: out.path.value)
      }
      outs.append(LockFile.Entry(path: out.path, hash: built.hash, size: built.size, files: built.files))
    }
    var deps: [LockFile.Entry] = []
    for dep in stage.deps {
      guard let built = try builder.build(dep.path, mode: .inspect) else { continue }
      deps.append(LockFile.Entry(path: dep.path, hash: built.hash, size: built.size, files: built.files))
    }
    var grouped: [(file: String, values: [(key: String, value: ConfigValue)])] = []
    for param in stage.params {
      let value = try params.value(of: param.key, in: param.file) ?? .null
      if let g = grouped.firstIndex(where: { $0.file == param.file.value }) {
        grouped[g].values.append((param.key, value))
      } else {
        grouped.append((param.file.value, [(param.key, value)]))
      }
    }
    try builder.cache.sync()
    LeftoverOutputs(root: root, stage: stage.name).save([:])
    let record = LockFile.StageRecord(
      cmd: try registry.fingerprint(stage), deps: deps, params: grouped, outs: outs, source: source)
    lock.set(record, for: stage.name)
    try lock.write(workspaceRoot: root)
    return record
  }

  // MARK: - Run cache

  /// SHA-256 of what determines a stage's outputs (docs/architecture.md §6): its cmd or plugin identity,
  /// its dependencies' hashes, its params' values and its outputs' paths.
  private func runCacheKey(_ stage: Stage, params: inout ParamsReader) throws -> String {
    var text = "dv-run-cache 1\n" + (try registry.fingerprint(stage)) + "\n"
    for dep in stage.deps {
      let hash = try builder.build(dep.path, mode: .inspect)?.hash.description ?? "missing"
      text += "dep \(dep.path.value) \(hash)\n"
    }
    for param in stage.params {
      let value = try params.value(of: param.key, in: param.file).map(YAMLText.canonical) ?? "(none)"
      text += "param \(param.file.value) \(param.key) \(value)\n"
    }
    for out in stage.outs { text += "out \(out.path.value) \(out.cache ? "cache" : "no-cache")\n" }
    return SHA256Hasher.hash(Array(text.utf8)).description
  }

  /// Checks out the outputs of an earlier run with the same key, when every one of them is in
  /// the cache; returns the new lock record, or nil when the stage must run.
  private func restoreFromRunCache(_ stage: Stage, key: String) throws -> LockFile.StageRecord? {
    guard !stage.alwaysChanged, stage.outs.contains(where: \.cache), let recorder,
      let outs = recorder.reusableOutputs(key: key),
      Set(outs.map(\.path)) == Set(stage.outs.map(\.path))
    else { return nil }
    let checkout = DataCheckout(builder: builder)
    // Everything must be restorable before anything is touched.
    for entry in outs {
      guard builder.cache.contains(entry.hash) else { return nil }
      if entry.kind == .dir {
        guard let manifest = try? builder.cache.manifest(entry.hash),
          manifest.entries.allSatisfy({ builder.cache.contains($0.hash) })
        else { return nil }
      }
    }
    try removeOutputs(of: stage, force: false)
    for entry in outs {
      try FileSystem.createDirectory(entry.path.parent.absolute(under: root))
      let plan = try checkout.plan(entry.path, kind: entry.kind, hash: entry.hash)
      if !plan.missing.isEmpty { return nil }
      _ = try checkout.apply(plan, types: cacheTypes, force: true)
    }
    var params = ParamsReader(root: root)
    // The outputs were just written from verified objects: their hashes are known, not re-read.
    let ordered = stage.outs.compactMap { out in outs.first { $0.path == out.path } }
    return try record(stage, source: lock.record(for: stage.name)?.source, params: &params, knownOutputs: ordered)
  }
}

#if canImport(Glibc)
  import Glibc
#endif

/// What a stage's failed or interrupted run left in its outputs, in
/// `.pipeline/tmp/leftovers/<digest of the stage name>`: lines `<hash>\t<path>` after a run
/// that failed, and `running\t<path>` while a run is under way (they stay when dv is killed).
struct LeftoverOutputs {
  let file: String

  /// What the file says.
  struct Record {
    /// Outputs a failed run left, with the hash of what it left.
    var hashes: [String: ObjectID] = [:]
    /// Outputs of a run that never finished: whatever is there came from it.
    var running: Set<String> = []
  }

  private static let runningTag = "running"

  init(root: String, stage: String) {
    file = root + "/.pipeline/tmp/leftovers/" + SHA256Hasher.hash(Array(stage.utf8)).hex
  }

  func load() -> Record {
    guard let text = try? FileSystem.readTextIfPresent(file) else { return Record() }
    var result = Record()
    for line in text.split(separator: "\n") {
      guard let tab = line.firstIndex(of: "\t") else { continue }
      let path = String(line[line.index(after: tab)...])
      if line[..<tab] == Self.runningTag {
        result.running.insert(path)
      } else if let id = ObjectID(String(line[..<tab])) {
        result.hashes[path] = id
      }
    }
    return result
  }

  /// Notes that a run of the stage is writing `outputs` now. Not synced: it only matters to a
  /// later dv on this machine, and a torn record names no output, which is the cautious side.
  func markRunning(_ outputs: [String]) throws {
    guard !outputs.isEmpty else { return }
    try FileSystem.createDirectory((file as NSString).deletingLastPathComponent)
    try FileSystem.writeFile(Array(outputs.map { "\(Self.runningTag)\t\($0)\n" }.joined().utf8), to: file)
  }

  /// Replaces the record; an empty one removes the file.
  func save(_ outputs: [String: ObjectID]) {
    if outputs.isEmpty {
      try? FileSystem.removeFile(file)
      return
    }
    let text = outputs.keys.sorted().map { "\(outputs[$0]!)\t\($0)\n" }.joined()
    try? FileSystem.createDirectory((file as NSString).deletingLastPathComponent)
    try? FileSystem.writeAtomically(text, to: file)
  }
}
