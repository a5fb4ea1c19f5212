import CDVSystem
import DVBasics
import DVStorage
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A `dv-plugin-<kind>` executable (docs/architecture.md §7): asked `--describe` for `{kind, version}`, then
/// run once per stage with one JSON request on stdin, its output streamed like a command's.
///
/// The request: `{"protocol": 1, "stage": name, "with": {...}, "deps": [paths], "outs": [paths],
/// "wdir": path, "workspace_root": absolute path}`; paths are workspace-relative and the plugin
/// runs in the stage's `wdir`. Exit status 0 is success. dv itself reads one option of `with`:
/// `timeout` (seconds), after which the plugin's process group is terminated.
public struct ExternalPlugin: StagePlugin {
  public static let kind = "external"
  public static let version = "1"
  /// Executables named `dv-plugin-<kind>` are external plugins.
  public static let prefix = "dv-plugin-"
  /// How long `--describe` may take.
  static let describeTimeout = 10.0

  /// The executable.
  public let path: String
  public let kind: String
  public let version: String
  public var origin: String { path }

  /// Asks the executable to describe itself; a wrong or missing answer is an error naming it.
  init(path: String, expectedKind: String, usedAt location: SourceLocation?) throws {
    self.path = path
    let answer: [String: Any]
    do {
      answer = try Self.describe(path)
    } catch let error as ExternalPluginError {
      if let location { throw FileFormatError.invalid(location, error.description) }
      throw error
    }
    guard let kind = answer["kind"] as? String, kind == expectedKind else {
      let error = ExternalPluginError.badDescription(
        path: path, problem: "its kind is \(answer["kind"].map { "'\($0)'" } ?? "missing"), expected '\(expectedKind)'")
      if let location { throw FileFormatError.invalid(location, error.description) }
      throw error
    }
    guard let version = (answer["version"] as? String) ?? (answer["version"] as? NSNumber)?.stringValue,
      !version.isEmpty
    else {
      let error = ExternalPluginError.badDescription(path: path, problem: "it gives no 'version'")
      if let location { throw FileFormatError.invalid(location, error.description) }
      throw error
    }
    self.kind = kind
    self.version = version
  }

  static func isExecutable(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
  }

  static func isValidKind(_ kind: String) -> Bool {
    !kind.isEmpty
      && kind.unicodeScalars.allSatisfy {
        ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || "-_".unicodeScalars.contains($0)
      }
  }

  public func validate(config: PluginConfig) throws {
    switch config.value {
    case .map, .null: break
    default: throw config.error("", "'with' of plugin '\(kind)' must be a mapping of options")
    }
    if let timeout = config["timeout"] {
      guard case .scalar(let s) = timeout, let seconds = Double(s), seconds > 0, seconds.isFinite else {
        throw config.error("timeout", "option 'timeout' of plugin '\(kind)' must be a positive number of seconds")
      }
    }
  }

  // MARK: - Describe

  private static func describe(_ path: String) throws -> [String: Any] {
    let (code, output) = try runCapturing(path, argument: "--describe", timeout: describeTimeout)
    guard code == 0 else {
      throw ExternalPluginError.badDescription(path: path, problem: "'--describe' exited with code \(code)")
    }
    guard let data = output.data(using: .utf8),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else {
      throw ExternalPluginError.badDescription(
        path: path, problem: "'--describe' did not print a JSON object like {\"kind\": \"x\", \"version\": \"1\"}")
    }
    return object
  }

