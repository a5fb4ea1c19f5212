import ArgumentParser
import DVPipeline
import DVWorkspace
import Foundation

struct MetricsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "metrics", abstract: "Show the pipeline's metrics, or how they changed since git HEAD.",
    subcommands: [MetricsShow.self, MetricsDiff.self])
}

struct MetricsShow: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "show", abstract: "Print every metric of stages.yaml.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws {
    let report = try global.workspace().metrics()
    if json {
      try Terminal.printJSON(
        Dictionary(
          uniqueKeysWithValues: report.files.map { file in
            (file.path, Dictionary(file.values.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }))
          }))
      return
    }
    if report.files.isEmpty { print("no metrics in stages.yaml (or none written yet)") }
    for file in report.files {
      print(file.path)
      for (key, value) in file.values { print("    \(key): \(value)") }
    }
  }
}

struct MetricsDiff: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "diff", abstract: "Metrics that differ from git HEAD.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws { try ChangeRendering.render(try global.workspace().metricsDiff(), json: json, what: "metrics") }
}

struct ParamsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "params", abstract: "How the params stages read changed since git HEAD.",
    subcommands: [ParamsDiff.self])
}

struct ParamsDiff: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "diff", abstract: "Params that differ from git HEAD.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print JSON.")
  var json = false

  func run() throws { try ChangeRendering.render(try global.workspace().paramsDiff(), json: json, what: "params") }
}

enum ChangeRendering {
  static func render(_ changes: [MetricsFile.Change], json: Bool, what: String) throws {
    if json {
      try Terminal.printJSON(
        changes.map { c -> [String: Any] in
          var row: [String: Any] = ["path": c.path, "key": c.key, "old": c.old ?? NSNull(), "new": c.new ?? NSNull()]
          if let delta = c.delta { row["change"] = delta }
          return row
        })
      return
    }
    if changes.isEmpty {
      print("no \(what) changed since HEAD")
      return
    }
    for c in changes {
      let change = c.delta.map { String(format: "  (%+g)", $0) } ?? ""
      print("\(c.path)  \(c.key): \(c.old ?? "-") -> \(c.new ?? "-")\(change)")
    }
  }
}
