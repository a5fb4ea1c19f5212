import ArgumentParser
import DVBasics
import DVWorkspace
import Foundation

struct DoctorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "doctor",
    abstract: "Show dv's version, the platform, and what works in this workspace.",
    discussion: """
      Tries each cache link type on this filesystem, asks each remote for one key, and reports the
      sizes of the cache, the lineage ledger and the stat cache, and which git hooks are installed.
      Changes nothing.
      """)

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    let platform = Workspace.platformDescription()
    let workspace: Workspace?
    do {
      workspace = try global.workspace()
    } catch WorkspaceError.notAWorkspace {
      workspace = nil
    }
    let report = workspace?.doctor(environment: ProcessInfo.processInfo.environment)
    if json {
      try Terminal.printJSON(jsonObject(platform: platform, report: report))
    } else {
      print("dv \(DV.version)")
      print("platform: \(platform)")
      if let report { printText(report) } else { print("workspace: none (not inside a dv workspace)") }
    }
  }

  private func printText(_ report: DoctorReport) {
    print("workspace: \(report.root) (\(report.filesystem))")
    let links = report.links.map { "\($0.type.rawValue) \($0.failure == nil ? "works" : "no (\($0.failure!))")" }
    print("cache links: " + links.joined(separator: ", "))
    let configured = report.configuredCacheTypes.map(\.rawValue).joined(separator: ", ")
    print("cache.type: [\(configured)] -> \(report.effectiveCacheType?.rawValue ?? "none works")")
    print("cache: \(report.cacheFiles) files, \(Format.bytes(report.cacheBytes))")
    print("lineage ledger: \(Format.bytes(report.ledgerBytes)); stat cache: \(Format.bytes(report.stateCacheBytes))")
    if report.remotes.isEmpty { print("remotes: none") }
    for remote in report.remotes {
      let seconds = String(format: "%.2f s", remote.seconds)
      let state = remote.failure.map { "does not answer: \($0)" } ?? "answers (\(seconds))"
      print("remote \(remote.name)\(remote.isDefault ? " (default)" : ""): \(remote.url): \(state)")
    }
    if let problem = report.hooksProblem {
      print("git hooks: none (\(problem))")
    } else {
      let hooks = report.hooks.map { "\($0.hook.rawValue) \($0.state.rawValue)" }
      print("git hooks (\(report.hooksDirectory ?? "")): " + hooks.joined(separator: ", "))
    }
  }

  private func jsonObject(platform: String, report: DoctorReport?) -> [String: Any] {
    var object: [String: Any] = ["version": DV.version, "platform": platform]
    guard let report else { return object }
    var workspace: [String: Any] = [
      "root": report.root, "filesystem": report.filesystem,
      "links": report.links.map { link -> [String: Any] in
        var entry: [String: Any] = ["type": link.type.rawValue, "works": link.failure == nil]
        entry["reason"] = link.failure
        return entry
      },
      "cache_type": report.configuredCacheTypes.map(\.rawValue),
      "cache": ["files": report.cacheFiles, "bytes": report.cacheBytes],
      "ledger_bytes": report.ledgerBytes, "state_cache_bytes": report.stateCacheBytes,
      "remotes": report.remotes.map { remote -> [String: Any] in
        var entry: [String: Any] = [
          "name": remote.name, "url": remote.url, "default": remote.isDefault, "answers": remote.failure == nil,
          "seconds": (remote.seconds * 1000).rounded() / 1000,
        ]
        entry["reason"] = remote.failure
        return entry
      },
      "hooks": report.hooks.map { ["name": $0.hook.rawValue, "state": $0.state.rawValue] },
    ]
    workspace["effective_cache_type"] = report.effectiveCacheType?.rawValue
    workspace["hooks_directory"] = report.hooksDirectory
    workspace["hooks_problem"] = report.hooksProblem
    object["workspace"] = workspace
    return object
  }
}
