import ArgumentParser
import DVLineage
import DVPipeline
import DVWorkspace
import Foundation

struct ExpCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "exp", abstract: "Run the pipeline with changed params, and compare and apply the runs.",
    subcommands: [
      ExpRun.self, ExpShow.self, ExpDiff.self, ExpApply.self, ExpBranch.self, ExpRemove.self, ExpPush.self,
      ExpPull.self,
    ])
}

struct ExpRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Apply params overrides and run the pipeline in the workspace, as an experiment.",
    discussion: """
      -S [file:]key=value changes a key of params.yaml (or of file), +key=value adds one, ~key removes one.
      The experiment is recorded with its params, metrics and outputs; `dv exp show` compares them.
      """)

  @OptionGroup var global: GlobalOptions

  @Option(name: [.customShort("S"), .customLong("set-param")], help: "A params override: [file:][+|~]key[=value].")
  var overrides: [String] = []

  @Option(name: .shortAndLong, help: "The experiment's name (default: two generated words).")
  var name: String?

  @Flag(help: "Queue the experiment (a sweep: one per combination) for `dv queue start`, changing nothing now.")
  var queue = false

  @Option(name: [.customShort("C"), .customLong("copy-paths")], help: "With --queue: an untracked path the run's copy gets too.")
  var copyPaths: [String] = []

  @Flag(name: .shortAndLong, help: "Run the selected stages even when nothing changed.")
  var force = false

  @Option(name: .shortAndLong, help: "Run up to N independent stages at the same time.")
  var jobs = 1

  @Argument(help: "Stages to run (default: all).")
  var targets: [String] = []

  func validate() throws {
    if !copyPaths.isEmpty && !queue { throw ValidationError("-C copies paths into a queued run's copy: use it with --queue") }
  }

  func run() throws {
    if queue {
      let names = try global.workspace().queueExperiments(overrides: overrides, name: name, copies: copyPaths)
      print("queued \(names.count) experiment\(names.count == 1 ? "" : "s"): \(names.joined(separator: ", ")); run them with `dv queue start`")
      return
    }
    var options = ReproOptions()
    options.targets = targets
    options.force = force
    options.jobs = max(1, jobs)
    let experiment = try global.workspace().runExperiment(
      overrides: overrides, name: name, options: options, observer: ReproPrinter())
    print("experiment '\(experiment.name)' finished; `dv exp show` compares it, `dv exp apply \(experiment.name)` restores it")
  }
}

