import ArgumentParser
import DVPipeline
import DVWorkspace

struct StageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stage", abstract: "Edit the stages of stages.yaml.", subcommands: [StageAddCommand.self])
}

struct StageAddCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "add",
    abstract:
      "Append a stage to stages.yaml, e.g. `dv stage add -n clean -d data/raw -o data/clean -- python clean.py`.")

  @OptionGroup var global: GlobalOptions

  @Option(name: .shortAndLong, help: "The stage's name.")
  var name: String

  @Option(name: .shortAndLong, help: "A dependency (repeat for more).")
  var deps: [String] = []

  @Option(name: .shortAndLong, help: "An output, cached (repeat for more).")
  var outs: [String] = []

  @Option(name: .customShort("O"), help: "An output kept out of the cache.")
  var outsNoCache: [String] = []

  @Option(name: .shortAndLong, help: "A metrics file (not cached).")
  var metrics: [String] = []

  @Option(name: .shortAndLong, help: "A key of params.yaml the stage reads.")
  var params: [String] = []

  @Option(name: .shortAndLong, help: "The directory the command runs in.")
  var wdir: String?

  @Flag(name: .shortAndLong, help: "Replace a stage of the same name.")
  var force = false

  @Argument(parsing: .captureForPassthrough, help: "The command (after --).")
  var command: [String] = []

  func validate() throws {
    if command.filter({ $0 != "--" }).isEmpty { throw ValidationError("give the stage's command after --") }
  }

  func run() throws {
    var stage = NewStage(name: name, command: command.filter { $0 != "--" }.joined(separator: " "))
    stage.deps = deps
    stage.outs = outs
    stage.outsNoCache = outsNoCache
    stage.metrics = metrics
    stage.params = params
    stage.wdir = wdir
    try global.workspace().addStage(stage, replace: force)
    print("added stage '\(name)' to stages.yaml")
  }
}
