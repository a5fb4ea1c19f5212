import ArgumentParser
import DVBasics
import DVPipeline
import DVPlugins
import DVWorkspace
import Foundation

struct PluginsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plugins", abstract: "The stage plugins dv can run.", subcommands: [PluginsList.self])
}

struct PluginsList: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "Every plugin kind, its version and where it comes from.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    let listing: [PluginListing]
    if let workspace = try? global.workspace() {
      listing = workspace.pluginListing()
    } else {
      let path = PluginRegistry.searchPath(
        workspaceRoot: "/nonexistent", environment: ProcessInfo.processInfo.environment)
      listing = Workspace.pluginListing(registry: BuiltInPlugins.registry(searchPath: Array(path.dropFirst())))
    }
    if json {
      try Terminal.printJSON(
        listing.map { item -> [String: String] in
          var entry = ["kind": item.kind, "origin": item.origin]
          entry["version"] = item.version
          entry["problem"] = item.problem
          return entry
        })
      return
    }
    let width = listing.map(\.kind.count).max() ?? 0
    let versionWidth = listing.map { ($0.version ?? "?").count }.max() ?? 0
    for item in listing {
      let kind = item.kind.padding(toLength: width, withPad: " ", startingAt: 0)
      let version = (item.version ?? "?").padding(toLength: versionWidth, withPad: " ", startingAt: 0)
      print("\(kind)  \(version)  \(item.origin)" + (item.problem.map { "  (unusable: \($0))" } ?? ""))
    }
  }
}
