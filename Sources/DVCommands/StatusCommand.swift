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

  @Flag(
    help: ArgumentHelp(
      "Compare with a remote instead: what is missing on it and what is missing locally.",
      discussion: "`dv status --remote NAME` names the remote; without a name, core.remote."))
  var remote = false

  @Argument(help: "Only these tracked paths.")
  var paths: [String] = []

  func run() throws {
    let workspace = try global.workspace()
    if remote {
      var paths = paths
      var name: String?
      if let first = paths.first, workspace.config.remotes[first] != nil {
        name = first
        paths.removeFirst()
      }
      let report = try workspace.remoteStatus(paths, remote: name)
      if json {
        try Terminal.printJSON(RemoteStatusRendering.json(report))
      } else {
        print(RemoteStatusRendering.text(report), terminator: "")
      }
      if check && !report.inSync { throw ExitCode(1) }
      return
    }
    let report = try workspace.status(paths)
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

enum RemoteStatusRendering {
  static func text(_ report: RemoteStatusReport) -> String {
    if report.inSync { return "everything is on '\(report.remote)' and in the cache\n" }
    var out = ""
    for data in report.data where data.missingOnRemote > 0 || data.missingLocally > 0 || !data.complete {
      var parts: [String] = []
      if data.missingOnRemote > 0 {
        parts.append(
          data.missingOnRemote == data.objects
            ? "missing on '\(report.remote)'"
            : "\(Format.count(data.missingOnRemote)) of \(Format.plural(data.objects, "object")) missing on '\(report.remote)'"
        )
      }
      if data.missingLocally > 0 {
        parts.append(
          data.missingLocally == data.objects
            ? "missing locally"
            : "\(Format.count(data.missingLocally)) of \(Format.plural(data.objects, "object")) missing locally")
      }
      if !data.complete { parts.append("its files are unknown until its manifest is fetched") }
      out += "\(data.path): \(parts.joined(separator: "; ")) (\(data.recordedIn))\n"
    }
    return out
  }

  static func json(_ report: RemoteStatusReport) -> [String: Any] {
    [
      "remote": report.remote, "in_sync": report.inSync,
      "data": report.data.map { data -> [String: Any] in
        [
          "path": data.path.value, "recorded_in": data.recordedIn, "objects": data.objects,
          "missing_on_remote": data.missingOnRemote, "missing_locally": data.missingLocally,
          "complete": data.complete,
        ]
      },
    ]
  }
}
