import ArgumentParser
import DVBasics
import DVLineage
import DVWorkspace
import Foundation

struct LineageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lineage", abstract: "Which runs produced your data, from what, and what used it.",
    subcommands: [LineageShow.self, LineageLog.self, LineageExport.self])
}

struct LineageShow: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "The provenance tree of a file's current content, or of a stage's outputs.")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "A path in the workspace, or a stage name.")
  var target: String

  @Flag(help: "Show what was derived from it instead of what it came from.")
  var downstream = false

  @Option(help: "How many stage runs deep to go.")
  var depth = 32

  @Option(
    name: .customLong("run"),
    help: "Trace the version the target had in this run (an id or unique prefix from `dv lineage log`).")
  var runID: String?

  @Flag(help: "Print JSON.") var json = false
  @Flag(help: "Print a Graphviz graph.") var dot = false
  @Flag(help: "Print a Mermaid flowchart.") var mermaid = false

  func validate() throws {
    if depth < 1 { throw ValidationError("--depth must be at least 1") }
    if [json, dot, mermaid].filter({ $0 }).count > 1 {
      throw ValidationError("choose one of --json, --dot, --mermaid")
    }
  }

  func run() throws {
    var query = LineageQuery(target: target)
    query.direction = downstream ? .downstream : .upstream
    query.depth = depth
    query.run = runID
    let roots = try global.workspace().lineage(query)
    if json { return try Terminal.printJSON(roots.map(\.jsonValue)) }
    if dot { return print(LineageGraphText.dot(roots, direction: query.direction), terminator: "") }
    if mermaid { return print(LineageGraphText.mermaid(roots, direction: query.direction), terminator: "") }
    for root in roots { LineageTree.print(root, downstream: downstream) }
  }
}

/// The tree as text: files with their short hash and size, the stage run that links them.
enum LineageTree {
  static func print(_ node: LineageNode, downstream: Bool, indent: String = "  ", isRoot: Bool = true) {
    if isRoot { Swift.print(indent + describe(node)) }
    for step in node.steps {
      let run = step.run
      let verb = downstream ? "used by" : (run.stage == "dv add" ? "added by" : "produced by")
      var line = "\(indent)└─ \(verb) \(run.stage == "dv add" ? "`dv add`" : "stage '\(run.stage)'")"
      line += " · run \(run.runID.prefix(10))… · \(LineageFormat.shortTime(run.startedAt))"
      if let ms = run.durationMs { line += " · " + seconds(ms) }
      if let commit = run.gitCommit { line += " · git \(commit.prefix(7))" + (run.gitDirty == true ? " (dirty)" : "") }
      if run.outcome == .restored { line += " · restored from run cache" }
      Swift.print(line)
      if run.stage != "dv add" { Swift.print(indent + "   " + run.action) }
      for param in step.params { Swift.print(indent + "   param \(param.path) = \(param.value ?? "")") }
      for child in step.nodes {
        Swift.print(indent + "   └─ " + describe(child) + (child.truncated ? " …" : ""))
        print(child, downstream: downstream, indent: indent + "      ", isRoot: false)
      }
    }
  }

  static func describe(_ node: LineageNode) -> String {
    var text = "\(node.path)  \(node.hash.prefix(19))…"
    if let size = node.size {
      text += "  (" + (node.files.map { "\($0) files, " } ?? "") + Format.bytes(size) + ")"
    }
    return text
  }

  static func seconds(_ ms: Int64) -> String { ms < 1000 ? "\(ms) ms" : String(format: "%.1f s", Double(ms) / 1000) }
}

struct LineageLog: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "log", abstract: "Runs, newest first, with each stage's outcome and duration.")

  @OptionGroup var global: GlobalOptions

  @Option(help: "Only runs that involved this stage.")
  var stage: String?

  @Option(help: "How many runs to show.")
  var limit = 20

  @Flag(help: "Print JSON.") var json = false

  func run() throws {
    let runs = try global.workspace().lineageLog(limit: max(1, limit), stage: stage)
    if json {
      return try Terminal.printJSON(
        runs.map { run -> [String: Any] in
          var value: [String: Any] = [
            "run": run.id, "command": run.command, "status": run.status,
            "started_at": LineageFormat.isoTime(run.startedAt), "dv_version": run.dvVersion,
            "stage_runs": run.stageRuns.map(\.jsonValue),
          ]
          if let finished = run.finishedAt { value["finished_at"] = LineageFormat.isoTime(finished) }
          if let commit = run.gitCommit { value["git_commit"] = commit }
          return value
        })
    }
    if runs.isEmpty { print("no runs recorded") }
    for run in runs {
      var line = "run \(run.id)  \(LineageFormat.shortTime(run.startedAt))  dv \(run.command)  \(run.status)"
      if let finished = run.finishedAt { line += "  " + LineageTree.seconds(finished - run.startedAt) }
      if let commit = run.gitCommit { line += "  git \(commit.prefix(7))" + (run.gitDirty == true ? " (dirty)" : "") }
      print(line)
      for stageRun in run.stageRuns {
        var detail = "    \(stageRun.stage)  \(stageRun.outcome.rawValue)"
        if let ms = stageRun.durationMs, stageRun.outcome != .skipped { detail += "  " + LineageTree.seconds(ms) }
        if stageRun.outcome == .failed, let code = stageRun.exitCode { detail += "  exit \(code)" }
        if let execution = Self.executionSummary(stageRun.execution) { detail += "  (" + execution + ")" }
        print(detail)
      }
    }
  }
}

extension LineageLog {
  /// Where a cluster job ran: `slurm job 812 on node1, queued 0.4 s, ran 2.1 s, COMPLETED`; nil
  /// for a local run of one attempt (and runs recorded before dv kept it).
  static func executionSummary(_ execution: RecordedExecution?) -> String? {
    guard let execution else { return nil }
    var parts: [String] = []
    if execution.executor != "local" {
      parts.append("\(execution.executor) job \(execution.jobID ?? "?")" + (execution.node.map { " on \($0)" } ?? ""))
      if let queue = execution.queueMs { parts.append("queued " + LineageTree.seconds(queue)) }
      if let run = execution.runMs { parts.append("ran " + LineageTree.seconds(run)) }
      if let state = execution.state { parts.append(state) }
    }
    if let attempts = execution.attempts, attempts > 1 { parts.append("\(attempts) attempts") }
    return parts.isEmpty ? nil : parts.joined(separator: ", ")
  }
}

struct LineageExport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export", abstract: "Write the ledger as JSON lines (OpenLineage RunEvents, or dv's records).")

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case openlineage, json
  }

  @OptionGroup var global: GlobalOptions

  @Option(help: "openlineage or json.")
  var format: Format = .openlineage

  func run() throws {
    try global.workspace().exportLineage(openLineage: format == .openlineage) { line in print(line) }
  }
}
