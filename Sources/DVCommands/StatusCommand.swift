import ArgumentParser
import DVPipeline
import DVWorkspace

struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show tracked data that differs from its pointer, and stages that would run.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print the report as JSON.")
  var json = false

  @Flag(help: "Exit with 1 when anything is modified, deleted or not cached (for hooks and CI).")
  var check = false

  @Argument(help: "Only these tracked paths.")
  var paths: [String] = []

  func run() throws {
    let report = try global.workspace().status(paths)
    if json {
      try Terminal.printJSON(StatusRendering.json(report))
    } else {
      print(StatusRendering.text(report), terminator: "")
    }
    if check && !report.isClean { throw ExitCode(1) }
  }
}

enum StatusRendering {
  static let listLimit = 20

  static func text(_ report: StatusReport) -> String {
    if report.isClean { return "data and pipelines are up to date\n" }
    var out = ""
    for stage in report.staleStages {
      out += "\(stage.name): " + stage.reasons.map(\.description).joined(separator: "; ") + "\n"
    }
    for change in report.changes {
      out += "\(change.path): \(change.state.rawValue) (\(change.recordedIn))\n"
      for (label, files) in [("modified", change.modified), ("deleted", change.deleted), ("added", change.added)] {
        for file in files.prefix(listLimit) {
          out += "    \(label + ":")\(String(repeating: " ", count: 10 - label.count))\(file)\n"
        }
        if files.count > listLimit { out += "    ... and \(Format.count(files.count - listLimit)) more \(label)\n" }
      }
      if change.detailsUnavailable {
        out += "    (the recorded version is not in the cache; `dv pull` to list file changes)\n"
      }
    }
    return out
  }

  static func json(_ report: StatusReport) -> [String: Any] {
    [
      "clean": report.isClean,
      "checked": report.checked,
      "stages": report.staleStages.map { ["name": $0.name, "reasons": $0.reasons.map(\.description)] },
      "data": report.changes.map { change -> [String: Any] in
        [
          "path": change.path.value, "recorded_in": change.recordedIn, "state": change.state.rawValue,
          "added": change.added, "modified": change.modified, "deleted": change.deleted,
          "details_unavailable": change.detailsUnavailable,
        ]
      },
    ]
  }
}
