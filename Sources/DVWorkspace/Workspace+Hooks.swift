import DVBasics
import DVPipeline
import DVStorage
import Foundation
import Yams

/// How the git hooks behave (`hooks:` in `.pipeline/config.yaml`).
public struct HookSettings: Sendable, Equatable {
  /// What pre-commit does when something is out of date.
  public enum PreCommitMode: String, Sendable {
    /// Block the commit.
    case check
    /// Print the findings and let the commit through.
    case warn
  }

  /// `hooks.pre_commit: check|warn`.
  public var preCommit = PreCommitMode.check
  /// `hooks.pre_push: on|off`: push to the default remote before git pushes.
  public var prePush = true
  /// `hooks.post_checkout: on|off`: data follows branch checkouts and merges (post-checkout and
  /// post-merge).
  public var postCheckout = true

  public init() {}

  /// The settings of the `hooks:` section.
  static let keys: Set<String> = ["pre_commit", "pre_push", "post_checkout"]

  mutating func apply(_ file: YAMLFile, _ node: Yams.Node) throws {
    for item in try file.mapping(node, allowed: Self.keys, what: "'hooks'") {
      let value = item.value.scalar?.string ?? ""
      switch item.key {
      case "pre_commit":
        guard let mode = PreCommitMode(rawValue: value) else {
          throw file.error(item.value, "hooks.pre_commit must be 'check' or 'warn'")
        }
        preCommit = mode
      default:
        let on: Bool
        switch value {
        case "on", "true": on = true
        case "off", "false": on = false
        default: throw file.error(item.value, "hooks.\(item.key) must be 'on' or 'off'")
        }
        if item.key == "pre_push" { prePush = on } else { postCheckout = on }
      }
    }
  }
}

/// Something the pre-commit check found that the commit would record wrongly.
public enum PreCommitProblem: Sendable {
  /// Tracked data differs from its pointer (fix: `dv add`).
  case dataModified(path: String, recordedIn: String)
  /// A stage would run: stages.lock does not describe the pipeline (fix: `dv repro`).
  case staleStage(name: String, reasons: [StaleReason])
  /// The staged pointer or stages.lock differs from the workspace's (fix: `git add`).
  case unstagedRecord(file: String)
}

/// What the pre-commit check found.
public struct PreCommitReport: Sendable {
  public var problems: [PreCommitProblem]
  public var mode: HookSettings.PreCommitMode
  /// True when the commit must be stopped.
  public var blocksCommit: Bool { mode == .check && !problems.isEmpty }
}

/// Where pre-push pushes.
public enum PrePushTarget: Sendable, Equatable {
  /// `hooks.pre_push: off`.
  case disabled
  /// No `core.remote` is set.
  case noDefaultRemote
  /// The default remote's name.
  case remote(String)
}

/// What post-checkout or post-merge did.
public struct HookCheckoutResult: Sendable {
  /// Why nothing was done, if so.
  public enum Skipped: Sendable, Equatable {
    /// A file checkout (flag 0), or the same commit.
    case notABranchChange
    /// `hooks.post_checkout: off`.
    case disabled
    /// A rebase, bisect or merge is under way ("rebase", "bisect", "merge").
    case inProgress(String)
  }

  public var skipped: Skipped?
  /// Tracked paths that were updated.
  public var changed: [CheckedOutData] = []
  /// Workspace files left alone because their content is not in the cache.
  public var kept: [String] = []
  /// Tracked paths whose objects are not in the cache (`dv pull`).
  public var missing: [String] = []
}

extension Workspace {
  /// The root of the workspace containing `directory` (searching upwards), or nil.
  public static func find(containing directory: String) -> String? {
    var candidate = FileSystem.realPath(directory) ?? directory
    while !FileSystem.isDirectory(candidate + "/.pipeline") {
      if candidate == "/" || candidate.isEmpty { return nil }
      candidate = (candidate as NSString).deletingLastPathComponent
    }
    return candidate
  }

  /// The hooks directory git reports for this workspace.
  public func gitHooksDirectory() throws -> GitHooksDirectory {
    try GitHooksDirectory(workspaceRoot: root)
  }

  /// Installs dv's scripts for `hooks` (all when empty).
  public func installHooks(_ hooks: [GitHook], force: Bool) throws -> [(GitHook, HookChange)] {
    let directory = try gitHooksDirectory()
    return try (hooks.isEmpty ? GitHook.allCases : hooks).map { ($0, try directory.install($0, force: force)) }
  }

  /// Removes dv's scripts for `hooks` (all when empty), restoring foreign hooks set aside.
  public func uninstallHooks(_ hooks: [GitHook]) throws -> [(GitHook, HookChange)] {
    let directory = try gitHooksDirectory()
    return try (hooks.isEmpty ? GitHook.allCases : hooks).map { ($0, try directory.uninstall($0)) }
  }