struct ExpShow: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "The workspace and every experiment: metrics, then params.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.") var json = false
  @Flag(help: "Print CSV.") var csv = false
  @Flag(help: "Print a Markdown table.") var md = false

  @Option(help: "Sort experiments by this metric or param (its column title or key).")
  var sortBy: String?

  @Option(help: "asc or desc.")
  var sortOrder = "asc"

  @Flag(help: "Only the columns whose values differ between rows.")
  var onlyChanged = false

  @Option(help: "Keep only the metric and param columns whose title matches this regular expression.")
  var keep: String?

  @Option(help: "Leave out the metric and param columns whose title matches this regular expression.")
  var drop: String?

  @Option(help: "Significant digits of numbers.")
  var precision = 5

  @Flag(help: "Leave out experiments that failed.")
  var hideFailed = false

  @Flag(help: "Leave out queued experiments.")
  var hideQueued = false

  func validate() throws {
    if [json, csv, md].filter({ $0 }).count > 1 { throw ValidationError("choose one of --json, --csv and --md") }
    if !["asc", "desc"].contains(sortOrder) { throw ValidationError("--sort-order is asc or desc") }
    if precision < 1 { throw ValidationError("--precision must be at least 1") }
    for pattern in [keep, drop].compactMap({ $0 }) where (try? NSRegularExpression(pattern: pattern)) == nil {
      throw ValidationError("'\(pattern)' is not a regular expression")
    }
  }

  func run() throws {
    var table = try global.workspace().experimentTable()
    if hideFailed { table.rows.removeAll { $0.status == .failed } }
    if hideQueued { table.rows.removeAll { $0.status == .queued } }
    var columns = table.columns
    if let keep { columns = columns.filter { $0.title.range(of: keep, options: .regularExpression) != nil } }
    if let drop { columns = columns.filter { $0.title.range(of: drop, options: .regularExpression) == nil } }
    if onlyChanged { columns = columns.filter { column in Set(table.rows.map { $0.values[column] }).count > 1 } }
    if let sortBy {
      guard let column = table.columns.first(where: { $0.title == sortBy || $0.key == sortBy }) else {
        throw ValidationError("no metric or param '\(sortBy)' to sort by")
      }
      let workspace = table.rows.prefix(1)
      let sorted = table.rows.dropFirst().sorted { a, b in
        let x = a.values[column] ?? ""
        let y = b.values[column] ?? ""
        let ascending = Double(x).flatMap { p in Double(y).map { p < $0 } } ?? (x < y)
        return sortOrder == "asc" ? ascending : !ascending && x != y
      }
      table.rows = Array(workspace) + sorted
    }
    let header = ["Experiment", "Created", "State"] + columns.map(\.title)
    let rows = table.rows.map { row -> [String] in
      [
        row.name, row.createdAt.map { LineageFormat.shortTime($0) } ?? "", row.status?.rawValue ?? "",
      ] + columns.map { Self.format(row.values[$0] ?? "-", precision: precision) }
    }
    if json {
      try Terminal.printJSON(
        table.rows.map { row -> [String: Any] in
          var entry: [String: Any] = ["name": row.name]
          entry["created"] = row.createdAt.map { LineageFormat.isoTime($0) }
          entry["state"] = row.status?.rawValue
          entry["baseline"] = row.baseline
          for kind in [ExperimentTable.Column.Kind.metric, .param] {
            var byFile: [String: [String: String]] = [:]
            for column in columns where column.kind == kind {
              if let value = row.values[column] { byFile[column.file, default: [:]][column.key] = value }
            }
            entry[kind == .metric ? "metrics" : "params"] = byFile
          }
          return entry
        })
    } else if csv {
      for line in [header] + rows { print(line.map(Self.csvField).joined(separator: ",")) }
    } else if md {
      print("| " + header.joined(separator: " | ") + " |")
      print("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
      for row in rows { print("| " + row.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |") }
    } else {
      let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
      Terminal.printPaged(
        ([header] + rows).map { line in
          line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        })
    }
  }

  /// Numbers with `precision` significant digits; other values as they are.
  static func format(_ value: String, precision: Int) -> String {
    guard let number = Double(value), value.contains(".") || value.contains("e") else { return value }
    var text = String(format: "%.\(precision)g", number)
    if text.contains("e") { return text }
    if text.contains(".") { while text.hasSuffix("0") { text.removeLast() } }
    if text.hasSuffix(".") { text.removeLast() }
    return text
  }

  static func csvField(_ field: String) -> String {
    field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
      ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
  }
}

struct ExpDiff: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "diff", abstract: "Params and metrics of two experiments (or one and the workspace), side by side.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.") var json = false

  @Flag(help: "Also the values that are the same.") var all = false

  @Argument(help: "An experiment.") var a: String
  @Argument(help: "Another (default: the workspace).") var b: String = "workspace"

  func run() throws {
    let table = try global.workspace().experimentTable()
    let rows = try [a, b].map { name in
      guard let row = table.rows.first(where: { $0.name == name }) else { throw ExperimentError.unknown(name) }
      return row
    }
    let changes = table.columns.compactMap { column -> (ExperimentTable.Column, String, String)? in
      let old = rows[0].values[column] ?? "-"
      let new = rows[1].values[column] ?? "-"
      return all || old != new ? (column, old, new) : nil
    }
    if json {
      try Terminal.printJSON(
        changes.map { ["kind": $0.0.kind.rawValue, "path": $0.0.file, "key": $0.0.key, a: $0.1, b: $0.2] })
      return
    }
    if changes.isEmpty { print("'\(a)' and '\(b)' have the same params and metrics") }
    for (column, old, new) in changes {
      let change = Double(old).flatMap { o in Double(new).map { String(format: "%+g", $0 - o) } } ?? (old == new ? "" : "changed")
      print("\(column.kind.rawValue)  \(column.title)  \(old) -> \(new)  \(change)")
    }
  }
}

struct ExpApply: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "apply", abstract: "Put an experiment's params files and outputs into the workspace (no rerun).")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Overwrite uncommitted changes to params files, stages.lock and outputs.")
  var force = false

  @Argument(help: "The experiment.") var name: String

  func run() throws {
    let result = try global.workspace().applyExperiment(name, force: force)
    print("applied experiment '\(name)': \(result.changed.count) of \(result.checked) outputs checked out")
  }
}

struct ExpBranch: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "branch", abstract: "Make a git branch with an experiment's params, metrics and stages.lock committed.")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "The experiment.") var name: String
  @Argument(help: "The new branch.") var branch: String

  func run() throws {
    let commit = try global.workspace().branchExperiment(name, branch: branch)
    print("branch '\(branch)' (\(commit.prefix(7))) holds experiment '\(name)'; `git checkout \(branch)` then `dv checkout`")
  }
}

struct ExpRemove: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "remove", abstract: "Forget experiments (their outputs stay in the cache until `dv gc`).")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Every experiment.") var all = false

  @Flag(help: "Every queued experiment.") var queued = false

  @Argument(help: "Experiments to remove.") var names: [String] = []

  func validate() throws {
    if [all, queued, !names.isEmpty].filter({ $0 }).count != 1 {
      throw ValidationError("name experiments, or pass --queued or --all")
    }
  }

  func run() throws {
    let workspace = try global.workspace()
    let removed = queued ? try workspace.removeFromQueue([], allQueued: true) : try workspace.removeExperiments(names, all: all)
    print("removed \(removed.count) experiment\(removed.count == 1 ? "" : "s")")
  }
}

