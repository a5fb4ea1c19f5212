import CDVSystem
import DVBasics
import DVStorage
import Foundation

/// What a running stage gets.
public struct StageContext: Sendable {
  public var stage: Stage
  public var config: PluginConfig
  public var workspaceRoot: String
  /// Receives the stage's output line by line when stages run in parallel; nil: the output goes
  /// straight to dv's own stdout and stderr.
  public var output: (@Sendable (String) -> Void)?
  /// Records the version of an input outside the workspace (a URL's ETag) that this run used;
  /// stages.lock keeps it and `sourceVersion` is compared with it later.
  public var recordSource: @Sendable (String) -> Void

  public init(
    stage: Stage, config: PluginConfig, workspaceRoot: String, output: (@Sendable (String) -> Void)? = nil,
    recordSource: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.stage = stage
    self.config = config
    self.workspaceRoot = workspaceRoot
    self.output = output
    self.recordSource = recordSource
  }

  /// Writes a line of the stage's log: to the parallel-output sink, or to stderr.
  public func log(_ line: String) {
    if let output {
      output(line)
    } else {
      // A stage's own output, like a shell command's: not dv's rendering.
      let bytes = Array((line + "\n").utf8)
      _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
  }

  /// True once dv received SIGINT/SIGTERM/SIGHUP: long-running plugins check it (every few
  /// thousand rows) and throw `StageRunError.interrupted`, leaving no partial output.
  public var isInterrupted: Bool { dv_received_signal() != 0 }

  /// Throws `StageRunError.interrupted` once dv received a signal.
  public func checkInterrupted() throws {
    if isInterrupted { throw StageRunError.interrupted }
  }

  /// The absolute path of a workspace-relative path.
  public func absolute(_ path: RelativePath) -> String { path.absolute(under: workspaceRoot) }
}

/// A kind of stage (docs/architecture.md §7). `cmd:` stages are the built-in `shell` plugin.
public protocol StagePlugin: Sendable {
  /// The name used in `plugin:` ("shell", "validate", …).
  static var kind: String { get }
  /// Part of the stage's identity in stages.lock: a new version makes its stages stale.
  static var version: String { get }
  /// The kind of this plugin; external plugins answer per executable.
  var kind: String { get }
  /// The version of this plugin; external plugins answer `--describe`.
  var version: String { get }
  /// Where the plugin comes from: "built-in", or an executable's path.
  var origin: String { get }
  /// True when the stage's result depends on something outside the workspace (a URL): such
  /// stages are never restored from the run cache, since equal inputs do not mean equal outputs.
  var readsExternalSource: Bool { get }
  /// Checks the configuration when stages.yaml is loaded; errors name the option's file:line:column.
  func validate(config: PluginConfig) throws
  /// Reads the dependencies, writes the outputs. Throws `StageRunError` when the work fails.
  func run(_ context: StageContext) async throws
  /// For stages whose input lives outside the workspace (a URL): its current version (ETag,
  /// Last-Modified). A different answer than the one recorded makes the stage stale; nil when the
  /// plugin has no such input or the version cannot be learned now.
  func sourceVersion(config: PluginConfig, workspaceRoot: String) -> String?
}

extension StagePlugin {
  public var kind: String { Self.kind }
  public var version: String { Self.version }
  public var origin: String { "built-in" }
  public var readsExternalSource: Bool { false }
  public func sourceVersion(config: PluginConfig, workspaceRoot: String) -> String? { nil }
}

/// How a stage's work failed.
public enum StageRunError: Error, Sendable, CustomStringConvertible {
  /// The command exited with this code (128 + signal when killed).
  case exited(Int32)
  /// dv received SIGINT/SIGTERM/SIGHUP while the stage ran.
  case interrupted
  /// The stage could not be started.
  case couldNotStart(String)
  /// A plugin found a problem with its input or could not write its output; the message names
  /// the file (and row) and what to do.
  case failed(String)

  public var description: String {
    switch self {
    case .exited(let code): return "exited with code \(code)"
    case .interrupted: return "interrupted"
    case .couldNotStart(let reason): return "could not start: \(reason)"
    case .failed(let message): return message
    }
  }
}

/// Maps plugin kinds to plugins: the built-in ones, then `dv-plugin-<kind>` executables found in
/// the search path (`.pipeline/plugins/`, then PATH). Built-in kinds cannot be replaced.
public struct PluginRegistry: Sendable {
  private var plugins: [String: any StagePlugin]
  /// Directories searched for external plugins, in order.
  public private(set) var searchPath: [String] = []
  /// External plugins already described, by kind (shared by copies of the registry).
  private let externals = Locked<[String: ExternalPlugin]>([:])

  /// The plugins every registry has: `shell`, which runs `cmd:`.
  public static let builtIn = PluginRegistry(plugins: [ShellPlugin.kind: ShellPlugin()])

