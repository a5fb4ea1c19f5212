import ArgumentParser
import DVBasics
import DVWorkspace
import Foundation

struct HooksCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hooks", abstract: "Install, remove and run dv's git hooks.",
    subcommands: [
      HooksInstallCommand.self, HooksUninstallCommand.self, HooksRunCommand.self, HooksStatusCommand.self,
    ])
}

/// Parses hook names given on the command line.
private func parseHooks(_ names: [String]) throws -> [GitHook] {
  try names.map { name in
    guard let hook = GitHook(rawValue: name) else { throw HookError.unknownHook(name) }
    return hook
  }
}

struct HooksInstallCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "install",
    abstract: "Install git hooks (pre-commit, post-checkout, post-merge, pre-push; all by default).")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Replace a dv hook that was modified.")
  var force = false

  @Argument(help: "Hooks to install.")
  var hooks: [String] = []

  func run() throws {
    let workspace = try global.workspace()
    let directory = try workspace.gitHooksDirectory()
    for (hook, change) in try workspace.installHooks(try parseHooks(hooks), force: force) {
      let file = directory.file(hook)
      switch change {
      case .installed(chained: false): print("\(hook.rawValue): installed (\(file))")
      case .installed(chained: true):
        print("\(hook.rawValue): installed (\(file)); the existing hook runs first, kept as \(hook.rawValue).pre-dv")
      case .replaced: print("\(hook.rawValue): replaced the modified dv hook (\(file))")
      default: print("\(hook.rawValue): already installed")
      }
    }
  }
}

struct HooksUninstallCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "uninstall", abstract: "Remove dv's git hooks, restoring the hooks they chained.")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Hooks to remove (all by default).")
  var hooks: [String] = []

  func run() throws {
    for (hook, change) in try global.workspace().uninstallHooks(try parseHooks(hooks)) {
      switch change {
      case .removed(restored: true): print("\(hook.rawValue): removed; the previous hook is back in place")
      case .removed(restored: false): print("\(hook.rawValue): removed")
      case .leftForeign: print("\(hook.rawValue): not a dv hook; left alone")
      default: print("\(hook.rawValue): not installed")
      }
    }
  }
}

struct HooksStatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show which git hooks are installed.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print the status as JSON.")
  var json = false

  func run() throws {
    let directory = try global.workspace().gitHooksDirectory()
    if json {
      try Terminal.printJSON([
        "directory": directory.path,
        "hooks": GitHook.allCases.map { hook -> [String: Any] in
          let status = directory.status(hook)
          return ["name": hook.rawValue, "state": status.state.rawValue, "chains": status.chainsForeignHook]
        },
      ])
      return
    }
    print("hooks directory: \(directory.path)")
    for hook in GitHook.allCases {
      let status = directory.status(hook)
      var line: String
      switch status.state {
      case .installed: line = "installed"
      case .modified: line = "dv hook, modified (`dv hooks install --force` replaces it)"
      case .foreign: line = "not a dv hook"
      case .absent: line = "not installed"
      }
      if status.chainsForeignHook { line += "; runs \(hook.rawValue).pre-dv first" }
      print("\(hook.rawValue): \(line)")
    }
  }
}

struct HooksRunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "Run one hook as git would (DV_SKIP_HOOKS=1 skips dv's part).")

  @Option(help: ArgumentHelp("A hook to run first with the same arguments and input.", visibility: .hidden))
  var chain: String?

  @Option(help: ArgumentHelp("The workspace, when it is not the git top level.", visibility: .hidden))
  var workspace: String?

  @Argument(help: "pre-commit, post-checkout, post-merge or pre-push.")
  var name: String

  @Argument(parsing: .captureForPassthrough, help: "The arguments git passes to the hook.")
  var arguments: [String] = []

  func run() throws {
    guard let hook = GitHook(rawValue: name) else { throw HookError.unknownHook(name) }
    if let chain, FileManager.default.isExecutableFile(atPath: chain) {
      let status = try HookChain.run(chain, arguments: arguments)
      if status != 0 { throw ExitCode(status) }
    }
    if ProcessInfo.processInfo.environment["DV_SKIP_HOOKS"].map({ !$0.isEmpty && $0 != "0" }) ?? false { return }
    let directory = try FileSystem.currentDirectory()
    // Hooks are shared by every branch and worktree; where there is no workspace (a branch from
    // before `dv init`), there is nothing for them to do.
    let start = workspace.map { $0.hasPrefix("/") ? $0 : directory + "/" + $0 } ?? directory
    guard Workspace.find(containing: start) != nil else { return }
    let open = { try Workspace(containing: start) }
    switch hook {
    case .preCommit: try HookRendering.preCommit(try open().preCommitCheck())
    case .postCheckout, .postMerge:
      // post-checkout gets (previous, new, flag); flag 1 is a branch checkout. post-merge gets the squash flag.
      // The pre-commit framework passes neither, but sets PRE_COMMIT_* variables.
      let environment = ProcessInfo.processInfo.environment
      var git = arguments
      if git.isEmpty, let type = environment["PRE_COMMIT_CHECKOUT_TYPE"] {
        git = [environment["PRE_COMMIT_FROM_REF"] ?? "", environment["PRE_COMMIT_TO_REF"] ?? "", type]
      }
      let merged = hook == .postMerge || (git.isEmpty && environment["PRE_COMMIT_IS_SQUASH_MERGE"] != nil)
      let branchChange = merged || (git.count >= 3 && git[2] == "1" && git[0] != git[1])
      do {
        HookRendering.checkout(try open().followGitCheckout(branchChange: branchChange))
      } catch {
        // A failing post-checkout hook makes the git command fail, after the fact: report only.
        HookRendering.note("could not check out the data: \(error); run `dv checkout`")
      }
    case .prePush: try HookRendering.prePush(try open())
    }
  }
}

