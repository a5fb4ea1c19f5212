import ArgumentParser
import DVPipeline
import DVWorkspace
import Foundation

struct ReproCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "repro", abstract: "Run the stale stages of stages.yaml in dependency order.")

  @OptionGroup var global: GlobalOptions

  @Flag(name: .shortAndLong, help: "Run the selected stages even when nothing changed.")
  var force = false

  @Flag(name: [.customShort("n"), .long], help: "Print what would run and why; run nothing.")
  var dryRun = false

  @Flag(name: .shortAndLong, help: "Only the named stages, not the stages they depend on.")
  var singleItem = false

  @Flag(help: "The named stages and every stage that depends on them.")
  var downstream = false

  @Flag(help: "After a failure, let stages that do not depend on it run.")
  var keepGoing = false

  @Flag(help: "Run stale stages even when an earlier run with the same inputs left its outputs in the cache.")
  var noRunCache = false

  @Option(name: .shortAndLong, help: "Run up to N independent stages at the same time (jobs in the cluster with Slurm).")
  var jobs = 1

  @Option(help: "Where stages run that do not name an executor: local or slurm (default: the config's executor).")
  var executor: String?

  @Argument(help: "Stages to reproduce (default: all).")
  var targets: [String] = []

  func validate() throws {
    if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    if let executor, ExecutorKind(rawValue: executor) == nil {
      throw ValidationError("unknown executor '\(executor)' (use local or slurm)")
    }
  }

  func run() throws {
    var options = ReproOptions()
    options.targets = targets
    options.force = force
    options.dryRun = dryRun
    options.singleItem = singleItem
    options.downstream = downstream
    options.keepGoing = keepGoing
    options.jobs = jobs
    options.useRunCache = !noRunCache
    options.executor = executor.flatMap(ExecutorKind.init(rawValue:))
    let outcomes = try global.workspace().repro(options, observer: ReproPrinter())
    if outcomes.isEmpty { print("no stages to run") }
  }
}

/// Prints stage progress between the stages' own output (flushed, so the order holds in pipes);
/// with several jobs, each line of a stage's output is prefixed with `[stage]`.
final class ReproPrinter: ReproObserver, @unchecked Sendable {
  private let lock = NSLock()

  func stageOutput(_ name: String, line: String) { say("[\(name)] \(line)") }

  func stageSkipped(_ name: String, frozen: Bool) {
    say(frozen ? "Stage '\(name)' is frozen, skipping" : "Stage '\(name)' didn't change, skipping")
  }

  func stageStarting(_ name: String, command: String, reasons: [StaleReason], dryRun: Bool) {
    let why = reasons.isEmpty ? "forced" : reasons.map(\.description).joined(separator: "; ")
    say("\(dryRun ? "Would run" : "Running") stage '\(name)' (\(why)):\n> \(command)")
  }

  func stageFinished(_ name: String) {}

  func stageRetrying(_ name: String, attempt: Int, of attempts: Int, reason: String) {
    say("Stage '\(name)' failed (\(reason)); starting attempt \(attempt) of \(attempts)")
  }

  func stageRestored(_ name: String, reasons: [StaleReason]) {
    let why = reasons.isEmpty ? "forced" : reasons.map(\.description).joined(separator: "; ")
    say("Stage '\(name)' is stale (\(why)); restored its outputs from the run cache")
  }

  private func say(_ line: String) {
    lock.lock()
    defer { lock.unlock() }
    print(line)
    fflush(stdout)
  }
}