  init(plugins: [String: any StagePlugin]) { self.plugins = plugins }

  /// This registry with more built-in plugins.
  public func adding(_ more: [any StagePlugin]) -> PluginRegistry {
    var copy = PluginRegistry(plugins: plugins)
    for plugin in more { copy.plugins[plugin.kind] = plugin }
    copy.searchPath = searchPath
    return copy
  }

  /// This registry, also finding `dv-plugin-<kind>` executables in `directories`.
  public func searching(_ directories: [String]) -> PluginRegistry {
    var copy = PluginRegistry(plugins: plugins)
    copy.searchPath = directories
    return copy
  }

  /// The search path of a workspace: its `.pipeline/plugins/`, then the directories of `PATH`.
  public static func searchPath(workspaceRoot: String, environment: [String: String]) -> [String] {
    [workspaceRoot + "/.pipeline/plugins"]
      + (environment["PATH"] ?? "").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
  }

  /// The built-in plugins, sorted by kind.
  public var builtInPlugins: [any StagePlugin] { plugins.keys.sorted().map { plugins[$0]! } }

  /// Every external plugin in the search path, sorted by kind, each described or with the
  /// reason it cannot be used; the first of a kind wins, and built-in kinds are skipped.
  public func externalPluginResults() -> [(kind: String, path: String, result: Result<any StagePlugin, Error>)] {
    var found: [(String, String)] = []
    for directory in searchPath {
      guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
      for name in names.sorted() where name.hasPrefix(ExternalPlugin.prefix) {
        let kind = String(name.dropFirst(ExternalPlugin.prefix.count))
        let path = directory + "/" + name
        if ExternalPlugin.isValidKind(kind), plugins[kind] == nil, !found.contains(where: { $0.0 == kind }),
          ExternalPlugin.isExecutable(path)
        {
          found.append((kind, path))
        }
      }
    }
    return found.sorted { $0.0 < $1.0 }.map { kind, path in
      (kind, path, Result { try external(kind: kind, at: nil)! as any StagePlugin })
    }
  }

  /// The plugin of a kind; a clear error at `location` for an unknown one.
  public func plugin(kind: String, at location: SourceLocation) throws -> any StagePlugin {
    if let plugin = plugins[kind] { return plugin }
    if let plugin = try external(kind: kind, at: location) { return plugin }
    throw FileFormatError.invalid(
      location,
      "unknown plugin '\(kind)' (built in: \(plugins.keys.sorted().joined(separator: ", ")); "
        + "an external one is an executable named \(ExternalPlugin.prefix)\(kind) in .pipeline/plugins/ or on PATH)")
  }

  private func external(kind: String, at location: SourceLocation?) throws -> ExternalPlugin? {
    if let known = externals.withLock({ $0[kind] }) { return known }
    guard ExternalPlugin.isValidKind(kind) else { return nil }
    for directory in searchPath {
      let path = directory + "/" + ExternalPlugin.prefix + kind
      guard ExternalPlugin.isExecutable(path) else { continue }
      let plugin = try ExternalPlugin(path: path, expectedKind: kind, usedAt: location)
      externals.withLock { $0[kind] = plugin }
      return plugin
    }
    return nil
  }

  /// The plugin and configuration that run a stage: `cmd:` is `shell` with the command.
  public func resolve(_ stage: Stage) throws -> (any StagePlugin, PluginConfig) {
    switch stage.action {
    case .command(let cmd):
      return (
        plugins[ShellPlugin.kind]!,
        PluginConfig(value: .map([("cmd", .scalar(cmd))]), location: stage.location, wdir: stage.wdir)
      )
    case .plugin(let kind, let with):
      let config = PluginConfig(
        value: with, location: stage.configLocations[""] ?? stage.location, locations: stage.configLocations,
        wdir: stage.wdir, outs: stage.outs.map(\.path))
      return (try plugin(kind: kind, at: stage.location), config)
    }
  }

  /// How `repro` shows what a stage runs: its command, or `upper@1.0 {input: in.txt}`.
  public func summary(_ stage: Stage) throws -> String {
    switch stage.action {
    case .command(let cmd): return cmd
    case .plugin(let kind, let with):
      return SecretScrubber.scrub(
        "plugin \(kind)@\(try plugin(kind: kind, at: stage.location).version) " + YAMLText.flow(with))
    }
  }

  /// What stages.lock records as a stage's identity: the command, or the plugin's kind and
  /// version and a digest of the canonical form of its configuration.
  public func fingerprint(_ stage: Stage) throws -> String {
    switch stage.action {
    case .command(let cmd): return cmd
    case .plugin(let kind, let with):
      let plugin = try plugin(kind: kind, at: stage.location)
      return "plugin \(kind)@\(plugin.version) " + SHA256Hasher.hash(Array(YAMLText.canonical(with).utf8)).description
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
