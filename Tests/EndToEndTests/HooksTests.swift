import DVBasics
import Foundation
import XCTest

/// `dv hooks`, driven by real git commands in temporary repositories, with the built `dv` on PATH
/// as a user's hooks would find it.
final class HooksTests: DVTestCase {
  /// The environment of a git command whose hooks must find the built `dv`.
  var hookEnv: [String: String] {
    let bin = (Self.binary as NSString).deletingLastPathComponent
    return ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
  }

  @discardableResult
  func git(_ args: String..., in cwd: String = "", env: [String: String] = [:]) throws -> RunResult {
    try run("/usr/bin/env", ["git"] + args, in: cwd, env: hookEnv.merging(env) { $1 })
  }

  /// A git repository on branch main with a dv workspace whose `data/raw` is added and committed.
  func makeRepository() throws {
    XCTAssertEqual(try git("init", "-q", "-b", "main").code, 0)
    try git("config", "user.name", "Hook Tester")
    try git("config", "user.email", "hooks@example.com")
    try makeWorkspaceWithData(git: true)
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try git("add", "-A")
    XCTAssertEqual(try git("commit", "-q", "-m", "data").code, 0)
  }

  /// Writes an executable script.
  func writeScript(_ relative: String, _ body: String) throws {
    try write(relative, "#!/bin/sh\n" + body + "\n")
    chmod(root + "/" + relative, 0o755)
  }

  // MARK: - install, uninstall, status

  func testInstallWritesSmallScriptsReinstallIsIdempotentAndUninstallRemovesThem() throws {
    try makeRepository()
    let install = try dv("hooks", "install")
    XCTAssertEqual(install.code, 0, install.stderr)
    for hook in ["pre-commit", "post-checkout", "post-merge", "pre-push"] {
      XCTAssertTrue(install.stdout.contains("\(hook): installed"), install.stdout)
      let script = try XCTUnwrap(read(".git/hooks/\(hook)"))
      XCTAssertTrue(script.hasPrefix("#!/bin/sh\n# dv-hook: \(hook)"), script)
      XCTAssertTrue(script.contains("dv: not found on PATH"), script)
      XCTAssertTrue(script.hasSuffix("exec dv hooks run \(hook) \"$@\"\n"), script)
      XCTAssertLessThanOrEqual(script.split(separator: "\n").count, 4)
      XCTAssertTrue(FileManager.default.isExecutableFile(atPath: root + "/.git/hooks/\(hook)"))
    }
    XCTAssertTrue(read(".git/hooks/pre-commit")!.contains("or run \\`git commit --no-verify\\`"))

    let again = try dv("hooks", "install")
    XCTAssertEqual(again.code, 0)
    XCTAssertEqual(again.stdout.components(separatedBy: "already installed").count - 1, 4, again.stdout)
    let status = try dv("hooks", "status")
    XCTAssertTrue(status.stdout.contains("pre-commit: installed\n"), status.stdout)
    let json = try JSONSerialization.jsonObject(with: Data(try dv("hooks", "status", "--json").stdout.utf8))
    let hooks = try XCTUnwrap((json as? [String: Any])?["hooks"] as? [[String: Any]])
    XCTAssertEqual(hooks.map { $0["state"] as? String }, ["installed", "installed", "installed", "installed"])

    try write(".git/hooks/pre-push", read(".git/hooks/pre-push")! + "echo edited\n")
    assertFails(try dv("hooks", "install", "pre-push"), code: 1, "`dv hooks install --force`")
    let modified = try dv("hooks", "status")
    XCTAssertTrue(modified.stdout.contains("pre-push: dv hook, modified"), modified.stdout + modified.stderr)
    let forced = try dv("hooks", "install", "--force", "pre-push")
    XCTAssertEqual(forced.code, 0, forced.stderr)
    XCTAssertFalse(read(".git/hooks/pre-push")!.contains("edited"))

    assertFails(try dv("hooks", "install", "pre-rebase"), code: 2, "unknown hook 'pre-rebase'")
    let uninstall = try dv("hooks", "uninstall")
    XCTAssertEqual(uninstall.code, 0, uninstall.stderr)
    for hook in ["pre-commit", "post-checkout", "post-merge", "pre-push"] {
      XCTAssertFalse(exists(".git/hooks/\(hook)"), hook)
    }
    XCTAssertTrue(try dv("hooks", "uninstall").stdout.contains("pre-commit: not installed"))
  }

