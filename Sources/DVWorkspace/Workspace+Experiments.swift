import DVBasics
import DVLineage
import DVPipeline
import Foundation

/// Errors of `dv exp`.
public enum ExperimentError: DVError {
  case unknown(String)
  case nameTaken(String)
  case invalidName(String)
  /// `exp apply` of an experiment that did not finish.
  case notFinished(String, ExperimentRecord.Status)
  /// `exp apply` would overwrite changes that are neither committed nor in an experiment.
  case wouldOverwrite(String)
  /// `exp branch` of an experiment run outside git.
  case noBaseline(String)
  case invalidBranch(String)
  case branchExists(String)
  case gitFailed(String)
  case notQueued(String)
  case notRunning(String)
  case noLog(String)
  case missingCopy(String)

  public var kind: FailureKind {
    switch self {
    case .notFinished, .wouldOverwrite, .gitFailed, .notRunning: return .failed
    default: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .unknown(let name): return "no experiment named '\(name)'; `dv exp show` lists them"
    case .nameTaken(let name): return "an experiment named '\(name)' exists; pick another name or `dv exp remove \(name)`"
    case .invalidName(let name): return "'\(name)' is not an experiment name (letters, digits, '-', '_' and '.')"
    case .notFinished(let name, let status):
      let what = status == .failed ? "failed" : status == .queued ? "is queued, not run yet" : "did not finish"
      return "experiment '\(name)' \(what); there is nothing to apply"
    case .noBaseline(let name): return "experiment '\(name)' ran outside git: it has no commit to branch from"
    case .invalidBranch(let branch): return "'\(branch)' is not a valid git branch name"
    case .branchExists(let branch): return "a branch named '\(branch)' exists; pick another name"
    case .gitFailed(let line): return "git failed making the branch: \(line)"
    case .notQueued(let name): return "'\(name)' is not a queued experiment; `dv queue status` lists them"
    case .notRunning(let name): return "experiment '\(name)' is not running"
    case .noLog(let name): return "experiment '\(name)' has no log (it has not started)"
    case .missingCopy(let path): return "-C '\(path)': there is nothing at that path to copy"
    case .wouldOverwrite(let path):
      return "'\(path)' has changes that are neither committed nor in an experiment; commit them, or pass --force to discard them"
    }
  }
}

/// Experiments as `dv exp show` lays them out: one row for the workspace, then one per
/// experiment; a column per metric, then per param.
public struct ExperimentTable: Sendable {
  public struct Column: Sendable, Hashable {
    public enum Kind: String, Sendable { case metric, param }
    public var kind: Kind
    public var file: String
    public var key: String
    /// `key`, or `file:key` when the file is not the default one.
    public var title: String { file == "params.yaml" || kind == .metric && file.isEmpty ? key : file + ":" + key }
  }

  public struct Row: Sendable {
    /// `workspace`, or the experiment's name.
    public var name: String
    public var createdAt: Int64?
    public var status: ExperimentRecord.Status?
    public var baseline: String?
    public var values: [Column: String]
  }

  public var columns: [Column]
  public var rows: [Row]
}

