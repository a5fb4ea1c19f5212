import DVBasics
import DVLineage
import DVPipeline
import DVStorage
import Foundation

/// Records `repro` in the lineage ledger as it happens and answers run-cache lookups from it.
final class LedgerRecorder: RunRecorder {
  let ledger: LineageLedger
  let runID: String
  /// The first error writing the ledger; recording stops there, the pipeline does not.
  private(set) var failure: Error?

  init(ledger: LineageLedger, runID: String) {
    self.ledger = ledger
    self.runID = runID
  }

  private func attempt<T>(_ body: () throws -> T) -> T? {
    guard failure == nil else { return nil }
    do { return try body() } catch {
      failure = error
      return nil
    }
  }

  func stageSkipped(_ stage: Stage, summary: String) {
    attempt { try ledger.recordSkipped(run: runID, stage: stage.name, action: summary) }
  }

  func stageStarted(_ stage: Stage, summary: String, pluginKind: String?, pluginVersion: String?, key: String)
    -> Int64?
  {
    attempt {
      try ledger.beginStageRun(
        run: runID, stage: stage.name, action: summary, pluginKind: pluginKind, pluginVersion: pluginVersion, key: key)
    }
  }

  func stageEnded(
    _ token: Int64?, outcome: StageOutcome, record: LockFile.StageRecord?, execution: ExecutionRecord?
  ) {
    guard let token else { return }
    let recorded: StageRunOutcome
    var exitCode: Int32?
    switch outcome {
    case .ran: recorded = .ran
    case .restored: recorded = .restored
    case .failed(let code):
      recorded = .failed
      exitCode = code
    default: recorded = .skipped
    }
    attempt {
      try ledger.finishStageRun(
        token, outcome: recorded, exitCode: exitCode ?? (recorded == .failed ? 1 : 0),
        deps: record?.deps.map(Self.artifact) ?? [],
        params: record?.params.flatMap { file in
          file.values.map { RecordedArtifact(path: file.file + ":" + $0.key, value: YAMLText.flow($0.value)) }
        } ?? [],
        outs: record?.outs.map(Self.artifact) ?? [],
        execution: execution.map { run in
          RecordedExecution(
            executor: run.executor.rawValue, jobID: run.jobID, node: run.node,
            queueMs: run.queueSeconds.map { Int64(($0 * 1000).rounded()) },
            runMs: run.runSeconds.map { Int64(($0 * 1000).rounded()) }, state: run.state, attempts: run.attempts)
        })
    }
  }

  func reusableOutputs(key: String) -> [LockFile.Entry]? {
    guard let found = attempt({ try ledger.reusableOutputs(key: key) }) ?? nil else { return nil }
    var entries: [LockFile.Entry] = []
    for out in found.outs {
      guard let path = RelativePath(validating: out.path), let hash = out.hash.flatMap(ObjectID.init) else {
        return nil
      }
      entries.append(LockFile.Entry(path: path, hash: hash, size: out.size ?? 0, files: out.files))
    }
    return entries
  }

  static func artifact(_ entry: LockFile.Entry) -> RecordedArtifact {
    RecordedArtifact(path: entry.path.value, hash: entry.hash.description, size: entry.size, files: entry.files)
  }
}

extension Workspace {
  /// The ledger, opened (and created or migrated) for writing.
  func openLedger() throws -> LineageLedger { try LineageLedger(workspaceRoot: root) }

  /// Starts a run in the ledger for the current command.
  func beginLedgerRun(_ ledger: LineageLedger, command: String) throws -> String {
    let git = config.noSCM ? (nil, nil) : GitState.read(root: root)
    return try ledger.beginRun(
      RunContext(
        command: command, arguments: Array(CommandLine.arguments.dropFirst()), gitCommit: git.0, gitDirty: git.1,
        user: ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName,
        host: ProcessInfo.processInfo.hostName, dvVersion: Workspace.dvVersion))
  }
}

