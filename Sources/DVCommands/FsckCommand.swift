import ArgumentParser
import DVWorkspace

struct FsckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fsck", abstract: "Verify every cached object; move corrupt ones aside.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print the result as JSON.")
  var json = false

  func run() throws {
    let result = try global.workspace().fsck()
    if json {
      try Terminal.printJSON([
        "checked": result.checked, "bytes": result.bytes,
        "corrupt": result.corrupt.map { ["hash": $0.id.description, "moved_to": $0.movedTo] },
      ])
    } else {
      for bad in result.corrupt { print("corrupt: \(bad.id) moved to \(bad.movedTo)") }
      if result.corrupt.isEmpty {
        print("verified \(Format.plural(result.checked, "object")) (\(Format.bytes(result.bytes))): all good")
      }
    }
    if !result.corrupt.isEmpty { throw WorkspaceError.corruptObjects(result.corrupt.count) }
  }
}
