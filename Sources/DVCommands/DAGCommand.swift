import ArgumentParser
import DVWorkspace

struct DAGCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dag", abstract: "Show the stage graph of stages.yaml.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print Graphviz dot.")
  var dot = false

  @Flag(help: "Print a Mermaid flowchart.")
  var mermaid = false

  func validate() throws {
    if dot && mermaid { throw ValidationError("choose one of --dot and --mermaid") }
  }

  func run() throws {
    guard let pipeline = try global.workspace().pipeline() else {
      print("no stages.yaml in this workspace")
      return
    }
    print(dot ? pipeline.dot() : mermaid ? pipeline.mermaid() : pipeline.asciiGraph(), terminator: "")
  }
}
