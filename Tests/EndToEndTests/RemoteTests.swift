import DVBasics
import Foundation
import XCTest

/// Remotes through the `dv` binary: a directory remote inside the test's temporary directory.
final class RemoteTests: DVTestCase {
  /// A workspace with `data/raw` (3 files) and `model.bin` added, and remote `store` (a
  /// directory, relative to the workspace) as the default.
  func makeWorkspaceWithRemote() throws {
    try makeWorkspaceWithData()
    try write("model.bin", "weights v1")
    XCTAssertEqual(try dv("add", "data/raw", "model.bin").code, 0)
    let add = try dv("remote", "add", "-d", "store", "store")
    XCTAssertEqual(add.code, 0, add.stderr)
  }

  func testPushWipePullRoundTrip() throws {
    try makeWorkspaceWithRemote()
    let status = try dv("status", "--remote")
    XCTAssertEqual(status.code, 0, status.stderr)
    XCTAssertTrue(status.stdout.contains("data/raw: missing on 'store' (data/raw.dv)"), status.stdout)

    let push = try dv("push")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 5 objects ("), push.stdout)
    XCTAssertTrue(push.stdout.contains("), 0 failed"), push.stdout)
    XCTAssertEqual(push.stderr, "")
    XCTAssertEqual(try dv("push").stdout, "everything is already on 'store'\n")
    XCTAssertEqual(try dv("status", "--remote", "store").stdout, "everything is on 'store' and in the cache\n")
    let remoteObjects = try FileSystem.listDirectory(root + "/store/sha256").count
    XCTAssertEqual(remoteObjects, 5, "fan-out directories of five objects (distinct first bytes, very likely)")

    let data = files("data/raw")
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/raw")
    try FileSystem.removeFile(root + "/model.bin")
    let missing = try dv("status", "--remote")
    XCTAssertTrue(missing.stdout.contains("model.bin: missing locally (model.bin.dv)"), missing.stdout)
    let json = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(try dv("status", "--remote", "--json").stdout.utf8)) as? [String: Any]
    )
    XCTAssertEqual(json["remote"] as? String, "store")
    XCTAssertEqual(json["in_sync"] as? Bool, false)
    let model = (json["data"] as? [[String: Any]])?.first { $0["path"] as? String == "model.bin" }
    XCTAssertEqual(model?["missing_locally"] as? Int, 1)
    XCTAssertEqual(model?["missing_on_remote"] as? Int, 0)
    XCTAssertEqual(try dv("status", "--remote", "--check").code, 1)

    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.hasPrefix("fetched 5 objects ("), pull.stdout)
    XCTAssertEqual(files("data/raw"), data, "byte for byte")
    XCTAssertEqual(read("model.bin"), "weights v1")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(try dv("fetch").stdout, "everything is already in the cache\n")
    XCTAssertEqual(
      try FileSystem.listDirectory(root + "/.pipeline/tmp").filter { $0.name.hasPrefix("download.") }.count, 0)

    // A new version: the old one's object is garbage on the remote.
    try write("model.bin", "weights v2")
    XCTAssertEqual(try dv("add", "model.bin").code, 0)
    XCTAssertTrue(try dv("push", "model.bin").stdout.hasPrefix("pushed 1 object ("))
    let dryRun = try dv("gc", "--remote", "store", "--dry-run")
    XCTAssertEqual(dryRun.code, 0, dryRun.stderr)
    XCTAssertTrue(dryRun.stdout.hasPrefix("would remove 1 object (10 B) from 'store'; kept 5"), dryRun.stdout)
    assertFails(try dv("gc", "--remote", "store"), code: 2, "pass --yes to confirm")
    XCTAssertTrue(try dv("gc", "--remote", "store", "--yes").stdout.hasPrefix("removed 1 object (10 B)"))
    XCTAssertTrue(try dv("gc", "--remote", "store", "--dry-run").stdout.hasPrefix("would remove 0 objects"))
  }

  func testPullDoesNotOverwriteUncachedChanges() throws {
    try makeWorkspaceWithRemote()
    XCTAssertEqual(try dv("push").code, 0)
    try write("model.bin", "weights v2")
    XCTAssertEqual(try dv("add", "model.bin").code, 0)
    let v2 = read("model.bin.dv")!
    XCTAssertEqual(try dv("push").code, 0)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try write("model.bin", "unsaved work")
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 1, pull.stdout)
    XCTAssertTrue(pull.stderr.contains("refusing to overwrite"), pull.stderr)
    XCTAssertEqual(read("model.bin"), "unsaved work")
    XCTAssertEqual(try dv("pull", "--force").code, 0)
    XCTAssertEqual(read("model.bin"), "weights v2")
    XCTAssertEqual(read("model.bin.dv"), v2)
  }

  func testAnInterruptedPushOrPullIsFinishedByRunningItAgain() throws {
    try makeWorkspaceWithRemote()
    let failed = try dv("push", env: ["DV_FAILPOINT": "local-remote:before-rename"])
    XCTAssertEqual(failed.code, 1, failed.stderr)
    XCTAssertTrue(
      failed.stdout.hasPrefix("pushed 0 objects (0 B), 6 failed"), "5 objects and a run record: \(failed.stdout)")
    XCTAssertEqual(try dv("status", "--remote").stdout.components(separatedBy: "missing on 'store'").count, 3)
    let again = try dv("push")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertTrue(again.stdout.hasPrefix("pushed 5 objects ("), again.stdout)

    let data = files("data/raw")
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/raw")
    let interrupted = try dv("pull", env: ["DV_FAILPOINT": "transfer:before-commit"])
    XCTAssertEqual(interrupted.code, 1, interrupted.stderr)
    XCTAssertFalse(exists("data/raw/a.csv"), "nothing is checked out from a failed fetch")
    XCTAssertEqual(cachedObjects(), [])
    XCTAssertEqual(
      try FileSystem.listDirectory(root + "/.pipeline/tmp").filter { $0.name.hasPrefix("download.") }.count, 0)
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertEqual(files("data/raw"), data)
  }

  func testACorruptObjectOnTheRemoteIsRejected() throws {
    try makeWorkspaceWithRemote()
    XCTAssertEqual(try dv("push").code, 0)
    let pointer = read("model.bin.dv")!
    let hex = String(pointer.split(separator: "\n").first { $0.hasPrefix("hash: sha256:") }!.dropFirst(13))
    let object = "store/sha256/" + hex.prefix(2) + "/" + hex.dropFirst(2)
    try write(object, "tampered weights")
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeFile(root + "/model.bin")

    let pull = try dv("pull", "model.bin")
    assertFails(pull, code: 1, "is corrupt on the remote (expected sha256:\(hex)")
    XCTAssertTrue(pull.stderr.contains(hex.prefix(2) + "/" + hex.dropFirst(2)), "names the object")
    XCTAssertFalse(cachedObjects().contains(hex), "the bad bytes never enter the cache")
    XCTAssertFalse(exists("model.bin"))
    XCTAssertEqual(
      try FileSystem.listDirectory(root + "/.pipeline/tmp").filter { $0.name.hasPrefix("download.") }.count, 0)
    XCTAssertEqual(try dv("fetch", "data/raw").code, 0, "other objects are fine")
  }

  func testRemoteConfiguration() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertEqual(try dv("remote", "list").stdout, "no remotes; add one with `dv remote add NAME URL`\n")
    XCTAssertEqual(try dv("remote", "add", "-d", "s3", "s3://bucket/projects/q").code, 0)
    XCTAssertEqual(try dv("remote", "add", "backup", "/mnt/backup/dv").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "endpoint", "http://127.0.0.1:9000").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "region", "eu-west-1").code, 0)

    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assertFails(
      try dv("remote", "modify", "s3", "secret_access_key", secret), code: 2,
      "'secret_access_key' is a secret and .pipeline/config.yaml is committed; use `dv remote modify --local s3")
    XCTAssertEqual(try dv("remote", "modify", "--local", "s3", "secret_access_key", secret).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "--local", "s3", "access_key_id", "AKIDEXAMPLE").code, 0)
    XCTAssertFalse(read(".pipeline/config.yaml")!.contains(secret))
    XCTAssertTrue(read(".pipeline/config.local.yaml")!.contains(secret))
    XCTAssertTrue(read(".pipeline/config.yaml")!.contains("# reflink, hardlink, symlink, copy."), "comments are kept")

    let list = try dv("remote", "list")
    XCTAssertEqual(
      list.stdout,
      """
      backup\t/mnt/backup/dv
      s3\ts3://bucket/projects/q\t(default)
          access_key_id: ****
          endpoint: http://127.0.0.1:9000
          region: eu-west-1
          secret_access_key: ****

      """)
    let json = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(try dv("remote", "list", "--json").stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(json.map { $0["name"] as? String }, ["backup", "s3"])
    XCTAssertEqual((json[1]["settings"] as? [String: String])?["secret_access_key"], "****")
    XCTAssertEqual(json[1]["default"] as? Bool, true)

    assertFails(try dv("remote", "modify", "s3", "colour", "blue"), code: 2, "remote 's3' has no setting 'colour'")
    assertFails(try dv("remote", "modify", "backup", "region", "x"), code: 2, "remote 'backup' has no setting 'region'")
    assertFails(try dv("remote", "add", "s3", "/tmp/x"), code: 2, "a remote named 's3' already exists")
    assertFails(try dv("remote", "add", "ftp", "ftp://host/x"), code: 2, "invalid remote URL 'ftp://host/x'")
    let withSecret = try dv("remote", "modify", "s3", "url", "s3://AKID:hunter2@bucket/x")
    assertFails(withSecret, code: 2, "credentials do not belong in the URL")
    XCTAssertFalse(withSecret.stderr.contains("hunter2"))
    assertFails(try dv("remote", "remove", "nope"), code: 2, "no remote named 'nope'")
    assertFails(try dv("push", "-r", "nope"), code: 2, "no remote named 'nope' (configured: 'backup', 's3')")
    assertFails(try dv("fetch", "--remote", "nope"), code: 2, "no remote named 'nope'")

    XCTAssertEqual(try dv("remote", "remove", "s3").code, 0)
    XCTAssertFalse(read(".pipeline/config.local.yaml")!.contains(secret), "its local settings go too")
    XCTAssertFalse(read(".pipeline/config.yaml")!.contains("remote: s3"), "it is no longer the default")
    assertFails(try dv("push"), code: 2, "no remote given and no default remote")
    XCTAssertEqual(try dv("remote", "list").stdout, "backup\t/mnt/backup/dv\n")
  }

  func testRunRecordsAndTheRunCacheAreSharedThroughTheRemote() throws {
    let counter = root + "/runs.count"
    let pipeline = """
      stages:
        prepare:
          cmd: head -n ${n} data/raw.txt > prepared.txt && echo ran >> \(counter)
          deps: [data/raw.txt]
          params: [n]
          outs: [prepared.txt]

      """
    for name in ["a", "b"] {
      try FileSystem.createDirectory(root + "/" + name)
      XCTAssertEqual(try dv("init", "--no-scm", in: name).code, 0)
      try write(name + "/stages.yaml", pipeline)
      try write(name + "/params.yaml", "n: 2\n")
      XCTAssertEqual(try dv("remote", "add", "-d", "store", "../store", in: name).code, 0)
    }
    try write("a/data/raw.txt", "1\n2\n3\n")
    XCTAssertEqual(try dv("add", "data/raw.txt", in: "a").code, 0)
    XCTAssertEqual(try dv("repro", in: "a").code, 0)
    XCTAssertEqual(try FileSystem.readTextIfPresent(counter), "ran\n")
    let push = try dv("push", in: "a")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.contains("; 2 run records"), push.stdout)
    XCTAssertEqual(try dv("push", in: "a").stdout, "everything is already on 'store'\n")

    // A teammate has the pointer and the pipeline, not stages.lock: the run cache restores.
    try write("b/data/raw.txt.dv", read("a/data/raw.txt.dv")!)
    let pull = try dv("pull", "--run-cache", in: "b")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.contains("imported 2 run records"), pull.stdout)
    XCTAssertEqual(read("b/data/raw.txt"), "1\n2\n3\n")
    let log = try dv("lineage", "log", in: "b")
    XCTAssertEqual(log.code, 0, log.stderr)
    XCTAssertEqual(log.stdout, try dv("lineage", "log", in: "a").stdout, "the same runs")
    let repro = try dv("repro", in: "b")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertTrue(repro.stdout.contains("restored its outputs from the run cache"), repro.stdout)
    XCTAssertEqual(try FileSystem.readTextIfPresent(counter), "ran\n", "prepare did not run again")
    XCTAssertEqual(read("b/prepared.txt"), "1\n2\n")

    // Importing again changes nothing.
    XCTAssertFalse(try dv("fetch", in: "b").stdout.contains("imported"))

    // An output the working tree no longer references travels with --run-cache.
    try write("a/params.yaml", "n: 1\n")
    XCTAssertEqual(try dv("repro", in: "a").code, 0)
    try write("a/params.yaml", "n: 3\n")
    XCTAssertEqual(try dv("repro", in: "a").code, 0)
    XCTAssertEqual(try FileSystem.readTextIfPresent(counter), "ran\nran\nran\n")
    let plain = try dv("push", in: "a").stdout
    XCTAssertEqual(plain, "pushed 0 objects (0 B), 0 failed; 2 run records\n", "n=3's output is data/raw.txt's")
    XCTAssertTrue(try dv("push", "--run-cache", in: "a").stdout.hasPrefix("pushed 1 object ("), "n=1's output")
    try write("b/params.yaml", "n: 1\n")
    XCTAssertEqual(try dv("fetch", "--run-cache", in: "b").code, 0)
    let restoredAgain = try dv("repro", in: "b")
    XCTAssertTrue(restoredAgain.stdout.contains("restored its outputs from the run cache"), restoredAgain.stdout)
    XCTAssertEqual(read("b/prepared.txt"), "1\n")
    XCTAssertEqual(try FileSystem.readTextIfPresent(counter), "ran\nran\nran\n")
  }
}
