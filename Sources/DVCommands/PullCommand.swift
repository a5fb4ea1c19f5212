import ArgumentParser
import DVRemotes
import DVWorkspace

struct PullCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pull", abstract: "Fetch the data the workspace references from a remote and check it out.")

  @OptionGroup var global: GlobalOptions
  @OptionGroup var transfer: TransferOptions

  @Flag(help: "Overwrite or delete workspace files even when their content is not in the cache.")
  var force = false

  @Flag(help: "Also download the outputs the run records name, so `dv repro` can restore them.")
  var runCache = false

  @Argument(help: "Only these tracked paths.")
  var targets: [String] = []

  func run() throws {
    let result = try global.workspace().pull(
      targets, remote: transfer.remote, jobs: transfer.jobs, force: force, runCache: runCache)
    print(FetchRendering.text(result.fetch))
    for data in result.checkout.changed {
      var parts = ["\(Format.plural(data.written, "file")) written"]
      if data.deleted > 0 { parts.append("\(Format.count(data.deleted)) deleted") }
      print("\(data.path): \(parts.joined(separator: ", "))")
    }
  }
}