  /// Runs `path argument` with no input and returns its exit code and standard output.
  private static func runCapturing(_ path: String, argument: String, timeout: Double) throws -> (Int32, String) {
    var fds: [Int32] = [0, 0]
    if dv_pipe_cloexec(&fds) != 0 { throw ExternalPluginError.couldNotRun(path: path, reason: Self.errnoText()) }
    let pid = dv_spawn_program(path, argument, "/", -1, fds[1])
    let spawnErrno = errno
    close(fds[1])
    if pid < 0 {
      close(fds[0])
      throw ExternalPluginError.couldNotRun(path: path, reason: String(cString: strerror(spawnErrno)))
    }
    let watchdog = Watchdog(pgid: pid, after: timeout)
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while bytes.count < 1 << 20 {
      let n = buffer.withUnsafeMutableBytes { Glibc.read(fds[0], $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      bytes.append(contentsOf: buffer[0..<n])
    }
    close(fds[0])
    let code = dv_wait_exit_code(pid)
    watchdog.cancel()
    if watchdog.fired {
      throw ExternalPluginError.badDescription(path: path, problem: "'--describe' did not answer in \(Int(timeout)) s")
    }
    return (code, String(decoding: bytes, as: UTF8.self))
  }

  static func errnoText() -> String { String(cString: strerror(errno)) }

  // MARK: - Run

  public func run(_ context: StageContext) async throws {
    let timeout = context.config.number("timeout")
    let request = try Self.request(for: context)
    let tmp = context.workspaceRoot + "/.pipeline/tmp"
    try FileSystem.createDirectory(tmp)
    let guardedOuts = context.stage.outs.map(\.path)
    let before = try WorkspaceSnapshot(root: context.workspaceRoot, excluding: guardedOuts)
    let kind = self.kind
    let path = self.path
    let cwd = context.stage.wdir.absolute(under: context.workspaceRoot)
    let result: RunResult = try await withCheckedThrowingContinuation { continuation in
      // Waiting blocks: a thread of its own keeps Swift's cooperative pool free.
      Thread.detachNewThread {
        do {
          continuation.resume(
            returning: try Self.spawnAndWait(
              path, request: request, tmp: tmp, cwd: cwd, timeout: timeout, output: context.output))
        } catch {
          continuation.resume(throwing: error)
        }
      }
    }
    if dv_received_signal() != 0 { throw StageRunError.interrupted }
    if result.timedOut {
      throw StageRunError.failed(
        "plugin '\(kind)' (\(path)) did not finish within its timeout of \(Self.seconds(timeout ?? 0)) and was stopped")
    }
    if result.code > 128 {
      throw StageRunError.failed(
        "plugin '\(kind)' (\(path)) crashed with signal \(result.code - 128) (\(Self.signalName(result.code - 128)))")
    }
    if result.code != 0 {
      throw StageRunError.failed("plugin '\(kind)' (\(path)) exited with code \(result.code)")
    }
    let after = try WorkspaceSnapshot(root: context.workspaceRoot, excluding: guardedOuts)
    let changed = before.changes(to: after)
    if !changed.isEmpty {
      let shown = changed.prefix(5).joined(separator: ", ") + (changed.count > 5 ? ", …" : "")
      throw StageRunError.failed(
        "plugin '\(kind)' (\(path)) wrote outside its declared outs: \(shown); declare them in the stage's outs")
    }
  }

  private struct RunResult {
    var code: Int32
    var timedOut: Bool
  }

  private static func spawnAndWait(
    _ path: String, request: [UInt8], tmp: String, cwd: String, timeout: Double?,
    output: (@Sendable (String) -> Void)?
  ) throws -> RunResult {
    // The request goes through an unlinked file: a plugin that never reads stdin cannot block dv.
    let requestPath = tmp + "/plugin-request-\(UUID().uuidString).json"
    try FileSystem.writeAtomically(request, to: requestPath, mode: 0o600)
    let inFD = open(requestPath, O_RDONLY | O_CLOEXEC)
    try? FileSystem.removeFile(requestPath)
    if inFD < 0 { throw StageRunError.couldNotStart("cannot read the request file \(requestPath): \(errnoText())") }
    defer { close(inFD) }

    var fds: [Int32] = [-1, -1]
    if output != nil, dv_pipe_cloexec(&fds) != 0 { throw StageRunError.couldNotStart(errnoText()) }
    let pid = dv_spawn_program(path, nil, cwd, inFD, fds[1])
    let spawnErrno = errno
    if fds[1] >= 0 { close(fds[1]) }
    if pid < 0 {
      if fds[0] >= 0 { close(fds[0]) }
      throw StageRunError.couldNotStart("\(path): \(String(cString: strerror(spawnErrno)))")
    }
    dv_forward_signals_add(pid)
    defer { dv_forward_signals_remove(pid) }
    let watchdog = timeout.map { Watchdog(pgid: pid, after: $0) }
    if let output {
      ShellPlugin.forwardLines(from: fds[0], emit: output)
      close(fds[0])
    }
    let code = dv_wait_exit_code(pid)
    watchdog?.cancel()
    return RunResult(code: code, timedOut: watchdog?.fired ?? false)
  }

  /// The JSON request a plugin reads from stdin.
  static func request(for context: StageContext) throws -> [UInt8] {
    var out = "{\"protocol\": 1, \"stage\": " + PluginJSON.string(context.stage.name)
    out += ", \"with\": " + PluginJSON.value(context.config.value == .null ? .map([]) : context.config.value)
    out += ", \"deps\": [" + context.stage.deps.map { PluginJSON.string($0.path.value) }.joined(separator: ", ") + "]"
    out += ", \"outs\": [" + context.stage.outs.map { PluginJSON.string($0.path.value) }.joined(separator: ", ") + "]"
    out += ", \"wdir\": " + PluginJSON.string(context.stage.wdir.value)
    out += ", \"workspace_root\": " + PluginJSON.string(context.workspaceRoot) + "}\n"
    return Array(out.utf8)
  }

  static func seconds(_ value: Double) -> String {
    value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
  }

  static func signalName(_ number: Int32) -> String {
    switch number {
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    case SIGKILL: return "SIGKILL"
    case SIGTERM: return "SIGTERM"
    case SIGBUS: return "SIGBUS"
    case SIGFPE: return "SIGFPE"
    case SIGILL: return "SIGILL"
    default: return "signal \(number)"
    }
  }
}

/// Problems with an external plugin executable itself.
public enum ExternalPluginError: DVError {
  /// `--describe` failed or answered something unusable.
  case badDescription(path: String, problem: String)
  /// The executable could not be started.
  case couldNotRun(path: String, reason: String)

  public var kind: FailureKind { .badInput }

  public var description: String {
    switch self {
    case .badDescription(let path, let problem):
      return "external plugin '\(path)' is not usable: \(problem); fix it or remove it from the plugin path"
    case .couldNotRun(let path, let reason): return "could not run external plugin '\(path)': \(reason)"
    }
  }
}

/// Terminates a process group when a deadline passes: SIGTERM, then SIGKILL five seconds later.
final class Watchdog: @unchecked Sendable {
  private let state = Locked<(done: Bool, fired: Bool)>((false, false))

  init(pgid: Int32, after seconds: Double) {
    let deadline = DispatchTime.now() + seconds
    DispatchQueue.global().asyncAfter(deadline: deadline) { [state] in
      let fire = state.withLock { s -> Bool in
        if s.done { return false }
        s.fired = true
        return true
      }
      guard fire else { return }
      kill(-pgid, SIGTERM)
      DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
        if !state.withLock({ $0.done }) { kill(-pgid, SIGKILL) }
      }
    }
  }

  /// The process ended: nothing more is sent.
  func cancel() { state.withLock { $0.done = true } }

  /// True when the deadline passed before `cancel`.
  var fired: Bool { state.withLock { $0.fired } }
}

/// Size, mtime and inode of every file in the workspace outside `.git`, `.pipeline` and some
/// excluded paths: how dv notices a plugin writing where it declared nothing.
struct WorkspaceSnapshot {
  private var files: [String: (Int64, Int64, UInt64)] = [:]