extension Workspace {
  /// Runs the pipeline with `overrides` applied to its params files, as `dv repro` with changed
  /// params does, and records it as experiment `name` (generated when nil). A bad override
  /// changes nothing; a failed run is recorded as failed and rethrown.
  public func runExperiment(
    overrides texts: [String], name: String?, options: ReproOptions, observer: ReproObserver
  ) throws -> ExperimentRecord {
    let overrides = try texts.map(ParamsOverride.parse)
    // A pipeline that does not load fails here, before any params file is changed.
    _ = try pipeline()
    let ledger = try openLedger()
    let known = Set(try ledger.experiments().map(\.name))
    let chosen = try name ?? Self.generatedName(avoiding: known)
    guard chosen.range(of: "^[A-Za-z0-9][A-Za-z0-9_.-]*$", options: .regularExpression) != nil else {
      throw ExperimentError.invalidName(chosen)
    }
    if known.contains(chosen) { throw ExperimentError.nameTaken(chosen) }
    // Every override is checked against its file before any file is written.
    var edited: [String: String] = [:]
    for override in overrides {
      guard let path = RelativePath(validating: override.file) else {
        throw OverrideError.notAParamsFile(override.file, "not a path inside the workspace")
      }
      guard [".yaml", ".yml", ".json"].contains(where: { override.file.hasSuffix($0) }) else {
        throw OverrideError.notAParamsFile(override.file, "dv reads params from .yaml, .yml and .json files")
      }
      let current = try edited[override.file] ?? FileSystem.readTextIfPresent(path.absolute(under: root))
      edited[override.file] = try override.applied(to: current)
    }
    for (file, text) in edited.sorted(by: { $0.key < $1.key }) {
      try FileSystem.writeAtomically(text, to: RelativePath(validating: file)!.absolute(under: root))
    }
    let baseline = config.noSCM ? nil : GitState.read(root: root).0
    var experiment = ExperimentRecord(
      name: chosen, runID: nil, baseline: baseline, createdAt: LineageLedger.now(), status: .running,
      overrides: texts)
    try ledger.saveExperiment(experiment)
    do {
      _ = try repro(options, observer: observer)
      experiment.status = .succeeded
    } catch {
      experiment.status = .failed
      if (try? record(&experiment, ledger: ledger)) == nil {
        experiment.finishedAt = LineageLedger.now()
        try? ledger.saveExperiment(experiment)
      }
      throw error
    }
    try record(&experiment, ledger: ledger)
    return experiment
  }

  /// Fills in what the experiment used and measured, and saves it.
  private func record(_ experiment: inout ExperimentRecord, ledger: LineageLedger) throws {
    experiment.finishedAt = LineageLedger.now()
    experiment.runID = try ledger.runs(limit: 1).first?.id
    try snapshot(into: &experiment)
    try ledger.saveExperiment(experiment)
  }

  /// The experiment's params, metrics, and the texts of its params files, metrics files and
  /// stages.lock, as this workspace has them now (the workspace, or a queued run's copy).
  func snapshot(into experiment: inout ExperimentRecord) throws {
    experiment.params = try currentParams()
    experiment.metrics = try currentMetrics()
    // Metrics files are outputs kept out of the cache by default: their texts travel with the
    // experiment so that `exp apply` restores them too.
    let sources = Set(experiment.params.keys).union(experiment.metrics.keys)
      .union(experiment.overrides.compactMap { try? ParamsOverride.parse($0).file }).union(["stages.lock"])
    var files: [String: String] = [:]
    for file in sources {
      if let path = RelativePath(validating: file), let text = try FileSystem.readTextIfPresent(path.absolute(under: root)) {
        files[file] = text
      }
    }
    experiment.files = files
  }

  /// The params the pipeline's stages read, as they are in the workspace, by file and key.
  func currentParams() throws -> [String: [String: String]] {
    guard let pipeline = try pipeline() else { return [:] }
    var values: [String: [String: String]] = [:]
    var reader = ParamsReader(root: root)
    for stage in pipeline.stages {
      for param in stage.params {
        guard let value = try reader.value(of: param.key, in: param.file) else { continue }
        for (key, text) in Self.flatten(value, prefix: param.key) { values[param.file.value, default: [:]][key] = text }
      }
    }
    return values
  }

  /// The pipeline's metrics as they are in the workspace, by file and key.
  func currentMetrics() throws -> [String: [String: String]] {
    var values: [String: [String: String]] = [:]
    for file in try metrics().files {
      for (key, value) in file.values { values[file.path, default: [:]][key] = value }
    }
    return values
  }

