import ArgumentParser
import DVRemotes
import DVWorkspace

/// Options of the commands that talk to a remote.
struct TransferOptions: ParsableArguments {
  @Option(name: [.customShort("r"), .long], help: "The remote (default: core.remote).")
  var remote: String?

  @Option(
    name: [.customShort("j"), .long],
    help: "Parallel transfers (default: 4 x cores for buckets, cores for directories).")
  var jobs: Int?

  func validate() throws {
    if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
  }
}

struct PushCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "push", abstract: "Upload the data the workspace references, and new run records, to a remote.")

  @OptionGroup var global: GlobalOptions
  @OptionGroup var transfer: TransferOptions

  @Flag(help: "Also upload the cached outputs the run records name, so others' `dv repro` can restore them.")
  var runCache = false

  @Argument(help: "Only these tracked paths.")
  var targets: [String] = []

  func run() throws {
    let result = try global.workspace().push(
      targets, remote: transfer.remote, jobs: transfer.jobs, runCache: runCache)
    let summary = result.summary
    if summary.transferred == 0 && summary.failed.isEmpty && result.runRecords == 0 {
      print("everything is already on '\(result.remote)'")
    } else {
      print(
        "pushed \(Format.plural(summary.transferred, "object")) (\(Format.bytes(summary.bytes))), \(Format.count(summary.failed.count)) failed"
          + (result.runRecords > 0 ? "; \(Format.plural(result.runRecords, "run record"))" : ""))
    }
    for path in result.notCached {
      Terminal.warning("'\(path)' is not (fully) in the cache and was not pushed; run `dv add` or `dv repro`")
    }
    try summary.throwIfFailed()
  }
}