/// Runs the foreign hook a dv hook chains, with the same arguments and standard input.
enum HookChain {
  static func run(_ path: String, arguments: [String]) throws -> Int32 {
    let process = Process()
    // Through sh, as git does for a hook without a `#!` line.
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "\"$0\" \"$@\"", path] + arguments
    process.standardOutput = FileHandle.standardOutput
    process.standardError = FileHandle.standardError
    // Only pre-push reads its input (the refs); the chained hook gets a copy.
    let input = Pipe()
    let data = FileHandle.standardInput.readDataToEndOfFileIfNotTerminal()
    process.standardInput = data == nil ? FileHandle.standardInput : input
    do {
      try process.run()
    } catch {
      throw ValidationError("cannot run the chained hook '\(path)': \(error.localizedDescription)")
    }
    if let data {
      input.fileHandleForWriting.write(data)
      try? input.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
  }
}

extension FileHandle {
  /// Everything on this handle, or nil when it is a terminal (nothing to pass on).
  fileprivate func readDataToEndOfFileIfNotTerminal() -> Data? {
    isatty(fileDescriptor) == 1 ? nil : readDataToEndOfFile()
  }
}

/// Text for the hooks, on stderr: git shows it around its own output.
enum HookRendering {
  static func note(_ message: String) {
    FileHandle.standardError.write(Data("dv: \(message)\n".utf8))
  }

  static func preCommit(_ report: PreCommitReport) throws {
    guard !report.problems.isEmpty else { return }
    var fixes: [String] = []
    for problem in report.problems {
      switch problem {
      case .dataModified(let path, _):
        note("\(path) is modified but not recorded (run `dv add \(path)`)")
        fixes.append("dv add \(path)")
      case .staleStage(let name, let reasons):
        note("stage '\(name)' is stale: \(reasons.map(\.description).joined(separator: "; ")) (run `dv repro`)")
        fixes.append("dv repro")
      case .unstagedRecord(let file):
        note("\(file) differs from the staged version (run `git add \(file)`)")
        fixes.append("git add \(file)")
      }
    }
    var unique: [String] = []
    for fix in fixes where !unique.contains(fix) { unique.append(fix) }
    if report.blocksCommit {
      note(
        "commit stopped; run \(unique.map { "`\($0)`" }.joined(separator: ", ")), then commit again "
          + "(or skip with `git commit --no-verify`)")
      throw ExitCode(1)
    }
    note("warning only (hooks.pre_commit: warn); the commit goes ahead")
  }

  static func checkout(_ result: HookCheckoutResult) {
    for data in result.changed {
      note("\(data.path): \(Format.plural(data.written, "file")) written, \(Format.count(data.deleted)) deleted")
    }
    if !result.kept.isEmpty {
      note(
        "kept \(list(result.kept)): not in the cache, so not overwritten; `dv add` them, or `dv checkout --force` to discard"
      )
    }
    if !result.missing.isEmpty { note("\(list(result.missing)) not in the cache; run `dv pull`") }
  }

  static func prePush(_ workspace: Workspace) throws {
    switch workspace.prePushTarget() {
    case .disabled: return
    case .noDefaultRemote: note("no default remote, nothing pushed (`dv remote add -d NAME URL` sets one)")
    case .remote(let name):
      // git pushes only after this exits 0: a failed upload stops the push, so commits never
      // reach the git remote ahead of their data.
      let result = try workspace.push(remote: name)
      let summary = result.summary
      note(
        "pushed \(Format.plural(summary.transferred, "object")) (\(Format.bytes(summary.bytes))) to '\(name)'"
          + (result.runRecords > 0 ? ", \(Format.plural(result.runRecords, "run record"))" : ""))
      for path in result.notCached {
        note("'\(path)' is not (fully) in the cache and was not pushed; run `dv add` or `dv repro`")
      }
      try summary.throwIfFailed()
    }
  }

  private static func list(_ paths: [String]) -> String {
    let shown = paths.prefix(5).joined(separator: ", ")
    return paths.count > 5 ? "\(shown) and \(paths.count - 5) more" : shown
  }
}
