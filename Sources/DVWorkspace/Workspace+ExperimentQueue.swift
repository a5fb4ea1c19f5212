import CDVSystem
import DVBasics
import DVLineage
import DVPipeline
import Foundation

/// An experiment of the queue, as `dv queue status` shows it.
public struct QueuedExperiment: Sendable {
  public var name: String
  public var status: ExperimentRecord.Status
  public var overrides: [String]
  /// The worker's pid while it runs.
  public var pid: Int32?
}

extension Workspace {
  /// `.pipeline/exps`: one isolated copy of the workspace per running experiment, with its log
  /// (`<name>.log`) and its worker's pid (`<name>.pid`) beside it.
  var experimentsDirectory: String { pipelineDirectory + "/exps" }

  /// Queues one experiment per combination of the overrides' values (a sweep's cross product),
  /// each checked against the params files first; the workspace is not changed. Names are
  /// `name-1`, `name-2`, ... for a named sweep, else generated.
  public func queueExperiments(overrides texts: [String], name: String?, copies: [String] = []) throws -> [String] {
    let overrides = try texts.map(ParamsOverride.parse)
    _ = try pipeline()
    // `-C PATH`: files git does not track that the runs need; they must exist now.
    let copied = try copies.map { text -> String in
      let path = try resolver.resolve(text)
      guard FileSystem.exists(path.absolute(under: root)) else { throw ExperimentError.missingCopy(text) }
      return path.value
    }
    var combinations: [[ParamsOverride]] = [[]]
    for override in overrides {
      let choices = override.values.isEmpty ? [override] : override.values.map { value -> ParamsOverride in
        var single = override
        single.values = [value]
        single.text = Self.overrideText(single)
        return single
      }
      combinations = combinations.flatMap { prefix in choices.map { prefix + [$0] } }
      if combinations.count > 10_000 { throw OverrideError.malformed(override.text, "the sweep makes more than 10,000 experiments") }
    }
    // Each combination must apply cleanly to the params files as they are.
    for combination in combinations {
      var edited: [String: String] = [:]
      for override in combination {
        let current = try edited[override.file]
          ?? FileSystem.readTextIfPresent(RelativePath(validating: override.file)!.absolute(under: root))
        edited[override.file] = try override.applied(to: current)
      }
    }
    let ledger = try openLedger()
    var taken = Set(try ledger.experiments().map(\.name))
    let baseline = config.noSCM ? nil : GitState.read(root: root).0
    var names: [String] = []
    for (i, combination) in combinations.enumerated() {
      let chosen = try name.map { combinations.count == 1 ? $0 : "\($0)-\(i + 1)" } ?? Self.generatedName(avoiding: taken)
      guard chosen.range(of: "^[A-Za-z0-9][A-Za-z0-9_.-]*$", options: .regularExpression) != nil else {
        throw ExperimentError.invalidName(chosen)
      }
      if taken.contains(chosen) { throw ExperimentError.nameTaken(chosen) }
      taken.insert(chosen)
      try ledger.saveExperiment(
        ExperimentRecord(
          name: chosen, runID: nil, baseline: baseline, createdAt: LineageLedger.now(), status: .queued,
          overrides: combination.map(\.text), copies: copied))
      names.append(chosen)
    }
    return names
  }

  static func overrideText(_ override: ParamsOverride) -> String {
    let file = override.file == "params.yaml" ? "" : override.file + ":"
    let sign = override.action == .add ? "+" : override.action == .remove ? "~" : ""
    return file + sign + override.key + (override.values.first.map { "=" + $0 } ?? "")
  }

  /// The queue: queued and running experiments, with the pid of each live worker.
  public func queueStatus() throws -> [QueuedExperiment] {
    try experiments().filter { $0.status == .queued || $0.status == .running }.map { record in
      QueuedExperiment(name: record.name, status: record.status, overrides: record.overrides, pid: livePID(record.name))
    }
  }

  /// The pid of experiment `name`'s worker when it is alive.
  func livePID(_ name: String) -> Int32? {
    guard let text = try? FileSystem.readTextIfPresent(experimentsDirectory + "/\(name).pid"),
      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
    else { return nil }
    return pid
  }