  func testAForeignHookIsChainedRunsFirstCanStopTheCommitAndIsRestored() throws {
    try makeRepository()
    let foreign = "#!/bin/sh\necho foreign ran >> \"$(git rev-parse --show-toplevel)/foreign.log\"\nexit 0\n"
    try write(".git/hooks/pre-commit", foreign)
    chmod(root + "/.git/hooks/pre-commit", 0o755)
    let install = try dv("hooks", "install", "pre-commit")
    XCTAssertEqual(install.code, 0, install.stderr)
    XCTAssertTrue(install.stdout.contains("kept as pre-commit.pre-dv"), install.stdout)
    XCTAssertEqual(read(".git/hooks/pre-commit.pre-dv"), foreign, "kept byte for byte")
    XCTAssertTrue(try dv("hooks", "status").stdout.contains("runs pre-commit.pre-dv first"))

    let commit = try git("commit", "-q", "--allow-empty", "-m", "empty")
    XCTAssertEqual(commit.code, 0, commit.stderr)
    XCTAssertEqual(read("foreign.log"), "foreign ran\n")

    try writeScript(".git/hooks/pre-commit.pre-dv", "echo foreign says no >&2; exit 3")
    let refused = try git("commit", "-q", "--allow-empty", "-m", "refused")
    XCTAssertNotEqual(refused.code, 0)
    XCTAssertTrue(refused.stderr.contains("foreign says no"), refused.stderr)

    try write(".git/hooks/pre-commit.pre-dv", foreign)
    chmod(root + "/.git/hooks/pre-commit.pre-dv", 0o755)
    XCTAssertEqual(try dv("hooks", "install", "pre-commit").stdout, "pre-commit: already installed\n")
    let uninstall = try dv("hooks", "uninstall", "pre-commit")
    XCTAssertTrue(uninstall.stdout.contains("the previous hook is back in place"), uninstall.stdout)
    XCTAssertEqual(read(".git/hooks/pre-commit"), foreign)
    XCTAssertFalse(exists(".git/hooks/pre-commit.pre-dv"))
    XCTAssertTrue(try dv("hooks", "uninstall", "pre-commit").stdout.contains("not a dv hook; left alone"))
    XCTAssertEqual(read(".git/hooks/pre-commit"), foreign)
  }

