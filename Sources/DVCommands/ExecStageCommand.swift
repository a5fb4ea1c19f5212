import ArgumentParser
import DVBasics
import DVPipeline
import DVWorkspace
import Foundation

/// What a cluster job runs on its node: one stage's command or plugin, in its wdir, exiting
/// with the stage's exit code. Hidden: `dv repro` submits it; users never type it.
struct ExecStageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "exec-stage", abstract: "Run one stage here, as a cluster job does.", shouldDisplay: false)

  @Option(help: "The stage's fingerprint when it was submitted.")
  var fingerprint: String

  @Argument(help: "The stage.")
  var stage: String

  func run() throws {
    let workspace = try Workspace(containing: try FileSystem.currentDirectory())
    do {
      try workspace.executeStage(named: stage, fingerprint: fingerprint)
    } catch StageRunError.exited(let code) {
      throw ExitCode(code)
    } catch StageRunError.interrupted {
      throw ExitCode(130)
    } catch StageRunError.failed(let message) {
      Terminal.error("stage '\(stage)' failed: \(message)")
      throw ExitCode(1)
    }
  }
}
