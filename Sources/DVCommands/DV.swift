import ArgumentParser
import DVBasics
import DVWorkspace
import Foundation

/// The `dv` command: parses, runs one workspace operation, renders the result.
public struct DV: ParsableCommand {
  /// The release and the git revision it was built from: `0.1.0 (git 8ba2844c1f0e)`.
  public static let version = "\(Workspace.dvVersion) (git \(buildRevision))"

  public static let configuration = CommandConfiguration(
    commandName: "dv",
    abstract: "Content-addressed data versioning and pipelines.",
    version: version,
    subcommands: [
      InitCommand.self, AddCommand.self, StatusCommand.self, CheckoutCommand.self, GCCommand.self,
      FsckCommand.self, ReproCommand.self, DAGCommand.self, StageCommand.self, MetricsCommand.self,
      ParamsCommand.self, PluginsCommand.self, LineageCommand.self, RemoteCommand.self, PushCommand.self,
      PullCommand.self, FetchCommand.self, HooksCommand.self, ConfigCommand.self, DoctorCommand.self, ExpCommand.self, QueueCommand.self, ExecStageCommand.self,
    ])

  public init() {}

  /// Runs the command line, mapping every failure to one line on stderr and the exit codes of
  /// docs/architecture.md §1: 0 ok, 1 a check or operation failed, 2 bad usage or bad input.
  public static func run(arguments: [String]? = nil) -> Never {
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
      Foundation.exit(0)
    } catch let error as DVError {
      Terminal.error(error.description)
      Foundation.exit(error.kind.exitCode)
    } catch let code as ExitCode {
      Foundation.exit(code.rawValue)
    } catch {
      if Self.exitCode(for: error) == .success {
        let message = Self.fullMessage(for: error)
        if !message.isEmpty { print(message) }
        Foundation.exit(0)
      }
      // Bad usage is bad input: one line, and where the command's usage is.
      let brief = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
      let command = (["dv"] + Self.subcommandPath(arguments ?? Array(CommandLine.arguments.dropFirst())))
        .joined(separator: " ")
      Terminal.error(Self.withoutErrorPrefix(brief) + " (see `" + command + " --help`)")
      Foundation.exit(2)
    }
  }

  /// The subcommand names `arguments` start with (`["remote", "add"]` for `remote add s3://...`).
  static func subcommandPath(_ arguments: [String]) -> [String] {
    var path: [String] = []
    var commands = configuration.subcommands
    for argument in arguments {
      guard let next = commands.first(where: { $0.configuration.commandName == argument }) else { break }
      path.append(argument)
      commands = next.configuration.subcommands
    }
    return path
  }

  /// ArgumentParser's messages may start with "Error: "; Terminal.error adds dv's own prefix.
  static func withoutErrorPrefix(_ message: String) -> String {
    message.hasPrefix("Error: ") ? String(message.dropFirst("Error: ".count)) : message
  }
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
  @Flag(name: .shortAndLong, help: "Print no progress.")
  var quiet = false

  /// Opens the workspace around the current directory with a progress line on a terminal.
  func workspace() throws -> Workspace {
    try Workspace(containing: try FileSystem.currentDirectory(), progress: progress())
  }

  func progress() -> ProgressReporter {
    quiet || !Terminal.stderrIsTerminal ? SilentProgress() : TerminalProgress()
  }
}
