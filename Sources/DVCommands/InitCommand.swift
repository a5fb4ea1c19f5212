import ArgumentParser
import DVBasics
import DVWorkspace

struct InitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init", abstract: "Make the current directory a dv workspace (.pipeline/).")

  @Flag(help: "Use dv without git: no .gitignore entries are written.")
  var noSCM = false

  func run() throws {
    let result = try Workspace.initialize(at: try FileSystem.currentDirectory(), noSCM: noSCM)
    print("Initialized dv workspace in \(result.root)")
    if !result.noSCM {
      print("To track the changes with git, run:\n\n    git add \(result.created.joined(separator: " "))")
    }
  }
}
