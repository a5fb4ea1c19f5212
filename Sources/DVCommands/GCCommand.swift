import ArgumentParser
import DVWorkspace

struct GCCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gc", abstract: "Remove cached objects that no pointer or stages.lock references.")

  @OptionGroup var global: GlobalOptions

  @Flag(name: [.customShort("n"), .long], help: "List what would be removed; remove nothing.")
  var dryRun = false

  @Flag(help: "Print the result as JSON.")
  var json = false

  @Option(help: "Collect the garbage on this remote instead of the local cache.")
  var remote: String?

  @Flag(help: "Confirm deleting from a remote (other branches and teammates may need its objects).")
  var yes = false

  func run() throws {
    if let remote {
      let result = try global.workspace().collectRemoteGarbage(remote: remote, dryRun: dryRun, confirmed: yes)
      if json {
        try Terminal.printJSON([
          "remote": result.remote, "dry_run": result.dryRun, "kept": result.kept,
          "removed_bytes": result.removedBytes, "removed": result.removed.map { "sha256:" + $0.id },
        ])
        return
      }
      let verb = dryRun ? "would remove" : "removed"
      print(
        "\(verb) \(Format.plural(result.removed.count, "object")) (\(Format.bytes(result.removedBytes))) from '\(result.remote)'; kept \(Format.count(result.kept))"
      )
      if dryRun { for object in result.removed { print("    sha256:\(object.id)  \(Format.bytes(object.size))") } }
      return
    }
    let result = try global.workspace().collectGarbage(dryRun: dryRun)
    if json {
      try Terminal.printJSON([
        "dry_run": result.dryRun, "kept": result.kept, "removed_bytes": result.removedBytes,
        "removed": result.removed.map { $0.id.description },
      ])
      return
    }
    let verb = dryRun ? "would remove" : "removed"
    print(
      "\(verb) \(Format.plural(result.removed.count, "object")) (\(Format.bytes(result.removedBytes))); kept \(Format.count(result.kept))"
    )
    if dryRun { for object in result.removed { print("    \(object.id)  \(Format.bytes(object.size))") } }
  }
}