  init(root: String, excluding excluded: [RelativePath]) throws {
    let ignore = (try? IgnoreRules.load(workspaceRoot: root)) ?? .none
    let excludedPaths = Set(excluded.map(\.value))
    var pending: [String] = [""]
    var visited = 0
    while let relative = pending.popLast(), visited < 1_000_000 {
      visited += 1
      let absolute = relative.isEmpty ? root : root + "/" + relative
      guard let entries = try? FileSystem.listDirectory(absolute) else { continue }
      for entry in entries {
        let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
        if relative.isEmpty && (entry.name == ".pipeline" || entry.name == ".git") { continue }
        if excludedPaths.contains(path) { continue }
        var st = stat()
        guard lstat(root + "/" + path, &st) == 0 else { continue }
        let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        if ignore.isIgnored(path, isDirectory: isDirectory) { continue }
        if isDirectory {
          pending.append(path)
        } else {
          files[path] = (
            Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            UInt64(st.st_ino)
          )
        }
      }
    }
  }

  /// Paths created, changed or deleted between this snapshot and `later`, sorted.
  func changes(to later: WorkspaceSnapshot) -> [String] {
    var changed: [String] = []
    for (path, now) in later.files {
      guard let before = files[path] else {
        changed.append(path)
        continue
      }
      if before != now { changed.append(path) }
    }
    for path in files.keys where later.files[path] == nil { changed.append(path) }
    return changed.sorted(by: utf8Precedes)
  }
}

/// JSON text for the values of `with` that dv sends to plugins.
enum PluginJSON {
  static func string(_ s: String) -> String { JSONText.quote(s) }

  /// YAML scalars that read as numbers, booleans or null in YAML become those JSON types; the
  /// rest are strings.
  static func value(_ value: ConfigValue) -> String {
    switch value {
    case .null: return "null"
    case .scalar(let s):
      if s == "true" || s == "false" { return s }
      if s == "null" || s == "~" { return "null" }
      if let i = Int(s), String(i) == s { return s }
      if s.first.map({ $0.isNumber || $0 == "-" }) == true, let data = s.data(using: .utf8),
        (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) is NSNumber
      {
        return s
      }
      return string(s)
    case .list(let items): return "[" + items.map(Self.value).joined(separator: ", ") + "]"
    case .map(let pairs):
      return "{" + pairs.map { string($0.0) + ": " + Self.value($0.1) }.joined(separator: ", ") + "}"
    }
  }
}
