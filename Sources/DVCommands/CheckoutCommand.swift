import ArgumentParser
import DVWorkspace

struct CheckoutCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "checkout", abstract: "Make the workspace match the .dv pointers and stages.lock.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Overwrite or delete workspace files even when their content is not in the cache.")
  var force = false

  @Argument(help: "Only these tracked paths.")
  var paths: [String] = []

  func run() throws {
    let result = try global.workspace().checkout(paths, force: force)
    if result.changed.isEmpty {
      print(result.checked == 0 ? "nothing is tracked yet" : "workspace is up to date")
    }
    for data in result.changed {
      var parts = ["\(Format.plural(data.written, "file")) written"]
      if data.deleted > 0 { parts.append("\(Format.count(data.deleted)) deleted") }
      print("\(data.path): \(parts.joined(separator: ", "))")
    }
  }
}
