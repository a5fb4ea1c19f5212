import CDVSystem
import DVBasics
import Foundation

/// A plugin stage's configuration (`with:`, or a shell stage's command) and where it was written.
public struct PluginConfig: Sendable {
  public var value: ConfigValue
  public var location: SourceLocation

  public init(value: ConfigValue, location: SourceLocation) {
    self.value = value
    self.location = location
  }
}

/// What a running stage gets.
public struct StageContext: Sendable {
  public var stage: Stage
  public var config: PluginConfig
  public var workspaceRoot: String
  /// Receives the stage's output line by line when stages run in parallel; nil: the output goes
  /// straight to dv's own stdout and stderr.
  public var output: (@Sendable (String) -> Void)?
}

/// A kind of stage (DESIGN.md §7). `cmd:` stages are the built-in `shell` plugin.
public protocol StagePlugin: Sendable {
  /// The name used in `plugin:` ("shell", "validate", …).
  static var kind: String { get }
  /// Part of the stage's identity in stages.lock: a new version makes its stages stale.
  static var version: String { get }
  /// Checks the configuration when stages.yaml is loaded; errors name `config.location`.
  func validate(config: PluginConfig) throws
  /// Reads the dependencies, writes the outputs. Throws `StageRunError` when the work fails.
  func run(_ context: StageContext) async throws
}

/// How a stage's work failed.
public enum StageRunError: Error, Sendable {
  /// The command exited with this code (128 + signal when killed).
  case exited(Int32)
  /// dv received SIGINT/SIGTERM/SIGHUP while the stage ran.
  case interrupted
  /// The stage could not be started.
  case couldNotStart(String)
}

/// Maps plugin kinds to plugins.
public struct PluginRegistry: Sendable {
  private var plugins: [String: any StagePlugin]

  /// The plugins that ship with dv.
  public static let builtIn = PluginRegistry(plugins: [ShellPlugin.kind: ShellPlugin()])

  init(plugins: [String: any StagePlugin]) { self.plugins = plugins }

  /// Every kind, sorted, with its version.
  public var kinds: [(kind: String, version: String)] {
    plugins.keys.sorted().map { ($0, type(of: plugins[$0]!).version) }
  }

  /// The plugin of a kind; a clear error at `location` for an unknown one.
  public func plugin(kind: String, at location: SourceLocation) throws -> any StagePlugin {
    guard let plugin = plugins[kind] else {
      throw FileFormatError.invalid(
        location, "unknown plugin '\(kind)' (available: \(plugins.keys.sorted().joined(separator: ", ")))")
    }
    return plugin
  }

  /// The plugin and configuration that run a stage: `cmd:` is `shell` with the command.
  public func resolve(_ stage: Stage) throws -> (any StagePlugin, PluginConfig) {
    switch stage.action {
    case .command(let cmd):
      return (plugins[ShellPlugin.kind]!, PluginConfig(value: .map([("cmd", .scalar(cmd))]), location: stage.location))
    case .plugin(let kind, let with):
      return (try plugin(kind: kind, at: stage.location), PluginConfig(value: with, location: stage.location))
    }
  }
}

/// Runs `sh -c cmd` in the stage's `wdir`, in a process group of its own so that a signal to dv
/// reaches the whole command.
public struct ShellPlugin: StagePlugin {
  public static let kind = "shell"
  public static let version = "1"

  public init() {}

  public func validate(config: PluginConfig) throws {
    guard case .map(let pairs) = config.value, pairs.count == 1, pairs[0].0 == "cmd", case .scalar = pairs[0].1 else {
      throw FileFormatError.invalid(config.location, "the shell plugin takes exactly {cmd: \"command\"}")
    }
  }

  public func run(_ context: StageContext) async throws {
    guard case .map(let pairs) = context.config.value,
      case .scalar(let command)? = pairs.first(where: { $0.0 == "cmd" })?.1
    else { throw StageRunError.couldNotStart("no command") }
    let cwd = context.stage.wdir.absolute(under: context.workspaceRoot)
    let code: Int32 = try await withCheckedThrowingContinuation { continuation in
      // Waiting blocks: a thread of its own keeps Swift's cooperative pool free.
      Thread.detachNewThread {
        do {
          continuation.resume(returning: try Self.spawnAndWait(command, cwd: cwd, output: context.output))
        } catch {
          continuation.resume(throwing: error)
        }
      }
    }
    if dv_received_signal() != 0 { throw StageRunError.interrupted }
    if code != 0 { throw StageRunError.exited(code) }
  }

  private static func spawnAndWait(_ command: String, cwd: String, output: (@Sendable (String) -> Void)?) throws
    -> Int32
  {
    guard let output else {
      let pid = dv_spawn_shell(command, cwd)
      if pid < 0 { throw StageRunError.couldNotStart(String(cString: strerror(errno))) }
      dv_forward_signals_add(pid)
      defer { dv_forward_signals_remove(pid) }
      return dv_wait_exit_code(pid)
    }
    var fds: [Int32] = [0, 0]
    if dv_pipe_cloexec(&fds) != 0 { throw StageRunError.couldNotStart(String(cString: strerror(errno))) }
    let pid = dv_spawn_shell_to(command, cwd, fds[1])
    let spawnErrno = errno
    close(fds[1])
    if pid < 0 {
      close(fds[0])
      throw StageRunError.couldNotStart(String(cString: strerror(spawnErrno)))
    }
    dv_forward_signals_add(pid)
    defer { dv_forward_signals_remove(pid) }
    forwardLines(from: fds[0], emit: output)
    close(fds[0])
    return dv_wait_exit_code(pid)
  }

  /// Reads until end of file, calling `emit` for every complete line (and a last partial one).
  static func forwardLines(from fd: Int32, emit: (String) -> Void) {
    var pendingBytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      pendingBytes.append(contentsOf: buffer[0..<n])
      while let newline = pendingBytes.firstIndex(of: 0x0A) {
        emit(String(decoding: pendingBytes[..<newline], as: UTF8.self))
        pendingBytes.removeSubrange(...newline)
      }
    }
    if !pendingBytes.isEmpty { emit(String(decoding: pendingBytes, as: UTF8.self)) }
  }
}

#if canImport(Glibc)
  import Glibc
#endif