  private static func flatten(_ value: ConfigValue, prefix: String) -> [(String, String)] {
    if case .map(let pairs) = value {
      return pairs.flatMap { flatten($0.1, prefix: prefix + "." + $0.0) }
    }
    return [(prefix, YAMLText.flow(value))]
  }

  /// Every experiment, oldest first.
  public func experiments() throws -> [ExperimentRecord] { try openLedger().experiments() }

  /// The table of `dv exp show`: the workspace first, then the experiments, grouped by baseline
  /// in the order the baselines first appear.
  public func experimentTable() throws -> ExperimentTable {
    let records = try openLedger().experiments(files: false)
    var rows = [
      ExperimentTable.Row(
        name: "workspace", createdAt: nil, status: nil,
        baseline: config.noSCM ? nil : GitState.read(root: root).0,
        values: Self.cells(params: try currentParams(), metrics: try currentMetrics()))
    ]
    var baselines: [String?] = []
    for record in records where !baselines.contains(record.baseline) { baselines.append(record.baseline) }
    for baseline in baselines {
      for record in records where record.baseline == baseline {
        rows.append(
          ExperimentTable.Row(
            name: record.name, createdAt: record.createdAt, status: record.status, baseline: record.baseline,
            values: Self.cells(params: record.params, metrics: record.metrics)))
      }
    }
    var columns: [ExperimentTable.Column] = []
    for kind in [ExperimentTable.Column.Kind.metric, .param] {
      let present = Set(rows.flatMap { $0.values.keys.filter { $0.kind == kind } })
      columns += present.sorted { ($0.file, $0.key) < ($1.file, $1.key) }
    }
    return ExperimentTable(columns: columns, rows: rows)
  }

  private static func cells(params: [String: [String: String]], metrics: [String: [String: String]])
    -> [ExperimentTable.Column: String]
  {
    var cells: [ExperimentTable.Column: String] = [:]
    for (file, values) in metrics {
      for (key, value) in values { cells[.init(kind: .metric, file: file, key: key)] = value }
    }
    for (file, values) in params {
      for (key, value) in values { cells[.init(kind: .param, file: file, key: key)] = value }
    }
    return cells
  }

  /// Puts experiment `name`'s params files and stages.lock into the workspace and checks its
  /// outputs out of the cache (no rerun). Refuses, unless `force`, to overwrite a params file
  /// or stages.lock whose current content is neither committed (git HEAD) nor an experiment's;
  /// outputs not in the cache are protected as `dv checkout` protects them.
  public func applyExperiment(_ name: String, force: Bool) throws -> CheckoutResult {
    let records = try experiments()
    guard let experiment = records.first(where: { $0.name == name }) else { throw ExperimentError.unknown(name) }
    guard experiment.status == .succeeded else { throw ExperimentError.notFinished(name, experiment.status) }
    for (file, text) in experiment.files.sorted(by: { $0.key < $1.key }) {
      guard let path = RelativePath(validating: file) else { continue }
      let current = try FileSystem.readTextIfPresent(path.absolute(under: root))
      // Metrics are outputs the run wrote (and the run cache keeps), not the user's edits.
      if current == text || current == nil || force || experiment.metrics[file] != nil { continue }
      let recorded = records.contains { $0.files[file] == current }
      let committed = !config.noSCM && Workspace.isInsideGitRepository(root) && (try? gitShowHEAD(path)) == current
      if !recorded && !committed { throw ExperimentError.wouldOverwrite(file) }
    }
    for (file, text) in experiment.files.sorted(by: { $0.key < $1.key }) {
      guard let path = RelativePath(validating: file) else { continue }
      try FileSystem.writeAtomically(text, to: path.absolute(under: root))
    }
    return try checkout(force: force)
  }