  /// Runs the queued experiments, `jobs` at a time, each in an isolated copy of the workspace
  /// (`.pipeline/exps/<name>/`: the files git tracks, or every file outside `.pipeline/`
  /// without git, plus stages.lock; the cache shared, data linked from it), each recorded in
  /// this ledger as it finishes. Experiments left `running` by a queue that was killed are run
  /// again (or waited for, when their worker still lives). Returns the experiments that ran.
  public func startQueue(jobs: Int, report: (String, ExperimentRecord.Status) -> Void) throws -> [ExperimentRecord] {
    try FileSystem.createDirectory(experimentsDirectory)
    // Workspaces made before the queue existed do not ignore its copies yet.
    let ignore = pipelineDirectory + "/.gitignore"
    if let text = try FileSystem.readTextIfPresent(ignore), !text.split(separator: "\n").contains("/exps/") {
      try FileSystem.writeAtomically(text + (text.hasSuffix("\n") || text.isEmpty ? "" : "\n") + "/exps/\n", to: ignore)
    }
    let ledger = try openLedger()
    var pending = try ledger.experiments().filter { $0.status == .queued || $0.status == .running }
    /// Workers with their pid; `adopted` ones were started by an earlier queue (not children).
    var running: [(record: ExperimentRecord, pid: Int32, adopted: Bool)] = []
    var finished: [ExperimentRecord] = []
    let workers = max(1, jobs)
    while !pending.isEmpty || !running.isEmpty {
      while running.count < workers, !pending.isEmpty {
        var record = pending.removeFirst()
        if record.status == .running, let pid = livePID(record.name) {
          running.append((record, pid, true))  // a worker of a killed queue: wait for it
          continue
        }
        let pid = try startWorker(record)
        record.status = .running
        try ledger.saveExperiment(record)
        running.append((record, pid, false))
      }
      // Poll the workers: children are reaped, adopted ones are gone when kill(0) fails. Each
      // worker writes its exit code to `<name>.exit` itself.
      var exited: Int?
      while exited == nil {
        exited = running.firstIndex { worker in
          if worker.adopted { return kill(worker.pid, 0) != 0 }
          var status: Int32 = 0
          return waitpid(worker.pid, &status, WNOHANG) == worker.pid
        }
        if exited == nil { Thread.sleep(forTimeInterval: 0.05) }
      }
      guard let index = exited else { continue }
      var record = running.remove(at: index).record
      let code = Int32(
        ((try? FileSystem.readTextIfPresent(experimentsDirectory + "/\(record.name).exit")) ?? nil)?
          .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 1
      let copy = try Workspace(containing: experimentsDirectory + "/" + record.name)
      record.status = code == 0 ? .succeeded : .failed
      record.finishedAt = LineageLedger.now()
      try? copy.snapshot(into: &record)
      try ledger.saveExperiment(record)
      try? FileSystem.removeTree(copy.root)
      for suffix in [".pid", ".exit"] { unlink(experimentsDirectory + "/\(record.name)" + suffix) }
      report(record.name, record.status)
      finished.append(record)
    }
    return finished
  }

  /// Makes experiment `record`'s copy of the workspace and starts `dv repro` in it, its output
  /// to `<name>.log`; returns the worker's pid.
  private func startWorker(_ record: ExperimentRecord) throws -> Int32 {
    let copy = experimentsDirectory + "/" + record.name
    try? FileSystem.removeTree(copy)
    try FileSystem.createDirectory(copy + "/.pipeline")
    for file in try filesForCopy() + (record.copies ?? []) where !FileSystem.exists(copy + "/" + file) {
      let target = copy + "/" + file
      try FileSystem.createDirectory((target as NSString).deletingLastPathComponent)
      try FileManager.default.copyItem(atPath: root + "/" + file, toPath: target)
    }
    for name in ["config.yaml", "config.local.yaml", ".gitignore"] where FileSystem.exists(pipelineDirectory + "/" + name) {
      try? FileManager.default.removeItem(atPath: copy + "/.pipeline/" + name)
      try FileManager.default.copyItem(atPath: pipelineDirectory + "/" + name, toPath: copy + "/.pipeline/" + name)
    }
    // One cache for all: data reaches the copy as links to it, and what the copy makes is there
    // for the workspace (`exp apply`) at once.
    guard symlink(pipelineDirectory + "/cache", copy + "/.pipeline/cache") == 0 else {
      throw SystemError("linking the cache into '\(copy)'", errno: errno)
    }
    var edited: [String: String] = [:]
    for text in record.overrides {
      let override = try ParamsOverride.parse(text)
      let path = RelativePath(validating: override.file)!.absolute(under: copy)
      edited[override.file] = try override.applied(to: try edited[override.file] ?? FileSystem.readTextIfPresent(path))
    }
    for (file, text) in edited { try FileSystem.writeAtomically(text, to: RelativePath(validating: file)!.absolute(under: copy)) }
    // Data is linked from the shared cache, not copied (hardlinks are read-only; stages replace
    // their outputs rather than write into them).
    let localConfig = copy + "/.pipeline/config.local.yaml"
    var editor = try ConfigFileEditor(
      text: try FileSystem.readTextIfPresent(localConfig) ?? "version: \(WorkspaceConfig.version)\n",
      name: ".pipeline/config.local.yaml")
    editor.setSetting(section: "cache", key: "type", value: "[reflink, hardlink, copy]")
    try FileSystem.writeAtomically(try editor.text(), to: localConfig, mode: 0o600)
    let executable = FileSystem.realPath("/proc/self/exe") ?? CommandLine.arguments[0]
    let log = experimentsDirectory + "/\(record.name).log"
    let exitFile = experimentsDirectory + "/\(record.name).exit"
    let quote = { (text: String) in "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let script = """
      \(quote(executable)) checkout -q && \(quote(executable)) repro -q; code=$?
      echo "$code" > \(quote(exitFile + ".tmp")) && mv \(quote(exitFile + ".tmp")) \(quote(exitFile)); exit "$code"
      """
    unlink(exitFile)
    let output = try Self.openLog(log)
    defer { close(output) }
    let pid = dv_spawn_shell_to(script, copy, output)
    guard pid > 0 else { throw SystemError("starting experiment '\(record.name)'", errno: errno) }
    try FileSystem.writeAtomically("\(pid)\n", to: experimentsDirectory + "/\(record.name).pid")
    return pid
  }

  private static func openLog(_ path: String) throws -> Int32 {
    let fd = dv_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SystemError("opening '\(path)'", errno: errno) }
    return fd
  }

  /// The workspace's own files a copy gets: what git tracks (with stages.lock and dv pointers),
  /// or every regular file outside `.pipeline/` and `.git/` and dv's data without git.
  private func filesForCopy() throws -> [String] {
    var files = Set<String>()
    if !config.noSCM, Workspace.isInsideGitRepository(root) {
      let listed = try GitCommand(directory: root).run(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
      for name in listed.split(separator: 0) { files.insert(String(decoding: name, as: UTF8.self)) }
    } else {
      let data = Set(try trackedData().map(\.path.value))
      let walker = FileManager.default.enumerator(atPath: root)
      while let name = walker?.nextObject() as? String {
        if name == ".pipeline" || name == ".git" || data.contains(name) {
          walker?.skipDescendants()
          continue
        }
        if ((try? FileStat.of(root + "/" + name, followLinks: false)) ?? nil)?.kind == .file { files.insert(name) }
      }
    }
    if FileSystem.exists(root + "/stages.lock") { files.insert("stages.lock") }
    return files.filter { !$0.hasPrefix(".pipeline/") && FileSystem.exists(root + "/" + $0) }.sorted()
  }

  /// Removes queued experiments (`names`, or all queued ones); running ones are left (kill them).
  public func removeFromQueue(_ names: [String], allQueued: Bool) throws -> [String] {
    let queued = try experiments().filter { $0.status == .queued }.map(\.name)
    let chosen = allQueued ? queued : names
    for name in chosen where !queued.contains(name) { throw ExperimentError.notQueued(name) }
    try openLedger().removeExperiments(chosen)
    return chosen
  }

  /// Stops a running experiment's worker (SIGTERM to its process group); the queue records it
  /// as failed.
  public func killQueued(_ name: String) throws {
    guard let pid = livePID(name) else { throw ExperimentError.notRunning(name) }
    kill(-pid, SIGTERM)
    kill(pid, SIGTERM)
  }

  /// True while experiment `name`'s worker runs.
  public func isRunning(_ name: String) -> Bool { livePID(name) != nil }

  /// The log of a queued experiment's run.
  public func queueLog(_ name: String) throws -> String {
    guard let text = try FileSystem.readTextIfPresent(experimentsDirectory + "/\(name).log") else {
      throw ExperimentError.noLog(name)
    }
    return text
  }
}
