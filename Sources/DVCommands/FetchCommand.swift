import ArgumentParser
import DVRemotes
import DVWorkspace

struct FetchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fetch", abstract: "Download the data the workspace references into the cache, and import run records."
  )

  @OptionGroup var global: GlobalOptions
  @OptionGroup var transfer: TransferOptions

  @Flag(help: "Also download the outputs the run records name, so `dv repro` can restore them.")
  var runCache = false

  @Argument(help: "Only these tracked paths.")
  var targets: [String] = []

  func run() throws {
    let result = try global.workspace().fetch(
      targets, remote: transfer.remote, jobs: transfer.jobs, runCache: runCache)
    print(FetchRendering.text(result))
    try result.summary.throwIfFailed()
  }
}

enum FetchRendering {
  static func text(_ result: FetchResult) -> String {
    let summary = result.summary
    var line =
      summary.transferred == 0 && summary.failed.isEmpty
      ? "everything is already in the cache"
      : "fetched \(Format.plural(summary.transferred, "object")) (\(Format.bytes(summary.bytes))) from '\(result.remote)', \(Format.count(summary.failed.count)) failed"
    if result.runRecords > 0 { line += "; imported \(Format.plural(result.runRecords, "run record"))" }
    return line
  }
}
