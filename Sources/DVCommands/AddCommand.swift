import ArgumentParser
import DVWorkspace

struct AddCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "add", abstract: "Hash files or directories into the cache and record them in .dv pointer files.")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Files or directories to track.")
  var paths: [String]

  func run() throws {
    let result = try global.workspace().add(paths)
    var gitFiles: [String] = []
    for data in result.added {
      let shape = data.files.map { Format.plural($0, "file") + ", " } ?? ""
      if data.changed {
        print("added \(data.path): \(shape)\(Format.bytes(data.size)) (\(data.hash.short))")
        gitFiles.append(data.pointer.value)
      } else {
        print("\(data.path) is unchanged (\(data.hash.short))")
      }
      if let gitignore = data.gitignore { gitFiles.append(gitignore.value) }
    }
    if result.usesGit && !gitFiles.isEmpty && !global.quiet {
      print("\nTo track the changes with git, run:\n\n    git add \(gitFiles.joined(separator: " "))")
    }
  }
}