/// The commit a run started from, and whether tracked files differed from it.
enum GitState {
  static func read(root: String) -> (String?, Bool?) {
    guard
      let head = run(["rev-parse", "--verify", "-q", "HEAD"], root: root)?.trimmingCharacters(
        in: .whitespacesAndNewlines),
      !head.isEmpty
    else { return (nil, nil) }
    let status = run(["status", "--porcelain", "--untracked-files=no"], root: root)
    return (head, status.map { !$0.isEmpty })
  }

  private static func run(_ arguments: [String], root: String) -> String? {
    guard let outcome = try? Program.run("git", ["-C", root] + arguments), outcome.status == 0 else { return nil }
    return outcome.output
  }
}

/// What `dv lineage show` traces.
public struct LineageQuery: Sendable {
  /// A path (file or directory) or a stage name.
  public var target: String
  public var direction: LineageTracer.Direction = .upstream
  public var depth = 32
  /// A run id (or unique prefix): trace the version the target had in that run.
  public var run: String?

  public init(target: String) { self.target = target }
}

extension Workspace {
  /// The ledger for reading; an error naming what to do when nothing was recorded yet.
  func ledgerForReading(_ what: String) throws -> LineageLedger {
    guard FileSystem.exists(root + "/.pipeline/" + LineageLedger.fileName) else { throw LineageError.unknown(what) }
    return try LineageLedger(workspaceRoot: root)
  }

  /// The lineage trees of a path's current content (or of its version in a past run), or of the
  /// outputs of a stage's latest run.
  public func lineage(_ query: LineageQuery) throws -> [LineageNode] {
    let ledger = try ledgerForReading(query.target)
    let tracer = LineageTracer(ledger: ledger, direction: query.direction, maxDepth: query.depth)
    let run = try query.run.map { try ledger.resolveRun($0) }
    if let path = try? resolver.resolve(query.target), path != .root {
      if let run {
        if let past = try ledger.outputHash(path: path.value, run: run), let hash = past.hash {
          return [try tracer.trace(path: path.value, hash: hash, size: past.size, files: past.files)]
        }
      } else if let current = try currentVersion(of: path) {
        return [
          try tracer.trace(path: path.value, hash: current.hash.description, size: current.size, files: current.files)
        ]
      }
    }
    // A stage: the outputs of its latest successful run (in `run`, when given).
    guard let stageRun = try ledger.latestStageRun(stage: query.target, run: run) else {
      throw LineageError.unknown(query.target)
    }
    return try ledger.artifacts(of: stageRun.id, role: "out").compactMap { out in
      guard let hash = out.hash else { return nil }
      return try tracer.trace(path: out.path, hash: hash, size: out.size, files: out.files)
    }
  }

  /// A path's content now: hashed in the workspace, or as its pointer or stages.lock records it
  /// when it is not there.
  private func currentVersion(of path: RelativePath) throws -> (hash: ObjectID, size: Int64?, files: Int?)? {
    if let built = try builder().build(path, mode: .inspect) { return (built.hash, built.size, built.files) }
    if let pointer = try? PointerFile.load(RelativePath(validating: path.value + ".dv")!, root: root) {
      return (pointer.hash, pointer.size, pointer.files)
    }
    let lock = try LockFile.load(workspaceRoot: root)
    for (_, record) in lock.stages {
      if let out = record.outs.first(where: { $0.path == path }) { return (out.hash, out.size, out.files) }
    }
    return nil
  }

  /// Runs, newest first.
  public func lineageLog(limit: Int, stage: String?) throws -> [RunRecord] {
    try ledgerForReading("this workspace").runs(limit: limit, stage: stage)
  }

  /// Writes the ledger as JSON lines: OpenLineage RunEvents, or dv's own stage-run records.
  public func exportLineage(openLineage: Bool, line: (String) throws -> Void) throws {
    let ledger = try ledgerForReading("this workspace")
    if openLineage {
      let name = (root as NSString).lastPathComponent
      try OpenLineageExporter.export(ledger, namespace: "dv://" + name, line: line)
    } else {
      try OpenLineageExporter.exportJSON(ledger, line: line)
    }
  }
}