  func testInstallRefusesWhenAForeignHookIsAlreadySetAside() throws {
    try makeRepository()
    try writeScript(".git/hooks/pre-commit", "exit 0")
    try writeScript(".git/hooks/pre-commit.pre-dv", "exit 0")
    assertFails(try dv("hooks", "install", "pre-commit"), code: 1, "already exists")
    XCTAssertEqual(read(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n", "nothing was overwritten")
  }

  func testCoreHooksPathIsHonoured() throws {
    try makeRepository()
    try git("config", "core.hooksPath", root + "/shared-hooks")
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    XCTAssertTrue(exists("shared-hooks/pre-commit"))
    XCTAssertFalse(exists(".git/hooks/pre-commit"))
    try write("data/raw/a.csv", "changed\n")
    let commit = try git("commit", "-q", "-am", "tweak")
    XCTAssertEqual(commit.code, 1)
    XCTAssertTrue(commit.stderr.contains("run `dv add data/raw`"), commit.stderr)
  }

  func testAWorktreeSharesTheRepositorysHooks() throws {
    try makeRepository()
    XCTAssertEqual(try git("worktree", "add", "-q", "-b", "side", root + "/wt").code, 0)
    let install = try dv("hooks", "install", "pre-commit", in: "wt")
    XCTAssertEqual(install.code, 0, install.stderr)
    XCTAssertTrue(exists(".git/hooks/pre-commit"), "the worktree's hooks directory is the common one")
    let commit = try git("commit", "-q", "--allow-empty", "-m", "in the worktree", in: "wt")
    XCTAssertEqual(commit.code, 0, commit.stderr)
  }

  func testAWorkspaceInASubdirectoryIsFoundByItsHooks() throws {
    XCTAssertEqual(try git("init", "-q", "-b", "main").code, 0)
    try git("config", "user.name", "Hook Tester")
    try git("config", "user.email", "hooks@example.com")
    try FileSystem.createDirectory(root + "/ml")
    XCTAssertEqual(try dv("init", in: "ml").code, 0)
    try write("ml/data/a.csv", "id\n1\n")
    XCTAssertEqual(try dv("add", "data/a.csv", in: "ml").code, 0)
    try git("add", "-A")
    XCTAssertEqual(try git("commit", "-q", "-m", "ml").code, 0)
    XCTAssertEqual(try dv("hooks", "install", "pre-commit", in: "ml").code, 0)
    XCTAssertTrue(read(".git/hooks/pre-commit")!.contains("--workspace 'ml'"))
    try write("ml/data/a.csv", "id\n2\n")
    let blocked = try git("commit", "-q", "--allow-empty", "-m", "blocked")
    XCTAssertEqual(blocked.code, 1)
    XCTAssertTrue(blocked.stderr.contains("run `dv add data/a.csv`"), blocked.stderr)
  }

  func testInstallOutsideGitIsBadInput() throws {
    try makeWorkspaceWithData()
    assertFails(try dv("hooks", "install"), code: 2, "git hooks need a git repository")
  }

  // MARK: - pre-commit

  func testPreCommitBlocksModifiedDataUntilItIsAddedAndStaged() throws {
    try makeRepository()
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    try write("data/raw/a.csv", "id,v\n1,changed\n")
    let blocked = try git("commit", "-q", "-am", "tweak")
    XCTAssertEqual(blocked.code, 1)
    XCTAssertTrue(
      blocked.stderr.contains("dv: data/raw is modified but not recorded (run `dv add data/raw`)"), blocked.stderr)

    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let unstaged = try git("commit", "-q", "--allow-empty", "-m", "pointer not staged")
    XCTAssertEqual(unstaged.code, 1)
    XCTAssertTrue(unstaged.stderr.contains("run `git add data/raw.dv`"), unstaged.stderr)

    XCTAssertEqual(try git("add", "data/raw.dv").code, 0)
    let commit = try git("commit", "-q", "-m", "tweak")
    XCTAssertEqual(commit.code, 0, commit.stderr)
    XCTAssertEqual(commit.stderr, "")
    XCTAssertEqual(try dv("hooks", "run", "pre-commit").code, 0)
  }

  func testPreCommitBlocksAStaleStageUntilRepro() throws {
    try makeRepository()
    try write(
      "stages.yaml",
      "stages:\n  count:\n    cmd: cat data/raw/a.csv > count.txt\n    deps: [data/raw]\n    outs: [count.txt]\n")
    XCTAssertEqual(try dv("repro").code, 0)
    try git("add", "-A")
    XCTAssertEqual(try git("commit", "-q", "-m", "pipeline").code, 0)
    XCTAssertEqual(try dv("hooks", "install", "pre-commit").code, 0)

    try write(
      "stages.yaml",
      "stages:\n  count:\n    cmd: cat data/raw/b.csv > count.txt\n    deps: [data/raw]\n    outs: [count.txt]\n")
    let blocked = try git("commit", "-q", "-am", "other input")
    XCTAssertEqual(blocked.code, 1)
    XCTAssertTrue(blocked.stderr.contains("stage 'count' is stale: changed cmd (run `dv repro`)"), blocked.stderr)

    XCTAssertEqual(try dv("repro").code, 0)
    let lockNotStaged = try git("commit", "-q", "-m", "other input", "stages.yaml")
    XCTAssertEqual(lockNotStaged.code, 1)
    XCTAssertTrue(lockNotStaged.stderr.contains("run `git add stages.lock`"), lockNotStaged.stderr)
    let commit = try git("commit", "-q", "-am", "other input")
    XCTAssertEqual(commit.code, 0, commit.stderr)

    // The data is both a pointer's and the stage's dep: a change shows on both.
    try write("data/raw/b.csv", "id,v\n2,changed\n")
    let both = try git("commit", "-q", "--allow-empty", "-m", "data changed")
    XCTAssertEqual(both.code, 1)
    XCTAssertTrue(both.stderr.contains("data/raw is modified but not recorded"), both.stderr)
    XCTAssertTrue(both.stderr.contains("stage 'count' is stale: changed deps: modified data/raw"), both.stderr)
    XCTAssertTrue(both.stderr.contains("run `dv add data/raw`, `dv repro`, then commit again"), both.stderr)
  }

  func testWarnModeLetsTheCommitThroughAndDVSkipHooksSkipsEverything() throws {
    try makeRepository()
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    try write("data/raw/a.csv", "id,v\n1,changed\n")
    let skipped = try git("commit", "-q", "--allow-empty", "-m", "skipped", env: ["DV_SKIP_HOOKS": "1"])
    XCTAssertEqual(skipped.code, 0, skipped.stderr)
    XCTAssertEqual(skipped.stderr, "")

    try write(".pipeline/config.local.yaml", "version: 1\nhooks:\n  pre_commit: warn\n")
    let warned = try git("commit", "-q", "--allow-empty", "-m", "warned")
    XCTAssertEqual(warned.code, 0, warned.stderr)
    XCTAssertTrue(warned.stderr.contains("run `dv add data/raw`"), warned.stderr)
    XCTAssertTrue(warned.stderr.contains("warning only"), warned.stderr)

    try write(".pipeline/config.local.yaml", "version: 1\nhooks:\n  pre_commit: maybe\n")
    assertFails(try dv("hooks", "run", "pre-commit"), code: 2, "config.local.yaml:3:15: hooks.pre_commit must be")
  }

  func testAHookSaysSoWhenDVIsNotOnPath() throws {
    try makeRepository()
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    let commit = try run(
      "/usr/bin/git", ["commit", "-q", "--allow-empty", "-m", "no dv"], env: ["PATH": "/usr/bin:/bin"])
    XCTAssertEqual(commit.code, 1)
    XCTAssertTrue(
      commit.stderr.contains("dv: not found on PATH; install dv or run `git commit --no-verify`"), commit.stderr)
  }

  // MARK: - post-checkout, post-merge

  /// Adds branch `other` whose `data/raw/a.csv` differs, and returns to main.
  func makeOtherBranch() throws {
    XCTAssertEqual(try git("checkout", "-q", "-b", "other").code, 0)
    try write("data/raw/a.csv", "id,v\n1,other\n")
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try git("add", "-A")
    XCTAssertEqual(try git("commit", "-q", "-m", "other data").code, 0)
    XCTAssertEqual(try git("checkout", "-q", "main").code, 0)
  }

  func testDataFollowsBranchCheckoutsAndMerges() throws {
    try makeRepository()
    try makeOtherBranch()
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,other\n", "no hooks yet: the data stays")
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(try dv("hooks", "install").code, 0)

    let checkout = try git("checkout", "-q", "other")
    XCTAssertEqual(checkout.code, 0, checkout.stderr)
    XCTAssertTrue(checkout.stderr.contains("dv: data/raw: 1 file written"), checkout.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,other\n")
    XCTAssertEqual(try git("checkout", "-q", "main").code, 0)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,a\n")

    XCTAssertEqual(try git("checkout", "-q", "other", "--", "data/raw.dv").code, 0)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,a\n", "a file checkout leaves the data alone")
    try git("checkout", "-q", "main", "--", "data/raw.dv")

    let merge = try git("merge", "-q", "--ff-only", "other")
    XCTAssertEqual(merge.code, 0, merge.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,other\n", "post-merge")

    // A branch from before `dv init`: the hooks have nothing to do there, and say nothing.
    XCTAssertEqual(try git("checkout", "-q", "--orphan", "bare").code, 0)
    try git("rm", "-r", "-q", "--cached", ".")
    try FileSystem.removeTree(root + "/.pipeline")
    let plain = try git("commit", "-q", "--allow-empty", "-m", "no workspace")
    XCTAssertEqual(plain.code, 0, plain.stderr)
    XCTAssertEqual(plain.stderr, "")
  }

  func testThePreCommitFrameworksVariablesDriveTheCheckoutHook() throws {
    try makeRepository()
    try makeOtherBranch()
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(try git("checkout", "-q", "other").code, 0)
    let framework = ["PRE_COMMIT_FROM_REF": "main", "PRE_COMMIT_TO_REF": "other"]
    let fileCheckout = try dv(
      "hooks", "run", "post-checkout", env: framework.merging(["PRE_COMMIT_CHECKOUT_TYPE": "0"]) { $1 })
    XCTAssertEqual(fileCheckout.code, 0, fileCheckout.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,a\n")
    let branch = try dv(
      "hooks", "run", "post-checkout", env: framework.merging(["PRE_COMMIT_CHECKOUT_TYPE": "1"]) { $1 })
    XCTAssertEqual(branch.code, 0, branch.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,other\n")
  }

  func testACheckoutNeverOverwritesUncachedDataAndNamesMissingObjects() throws {
    try makeRepository()
    try makeOtherBranch()
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    try write("data/raw/a.csv", "id,v\n1,precious\n")
    let kept = try git("checkout", "-q", "other")
    XCTAssertEqual(kept.code, 0, kept.stderr)
    XCTAssertTrue(kept.stderr.contains("kept data/raw/a.csv"), kept.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,precious\n")

    try FileSystem.removeTree(root + "/.pipeline/cache")
    try write("data/raw/a.csv", "id,v\n1,other\n")
    let missing = try git("checkout", "-q", "main")
    XCTAssertEqual(missing.code, 0, "the checkout itself succeeds: \(missing.stderr)")
    XCTAssertTrue(missing.stderr.contains("not in the cache; run `dv pull`"), missing.stderr)
  }

  func testARebaseDoesNotMoveTheData() throws {
    try makeRepository()
    try makeOtherBranch()
    try write("notes.txt", "main moves on\n")
    try git("add", "notes.txt")
    XCTAssertEqual(try git("commit", "-q", "-m", "notes").code, 0)
    XCTAssertEqual(try git("checkout", "-q", "other").code, 0)
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    // The rebase checks out main's commit (whose data differs) with post-checkout flag 1, then
    // replays `other`; the hook must stay out of it.
    let rebase = try git("rebase", "-q", "main")
    XCTAssertEqual(rebase.code, 0, rebase.stderr)
    XCTAssertFalse(rebase.stderr.contains("written"), rebase.stderr)
    XCTAssertEqual(read("data/raw/a.csv"), "id,v\n1,other\n")
  }

  // MARK: - pre-push

  func testPrePushPushesTheDataToTheDefaultRemoteBeforeGitPushes() throws {
    try makeRepository()
    XCTAssertEqual(try git("init", "-q", "--bare", root + "/origin.git").code, 0)
    try git("remote", "add", "origin", root + "/origin.git")
    XCTAssertEqual(try dv("hooks", "install").code, 0)

    let noRemote = try git("push", "-q", "origin", "main")
    XCTAssertEqual(noRemote.code, 0, noRemote.stderr)
    XCTAssertTrue(noRemote.stderr.contains("dv: no default remote, nothing pushed"), noRemote.stderr)

    XCTAssertEqual(try dv("remote", "add", "-d", "backup", root + "/store").code, 0)
    try write(".pipeline/config.local.yaml", "version: 1\nhooks:\n  pre_push: off\n")
    XCTAssertEqual(try git("push", "-q", "origin", "main").code, 0)
    XCTAssertFalse(exists("store/files"), "pre_push: off pushes nothing")
    try FileSystem.removeFile(root + "/.pipeline/config.local.yaml")

    try git("commit", "-q", "--allow-empty", "-m", "second")
    let push = try git("push", "-q", "origin", "main")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stderr.contains("dv: pushed 4 objects"), push.stderr)
    let pushed = FileManager.default.enumerator(atPath: root + "/store")!.compactMap { $0 as? String }
    XCTAssertEqual(pushed.filter { $0.hasPrefix("sha256/") && $0.count > 20 }.count, 4, "\(pushed)")

    // A remote that cannot take the data stops git's push: the commit must not get ahead of it.
    try write("blocker", "a file where the remote's directory should be\n")
    XCTAssertEqual(try dv("remote", "add", "-d", "broken", root + "/blocker/store").code, 0)
    try git("commit", "-q", "--allow-empty", "-m", "third")
    let refused = try git("push", "-q", "origin", "main")
    XCTAssertNotEqual(refused.code, 0)
    XCTAssertTrue(refused.stderr.contains("failed to transfer"), refused.stderr)
    let remoteHead = try git("--git-dir", root + "/origin.git", "log", "-1", "--format=%s", "main")
    XCTAssertEqual(remoteHead.stdout, "second\n")
  }
}
