import CDVSystem
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A git hook dv can install.
public enum GitHook: String, CaseIterable, Sendable {
  case preCommit = "pre-commit"
  case postCheckout = "post-checkout"
  case postMerge = "post-merge"
  case prePush = "pre-push"

  /// How a user skips this hook when dv is missing, or nil when the hook cannot block git.
  var skipHint: String? {
    switch self {
    case .preCommit: return "git commit --no-verify"
    case .prePush: return "git push --no-verify"
    case .postCheckout, .postMerge: return nil
    }
  }
}

/// What a hook file in the hooks directory is.
public enum HookState: String, Sendable, Hashable {
  /// No file.
  case absent
  /// dv's script, as `dv hooks install` writes it.
  case installed
  /// A dv script that differs from what `dv hooks install` would write (edited by hand, or
  /// written by another dv version).
  case modified
  /// Somebody else's hook.
  case foreign
}

/// One hook's file and the foreign hook kept beside it.
public struct HookFileStatus: Sendable {
  public var hook: GitHook
  public var state: HookState
  /// True when a foreign hook was set aside as `<name>.pre-dv` and runs before dv's.
  public var chainsForeignHook: Bool
}

/// What `dv hooks install` or `uninstall` did to one hook.
public enum HookChange: Sendable, Equatable {
  /// dv's script was written (`chained`: a foreign hook was set aside and runs first).
  case installed(chained: Bool)
  /// dv's script was already there, unchanged.
  case unchanged
  /// A modified dv script was replaced (`--force`).
  case replaced
  /// dv's script was removed (`restored`: the foreign hook set aside went back in place).
  case removed(restored: Bool)
  /// Nothing of dv's was there.
  case notInstalled
  /// The file is not dv's, so uninstall left it alone.
  case leftForeign
}

/// Errors of `dv hooks`.
public enum HookError: DVError {
  /// git could not say where the hooks live.
  case notInGit(String)
  /// A dv script was edited; install refuses to replace it without `--force`.
  case modifiedScript(String)
  /// A foreign hook is in place and another one is already set aside.
  case bothForeign(String, aside: String)
  /// `dv hooks run` with a name dv does not handle.
  case unknownHook(String)

  public var kind: FailureKind {
    switch self {
    case .modifiedScript, .bothForeign: return .failed
    case .notInGit, .unknownHook: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .notInGit(let detail):
      return "git hooks need a git repository (\(detail)); run `git init` first"
    case .modifiedScript(let path):
      return "'\(path)' is a dv hook that was modified; run `dv hooks install --force` to replace it"
    case .bothForeign(let path, let aside):
      return
        "'\(path)' is not a dv hook and '\(aside)' already exists; move one of them away, then install again"
    case .unknownHook(let name):
      return
        "unknown hook '\(name)' (dv handles \(GitHook.allCases.map(\.rawValue).joined(separator: ", ")))"
    }
  }
}

/// The hooks directory git reports for a workspace, and dv's scripts in it.
///
/// Scripts stay tiny and carry a marker line, so dv recognises its own files and never touches
/// anybody else's: a foreign hook is renamed to `<name>.pre-dv` and run first by dv's script.
public struct GitHooksDirectory: Sendable {
  /// The marker that makes a hook file dv's.
  static let marker = "# dv-hook: "
  /// The suffix of a foreign hook set aside.
  public static let asideSuffix = ".pre-dv"

  /// Absolute path of the hooks directory.
  public let path: String
  /// The workspace root relative to the git top level; nil when they are the same.
  let workspacePrefix: String?

  /// Asks git (run in the workspace root) where hooks live: honours core.hooksPath and worktrees.
  init(workspaceRoot root: String) throws {
    let git = GitCommand(directory: root)
    let lines: [String]
    do {
      lines = try git.lines(["rev-parse", "--show-toplevel", "--git-path", "hooks"])
    } catch let error as GitCommand.Failure {
      throw HookError.notInGit(error.message)
    }
    guard lines.count == 2 else { throw HookError.notInGit("git rev-parse printed \(lines.count) lines") }
    let top = FileSystem.realPath(lines[0]) ?? lines[0]
    path = lines[1].hasPrefix("/") ? lines[1] : root + "/" + lines[1]
    workspacePrefix = root == top || !root.hasPrefix(top + "/") ? nil : String(root.dropFirst(top.count + 1))
  }

  /// The file of a hook.
  public func file(_ hook: GitHook) -> String { path + "/" + hook.rawValue }