struct ExpPush: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "push", abstract: "Send finished experiments and their outputs to a remote.")

  @OptionGroup var global: GlobalOptions

  @Option(name: .shortAndLong, help: "The remote (default: core.remote).") var remote: String?
  @Option(name: .shortAndLong, help: "Parallel transfers.") var jobs: Int?
  @Argument(help: "Experiments (default: all).") var names: [String] = []

  func run() throws {
    let result = try global.workspace().pushExperiments(names, remote: remote, jobs: jobs)
    print("pushed \(result.experiments.count) experiment\(result.experiments.count == 1 ? "" : "s") and \(result.objects.transferred) objects to '\(result.remote)'")
  }
}

struct ExpPull: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pull", abstract: "Receive a remote's experiments and their outputs.")

  @OptionGroup var global: GlobalOptions

  @Option(name: .shortAndLong, help: "The remote (default: core.remote).") var remote: String?
  @Option(name: .shortAndLong, help: "Parallel transfers.") var jobs: Int?
  @Argument(help: "Experiments (default: all).") var names: [String] = []

  func run() throws {
    let result = try global.workspace().pullExperiments(names, remote: remote, jobs: jobs)
    print("pulled \(result.experiments.count) experiment\(result.experiments.count == 1 ? "" : "s") and \(result.objects.transferred) objects from '\(result.remote)'")
  }
}

struct QueueCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "queue", abstract: "Run queued experiments, each in an isolated copy of the workspace.",
    subcommands: [QueueStart.self, QueueStatus.self, QueueLogs.self, QueueKill.self, QueueRemove.self])
}

struct QueueStart: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "start", abstract: "Run the queued experiments, N at a time, until the queue is empty.")

  @OptionGroup var global: GlobalOptions

  @Option(name: .shortAndLong, help: "Experiments at a time.") var jobs = 1

  func run() throws {
    let finished = try global.workspace().startQueue(jobs: jobs) { name, status in
      print("experiment '\(name)' \(status.rawValue)")
      fflush(stdout)
    }
    let failed = finished.filter { $0.status == .failed }.count
    print("ran \(finished.count) experiment\(finished.count == 1 ? "" : "s")\(failed > 0 ? ", \(failed) failed" : "")")
    if failed > 0 { throw ExitCode(1) }
  }
}

struct QueueStatus: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "status", abstract: "Queued and running experiments.")

  @OptionGroup var global: GlobalOptions
  @Flag(help: "Print JSON.") var json = false

  func run() throws {
    let queue = try global.workspace().queueStatus()
    if json {
      try Terminal.printJSON(
        queue.map { entry -> [String: Any] in
          var value: [String: Any] = ["name": entry.name, "state": entry.status.rawValue, "overrides": entry.overrides]
          value["pid"] = entry.pid.map { Int($0) }
          return value
        })
      return
    }
    if queue.isEmpty { print("the queue is empty") }
    for entry in queue {
      print("\(entry.name)  \(entry.status.rawValue)\(entry.pid.map { " (pid \($0))" } ?? "")  \(entry.overrides.joined(separator: " "))")
    }
  }
}

struct QueueLogs: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "logs", abstract: "What a queued experiment's run printed.")

  @OptionGroup var global: GlobalOptions
  @Flag(name: .shortAndLong, help: "Follow the log while the experiment runs.") var follow = false
  @Argument(help: "The experiment.") var name: String

  func run() throws {
    let workspace = try global.workspace()
    var shown = 0
    repeat {
      let text = Array(try workspace.queueLog(name).utf8)
      if text.count > shown {
        FileHandle.standardOutput.write(Data(text[shown...]))
        shown = text.count
      }
      guard follow, workspace.isRunning(name) else { break }
      Thread.sleep(forTimeInterval: 0.2)
    } while true
  }
}

struct QueueKill: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "kill", abstract: "Stop a running experiment.")

  @OptionGroup var global: GlobalOptions
  @Argument(help: "The experiment.") var name: String

  func run() throws {
    try global.workspace().killQueued(name)
    print("stopped experiment '\(name)'")
  }
}

struct QueueRemove: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "remove", abstract: "Take queued experiments off the queue.")

  @OptionGroup var global: GlobalOptions
  @Flag(help: "Every queued experiment.") var queued = false
  @Flag(help: "Every queued experiment (running ones are stopped with `dv queue kill`).") var all = false
  @Argument(help: "Experiments.") var names: [String] = []

  func validate() throws {
    if (queued || all) == !names.isEmpty { throw ValidationError("name experiments, or pass --queued or --all") }
  }

  func run() throws {
    let removed = try global.workspace().removeFromQueue(names, allQueued: queued || all)
    print("removed \(removed.count) experiment\(removed.count == 1 ? "" : "s") from the queue")
  }
}