  /// The pre-commit check: tracked data as recorded, no stage stale, and the staged pointers and
  /// stages.lock the same as the workspace's.
  ///
  /// Cheap on a clean workspace: the stat cache answers for unchanged files, external plugins are
  /// only described when a stage uses one, no URL is asked for a new version, and the one git
  /// call (which staged records differ from the work tree) runs while the data is checked.
  /// Data that is absent from the workspace (not pulled yet) does not stop a commit.
  public func preCommitCheck() throws -> PreCommitReport {
    let pointers = try self.pointers()
    let hasLock = FileSystem.exists(root + "/" + LockFile.fileName)
    var differing: GitCommand.Running?
    if !config.noSCM && (hasLock || !pointers.isEmpty) {
      let paths = pointers.map(\.location.value) + (hasLock ? [LockFile.fileName] : [])
      differing = try? GitCommand(directory: root).start(
        ["--literal-pathspecs", "diff", "--name-only", "-z", "--no-renames", "--"] + paths)
    }
    var problems: [PreCommitProblem] = []
    let builder = try builder()
    builder.remembersInspections = true
    for pointer in pointers {
      let item = TrackedData(
        path: pointer.path, kind: pointer.kind, hash: pointer.hash, source: .pointer(pointer.location))
      if let change = try status(of: item, builder: builder), change.state == .modified {
        problems.append(.dataModified(path: item.path.value, recordedIn: item.recordedIn))
      }
    }
    if let pipeline = try pipeline() {
      var checker = StalenessChecker(
        pipeline: pipeline, lock: try LockFile.load(workspaceRoot: root), builder: builder, registry: plugins)
      checker.checksSources = false
      var blocking = Set<String>()
      for state in try checker.check() where state.isStale {
        let blocks = state.reasons.contains { reason in
          switch reason {
          case .alwaysChanged, .changedSource, .missingOuts: return false
          case .upstream(let name): return blocking.contains(name)
          default: return true
          }
        }
        if blocks {
          blocking.insert(state.name)
          problems.append(.staleStage(name: state.name, reasons: state.reasons))
        }
      }
    }
    if let differing, let output = try? differing.finish() {
      let files = output.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
      for file in files where !(try stagedMatchesWorkspace(file, pointers: pointers)) {
        problems.append(.unstagedRecord(file: file))
      }
    }
    return PreCommitReport(problems: problems, mode: config.hooks.preCommit)
  }

  /// True when the staged version of a pointer or stages.lock records what the work tree's does.
  private func stagedMatchesWorkspace(_ file: String, pointers: [PointerFile]) throws -> Bool {
    guard let data = try? GitCommand(directory: root).run(["show", ":./" + file]) else { return false }
    let staged = String(decoding: data, as: UTF8.self)
    if file == LockFile.fileName {
      guard let stagedLock = try? LockFile.parse(staged) else { return false }
      return stagedLock == (try LockFile.load(workspaceRoot: root))
    }
    guard let pointer = pointers.first(where: { $0.location.value == file }),
      let stagedPointer = try? PointerFile.parse(staged, location: pointer.location)
    else { return false }
    return stagedPointer.hash == pointer.hash && stagedPointer.kind == pointer.kind
      && stagedPointer.path == pointer.path
  }

  /// post-checkout and post-merge: makes the data follow what git checked out.
  ///
  /// Does nothing for file checkouts and during a rebase, bisect or merge in progress. Never
  /// overwrites a file whose content is not cached (such paths are reported in `kept`), and
  /// reports missing objects instead of failing, since a hook's failure would fail the git command.
  public func followGitCheckout(branchChange: Bool) throws -> HookCheckoutResult {
    guard config.hooks.postCheckout else { return HookCheckoutResult(skipped: .disabled) }
    guard branchChange else { return HookCheckoutResult(skipped: .notABranchChange) }
    if let operation = try gitOperationInProgress() { return HookCheckoutResult(skipped: .inProgress(operation)) }
    let lock = try lockForWriting()
    defer { lock.release() }
    cache.clearTemporaryFiles()
    let checkout = DataCheckout(builder: try builder())
    var result = HookCheckoutResult()
    for item in try trackedData() {
      let plan = try checkout.plan(item.path, kind: item.kind, hash: item.hash)
      result.missing += plan.missing.map(\.path.value)
      if !plan.unsafe.isEmpty {
        result.kept += plan.unsafe.map(\.value)
        continue
      }
      guard !plan.writes.isEmpty || !plan.deletes.isEmpty || plan.createsEmptyDirectory else { continue }
      let written = try checkout.apply(plan, types: config.cacheTypes, force: false)
      result.changed.append(CheckedOutData(path: plan.path, written: written, deleted: plan.deletes.count))
    }
    return result
  }

  /// The git operation under way ("rebase", "bisect", "merge"), found through the files git keeps
  /// while it lasts; nil when none is.
  func gitOperationInProgress() throws -> String? {
    let names = ["rebase-merge", "rebase-apply", "BISECT_LOG", "MERGE_HEAD"]
    let paths: [String]
    do {
      paths = try GitCommand(directory: root).lines(["rev-parse"] + names.flatMap { ["--git-path", $0] })
    } catch let error as GitCommand.Failure {
      throw HookError.notInGit(error.message)
    }
    for (name, path) in zip(names, paths) where FileSystem.exists(path.hasPrefix("/") ? path : root + "/" + path) {
      return name.hasPrefix("rebase") ? "rebase" : name == "BISECT_LOG" ? "bisect" : "merge"
    }
    return nil
  }

  /// Where pre-push pushes: nowhere when `hooks.pre_push` is off or no default remote is set.
  public func prePushTarget() -> PrePushTarget {
    guard config.hooks.prePush else { return .disabled }
    return config.defaultRemote.map { .remote($0) } ?? .noDefaultRemote
  }
}
