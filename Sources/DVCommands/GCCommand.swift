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

  @Flag(
    help:
      "With --remote: also rewrite packs that hold unreferenced or duplicate objects, or that are small, keeping only referenced objects."
  )
  var repack = false

  func validate() throws {
    if repack && remote == nil { throw ValidationError("--repack rewrites a remote's packs: give --remote NAME") }
  }

  func run() throws {
    if let remote {
      let result = try global.workspace().collectRemoteGarbage(
        remote: remote, dryRun: dryRun, confirmed: yes, repack: repack)
      if json {
        try Terminal.printJSON([
          "remote": result.remote, "dry_run": result.dryRun, "kept": result.kept,
          "removed_objects": result.removedObjects, "removed_bytes": result.removedBytes,
          "removed": result.removed.map { "sha256:" + $0.id },
          "removed_packs": result.removedPacks.map {
            ["name": $0.name, "size": $0.size, "garbage_objects": $0.garbage, "reason": $0.reason] as [String: Any]
          },
          "repacked_objects": result.repackedObjects, "new_packs": result.newPacks,
        ])
        return
      }
      let verb = dryRun ? "would remove" : "removed"
      var line = "\(verb) \(Format.plural(result.removedObjects, "object"))"
      if !result.removedPacks.isEmpty { line += " and \(Format.plural(result.removedPacks.count, "pack"))" }
      line += " (\(Format.bytes(result.removedBytes))) from '\(result.remote)'; kept \(Format.count(result.kept))"
      print(line)
      if result.repackedObjects > 0 {
        print(
          dryRun
            ? "would rewrite \(Format.plural(result.repackedObjects, "referenced object")) into new packs"
            : "rewrote \(Format.plural(result.repackedObjects, "referenced object")) into \(Format.plural(result.newPacks, "new pack"))"
        )
      }
      if dryRun {
        for object in result.removed { print("    sha256:\(object.id)  \(Format.bytes(object.size))") }
        for pack in result.removedPacks {
          print("    pack \(pack.name)  \(Format.bytes(pack.size))  (\(pack.reason))")
        }
      }
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