  /// The script dv writes for `hook`; `chained` runs the foreign hook set aside first.
  func script(_ hook: GitHook, chained: Bool) -> String {
    let missing: String
    if let hint = hook.skipHint {
      missing = "echo \"dv: not found on PATH; install dv or run \\`\(hint)\\`\" >&2; exit 1"
    } else {
      missing = "echo \"dv: not found on PATH; install dv, then run \\`dv checkout\\`\" >&2; exit 0"
    }
    var options = ""
    if chained { options += " --chain \"$0\(Self.asideSuffix)\"" }
    if let workspacePrefix {
      options += " --workspace '\(workspacePrefix.replacingOccurrences(of: "'", with: "'\\''"))'"
    }
    return """
      #!/bin/sh
      \(Self.marker)\(hook.rawValue) (from `dv hooks install`; `dv hooks uninstall` removes it)
      command -v dv >/dev/null 2>&1 || { \(missing); }
      exec dv hooks run\(options) \(hook.rawValue) "$@"

      """
  }

  /// What is installed for `hook`.
  public func status(_ hook: GitHook) -> HookFileStatus {
    let chained = Self.present(file(hook) + Self.asideSuffix)
    return HookFileStatus(hook: hook, state: state(hook, chained: chained), chainsForeignHook: chained)
  }

  private func state(_ hook: GitHook, chained: Bool) -> HookState {
    guard Self.present(file(hook)) else { return .absent }
    guard let text = try? FileSystem.readTextIfPresent(file(hook)), text.contains("\n" + Self.marker) else {
      return .foreign
    }
    return text == script(hook, chained: chained) ? .installed : .modified
  }

  /// Writes dv's script for `hook`, setting a foreign hook aside to run first.
  func install(_ hook: GitHook, force: Bool) throws -> HookChange {
    try FileSystem.createDirectory(path)
    let target = file(hook)
    let aside = target + Self.asideSuffix
    var chained = Self.present(aside)
    var change = HookChange.installed(chained: chained)
    switch state(hook, chained: chained) {
    case .installed:
      return .unchanged
    case .modified:
      guard force else { throw HookError.modifiedScript(target) }
      change = .replaced
    case .foreign:
      if chained { throw HookError.bothForeign(target, aside: aside) }
      if rename(target, aside) != 0 { throw SystemError("moving '\(target)' aside", errno: errno) }
      chained = true
      change = .installed(chained: true)
    case .absent:
      break
    }
    try FileSystem.writeAtomically(script(hook, chained: chained), to: target, mode: 0o755)
    return change
  }

  /// Removes dv's script for `hook` and puts a foreign hook set aside back in place.
  func uninstall(_ hook: GitHook) throws -> HookChange {
    let target = file(hook)
    let aside = target + Self.asideSuffix
    let chained = Self.present(aside)
    switch state(hook, chained: chained) {
    case .foreign:
      return .leftForeign
    case .absent where !chained:
      return .notInstalled
    case .absent, .installed, .modified:
      try FileSystem.removeFile(target)
      if chained, rename(aside, target) != 0 { throw SystemError("restoring '\(aside)'", errno: errno) }
      return .removed(restored: chained)
    }
  }

  /// True when a file (or a symbolic link, even a dangling one) is at `path`.
  private static func present(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
  }
}

/// Runs git for the hooks in a directory, with the `GIT_*` paths git gave the hook made absolute
/// (git may pass `GIT_INDEX_FILE=.git/index.lock`, relative to the directory the hook runs in).
struct GitCommand {
  /// git could not run, or exited non-zero.
  struct Failure: Error {
    var message: String
  }

  let directory: String

  /// A started git process whose output is read by `finish`.
  struct Running {
    let process: Program.Running

    /// Waits for git; its stdout, or `Failure` with its first stderr line.
    func finish() throws -> Data {
      let outcome = process.finish()
      guard outcome.status == 0 else {
        throw Failure(message: outcome.firstErrorLine ?? "git failed (exit status \(outcome.status))")
      }
      return outcome.stdout
    }
  }

  /// Starts git without waiting, so the caller can work meanwhile.
  func start(_ arguments: [String]) throws -> Running {
    do {
      return Running(process: try Program.start("git", ["-C", directory] + arguments, environment: Self.environment()))
    } catch let failure as Program.StartFailure {
      throw Failure(message: failure.description)
    }
  }

  /// Runs git and returns its stdout.
  func run(_ arguments: [String]) throws -> Data { try start(arguments).finish() }

  /// Runs git and returns its stdout's lines.
  func lines(_ arguments: [String]) throws -> [String] {
    String(decoding: try run(arguments), as: UTF8.self).split(separator: "\n").map(String.init)
  }

  private static func environment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    let here = (try? FileSystem.currentDirectory()) ?? "/"
    for key in ["GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY"] {
      if let value = environment[key], !value.isEmpty, !value.hasPrefix("/") {
        environment[key] = here + "/" + value
      }
    }
    return environment
  }
}