  /// Makes git branch `branch` holding experiment `name`: a commit on top of the experiment's
  /// baseline with its params files, metrics and stages.lock. Built with git's plumbing in an
  /// index of its own, so the working tree and the current branch are not touched; `git
  /// checkout BRANCH` then `dv checkout` (or the post-checkout hook) brings its outputs.
  public func branchExperiment(_ name: String, branch: String) throws -> String {
    guard !config.noSCM, Workspace.isInsideGitRepository(root) else { throw WorkspaceError.needsGit }
    guard let experiment = try experiments().first(where: { $0.name == name }) else {
      throw ExperimentError.unknown(name)
    }
    guard experiment.status == .succeeded else { throw ExperimentError.notFinished(name, experiment.status) }
    guard let baseline = experiment.baseline else { throw ExperimentError.noBaseline(name) }
    let git = GitCommand(directory: root)
    guard (try? git.run(["check-ref-format", "--branch", branch])) != nil else {
      throw ExperimentError.invalidBranch(branch)
    }
    if (try? git.run(["rev-parse", "--verify", "-q", "refs/heads/" + branch])) != nil {
      throw ExperimentError.branchExists(branch)
    }
    let prefix = String(decoding: try git.run(["rev-parse", "--show-prefix"]), as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let index = pipelineDirectory + "/tmp/exp-branch.\(getpid()).index"
    defer { unlink(index) }
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_INDEX_FILE"] = index
    func plumbing(_ arguments: [String], input: String? = nil) throws -> String {
      let outcome: Program.Outcome
      if let input {
        let file = pipelineDirectory + "/tmp/exp-branch.\(getpid()).blob"
        defer { unlink(file) }
        try FileSystem.writeFile(Array(input.utf8), to: file)
        outcome = try Program.run("git", ["-C", root] + arguments + [file], environment: environment)
      } else {
        outcome = try Program.run("git", ["-C", root] + arguments, environment: environment)
      }
      guard outcome.status == 0 else {
        throw ExperimentError.gitFailed(outcome.firstErrorLine ?? "git \(arguments.first ?? "") failed")
      }
      return outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    _ = try plumbing(["read-tree", baseline])
    for (file, text) in experiment.files.sorted(by: { $0.key < $1.key }) {
      let blob = try plumbing(["hash-object", "-w"], input: text)
      _ = try plumbing(["update-index", "--add", "--cacheinfo", "100644,\(blob),\(prefix)\(file)"])
    }
    let tree = try plumbing(["write-tree"])
    let message = "dv experiment \(name)\n\n" + experiment.overrides.map { "-S " + $0 }.joined(separator: "\n")
    let commit = try plumbing(["commit-tree", tree, "-p", baseline, "-m", message])
    _ = try plumbing(["branch", branch, commit])
    return commit
  }

  /// Deletes experiments from the ledger (their outputs stay in the cache until `dv gc`).
  public func removeExperiments(_ names: [String], all: Bool) throws -> [String] {
    let ledger = try openLedger()
    let known = try ledger.experiments().map(\.name)
    let chosen = all ? known : names
    for name in chosen where !known.contains(name) { throw ExperimentError.unknown(name) }
    try ledger.removeExperiments(chosen)
    return chosen
  }

  /// Two words, as DVC names experiments: `brave-otter`.
  static func generatedName(avoiding taken: Set<String>) throws -> String {
    let adjectives = [
      "amber", "brave", "calm", "deft", "eager", "fair", "glad", "hardy", "keen", "lucid", "merry", "nimble",
      "placid", "quick", "rapid", "sunny", "tidy", "vivid", "witty", "zesty",
    ]
    let nouns = [
      "alder", "badger", "cedar", "dingo", "egret", "finch", "gecko", "heron", "ibis", "jay", "koala", "lynx",
      "marten", "newt", "otter", "puffin", "quail", "raven", "stoat", "tern",
    ]
    for _ in 0..<1000 {
      let name = adjectives.randomElement()! + "-" + nouns.randomElement()!
      if !taken.contains(name) { return name }
    }
    var n = 2
    while taken.contains("experiment-\(n)") { n += 1 }
    return "experiment-\(n)"
  }
}
