import DVBasics
import Foundation
import XCTest

/// Small objects travel in packs (docs/formats.md): through `dv` with a directory remote here;
/// RemoteCloudTests does the same against the S3 and GCS test servers.
final class PackTests: DVTestCase {
  /// `count` small files under `data/many` in ten subdirectories, and two files above the pack
  /// threshold (1 MiB), all added; remote `store` (a directory) is the default.
  func makeMixedWorkspace(count: Int = 300, remote: String = "store") throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for i in 0..<count {
      try write(
        "data/many/d\(i % 10)/f\(i).json", "{\"row\": \(i), \"text\": \"\(String(repeating: "x", count: i % 97))\"}\n")
    }
    try write("data/many/empty.txt", "")
    try write("data/big/a.bin", String(repeating: "large object A ", count: 80_000))
    try write("data/big/b.bin", String(repeating: "large object B ", count: 90_000))
    let add = try dv("add", "data/many", "data/big")
    XCTAssertEqual(add.code, 0, add.stderr)
    XCTAssertEqual(try dv("remote", "add", "-d", "store", remote).code, 0)
  }

  /// Names in the remote's `packs/` with the given suffix.
  func remotePacks(_ suffix: String, remote: String = "store") -> [String] {
    ((try? FileSystem.listDirectory(root + "/" + remote + "/packs")) ?? []).map(\.name).filter { $0.hasSuffix(suffix) }
      .sorted()
  }

  /// Names in the local cache's `packs/` with the given suffix.
  func localPacks(_ suffix: String) -> [String] {
    ((try? FileSystem.listDirectory(root + "/.pipeline/cache/packs")) ?? []).map(\.name).filter { $0.hasSuffix(suffix) }
      .sorted()
  }

  /// Loose objects on the remote.
  func looseObjects(remote: String = "store") -> Int {
    let base = root + "/" + remote + "/sha256"
    return ((try? FileSystem.listDirectory(base)) ?? []).reduce(0) {
      $0 + ((try? FileSystem.listDirectory(base + "/" + $1.name))?.count ?? 0)
    }
  }

  /// Removes the cache and the tracked data (not the pointers).
  func wipe() throws {
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/many")
    try FileSystem.removeTree(root + "/data/big")
  }

  /// Compares file sets without printing megabytes when they differ.
  func assertSameFiles(
    _ actual: [String: String], _ expected: [String: String], _ message: String = "",
    line: UInt = #line
  ) {
    XCTAssertEqual(actual.count, expected.count, "file count " + message, line: line)
    let differing = expected.keys.filter { actual[$0] != expected[$0] }.sorted()
    XCTAssertEqual(Array(differing.prefix(5)), [], "files differ " + message, line: line)
  }

  func testSmallObjectsArePackedAndComeBackByteForByte() throws {
    try makeMixedWorkspace()
    let before = files("data")
    let push = try dv("push")
    XCTAssertEqual(push.code, 0, push.stderr)
    // 301 small files, 2 large, 2 directory manifests.
    XCTAssertTrue(push.stdout.hasPrefix("pushed 305 objects ("), push.stdout)
    let packs = remotePacks(".pack")
    XCTAssertFalse(packs.isEmpty)
    XCTAssertEqual(packs.map { $0.dropLast(5) }, remotePacks(".idx").map { $0.dropLast(4) }, "an index per pack")
    XCTAssertEqual(looseObjects(), 4, "the two large files and the two manifests (fewer than 32) travel loose")
    for pack in packs {
      let bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(root + "/store/packs/" + pack))
      XCTAssertEqual(Array(bytes.prefix(8)), Array("DVPACK01".utf8))
      XCTAssertEqual(try sha256Hex(root + "/store/packs/" + pack) + ".pack", pack, "named by its content")
    }
    XCTAssertEqual(try dv("push").stdout, "everything is already on 'store'\n")
    XCTAssertEqual(try dv("status", "--remote").stdout, "everything is on 'store' and in the cache\n")

    // A fresh copy of the indexes is enough to know what the remote holds.
    try FileSystem.removeTree(root + "/.pipeline/tmp/remotes")
    XCTAssertEqual(try dv("push").stdout, "everything is already on 'store'\n")

    try wipe()
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.hasPrefix("fetched 305 objects ("), pull.stdout)
    assertSameFiles(files("data"), before, "byte for byte")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(try dv("fsck").code, 0)
  }

  /// What a pull leaves in the cache (docs/formats.md §8), and every command that reads it:
  /// status, checkout (copy and hardlink), fsck finding a damaged byte, a pull fetching that one
  /// object again, a push to another remote, and gc.
  func testPulledSmallObjectsStayPackedInTheCacheAndEveryCommandReadsThem() throws {
    try makeMixedWorkspace()
    let before = files("data")
    XCTAssertEqual(try dv("push").code, 0)
    try wipe()
    XCTAssertEqual(try dv("pull").code, 0)
    assertSameFiles(files("data"), before)
    let packs = localPacks(".pack")
    XCTAssertFalse(packs.isEmpty)
    XCTAssertEqual(packs.map { $0.dropLast(5) }, localPacks(".idx").map { $0.dropLast(4) })
    let loose = cachedObjects().filter {
      FileSystem.exists(root + "/.pipeline/cache/sha256/" + $0.prefix(2) + "/" + $0.dropFirst(2))
    }
    XCTAssertEqual(loose.count, 4, "only the large files and the manifests are loose: \(loose.count)")
    XCTAssertEqual(cachedObjects().count, 305)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")

    // checkout from the packs, by copy and by hard link.
    try FileSystem.removeTree(root + "/data/many/d3")
    XCTAssertEqual(try dv("checkout").code, 0)
    assertSameFiles(files("data"), before, "copied out of the packs")
    let config = try XCTUnwrap(read(".pipeline/config.yaml"))
    XCTAssertTrue(config.contains("type: [reflink, copy]"), config)
    try write(
      ".pipeline/config.yaml", config.replacingOccurrences(of: "type: [reflink, copy]", with: "type: [hardlink, copy]"))
    try FileSystem.removeTree(root + "/data/many/d4")
    let linked = try dv("checkout")
    XCTAssertEqual(linked.code, 0, linked.stderr)
    assertSameFiles(files("data"), before, "linked to objects written out of the packs")
    let hex = try sha256Hex(root + "/data/many/d4/f4.json")
    let object = root + "/.pipeline/cache/sha256/" + hex.prefix(2) + "/" + hex.dropFirst(2)
    XCTAssertEqual(try FileStat.of(object)?.inode, try FileStat.of(root + "/data/many/d4/f4.json")?.inode)
    try write(".pipeline/config.yaml", config)
    XCTAssertEqual(try dv("fsck").code, 0)

    // A damaged byte inside a cache pack: fsck moves that object aside, and pull fetches it again.
    let pack = root + "/.pipeline/cache/packs/" + packs[0]
    chmod(pack, 0o644)
    var bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(pack))
    bytes[100] ^= 0x04
    try FileSystem.writeFile(bytes, to: pack)
    let fsck = try dv("fsck")
    XCTAssertEqual(fsck.code, 1, fsck.stdout + fsck.stderr)
    XCTAssertTrue((fsck.stdout + fsck.stderr).contains("1 corrupt"), fsck.stdout + fsck.stderr)
    XCTAssertEqual(cachedObjects().count, 304)
    let refetch = try dv("pull")
    XCTAssertEqual(refetch.code, 0, refetch.stderr)
    XCTAssertTrue(refetch.stdout.hasPrefix("fetched 1 object ("), refetch.stdout)
    XCTAssertEqual(try dv("fsck").code, 0)

    // A push to another remote uploads packed objects too.
    XCTAssertEqual(try dv("remote", "add", "other", "other").code, 0)
    let push = try dv("push", "-r", "other")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 305 objects ("), push.stdout)

    // gc: one directory untracked; its objects go, packs are rewritten or deleted.
    try FileSystem.removeFile(root + "/data/many.dv")
    let gc = try dv("gc")
    XCTAssertEqual(gc.code, 0, gc.stderr)
    XCTAssertEqual(cachedObjects().count, 3, "data/big's two files and manifest: \(cachedObjects().count)")
    XCTAssertEqual(localPacks(".pack").count, localPacks(".idx").count)
    XCTAssertEqual(try dv("fsck").code, 0)
  }

  func testPullingOneDirectoryReadsOnlyItsObjects() throws {
    try makeMixedWorkspace()
    XCTAssertEqual(try dv("push").code, 0)
    let before = files("data/many")
    try wipe()
    // data/many is one tracked directory: fetch its manifest and the files of one subdirectory
    // are not separately addressable, so pull the whole directory but not data/big.
    let pull = try dv("pull", "data/many")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    assertSameFiles(files("data/many"), before)
    XCTAssertFalse(exists("data/big/a.bin"))
    XCTAssertEqual(cachedObjects().count, 302, "301 files and the manifest")
  }

  func testACorruptPackByteIsDetectedAndNeverCached() throws {
    try makeMixedWorkspace()
    XCTAssertEqual(try dv("push").code, 0)
    let pack = try XCTUnwrap(remotePacks(".pack").first)
    let path = root + "/store/packs/" + pack
    var bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(path))
    chmod(path, 0o644)
    bytes[bytes.count / 2] ^= 0x20
    try FileSystem.writeFile(bytes, to: path)
    try wipe()
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 1, pull.stdout)
    XCTAssertTrue(pull.stderr.contains("is corrupt on the remote"), pull.stderr)
    XCTAssertTrue(pull.stderr.contains("packs/" + pack), "names the pack: \(pull.stderr)")
    XCTAssertFalse(exists("data/many/d0/f0.json"), "nothing is checked out from a failed fetch")
    // Every object that did reach the cache is intact.
    XCTAssertEqual(try dv("fsck").code, 0)
    XCTAssertGreaterThan(cachedObjects().count, 250, "only the damaged object is lost")
  }

  func testAPullKilledHalfwayIsFinishedByRunningItAgain() throws {
    try makeMixedWorkspace()
    XCTAssertEqual(try dv("push").code, 0)
    let before = files("data")
    try wipe()
    // One job: the two manifests (loose), then the pack's segment (stored as a local pack),
    // then the two large objects (loose); killed as the second large one is committed.
    let killed = try dv("pull", "-j", "1", env: ["DV_FAILPOINT": "transfer:before-commit@4:kill"])
    XCTAssertNotEqual(killed.code, 0)
    let partial = cachedObjects().count
    XCTAssertEqual(partial, 304, "objects stored before the kill stay")
    XCTAssertEqual(localPacks(".idx").count, 1, "the small objects stay packed in the cache")
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.hasPrefix("fetched 1 object ("), pull.stdout)
    assertSameFiles(files("data"), before)
    XCTAssertEqual(try dv("fsck").code, 0)

    // Killed before the segment's objects are stored: nothing of it is in the cache, and the
    // rerun reads it again.
    try wipe()
    let early = try dv("pull", "-j", "1", env: ["DV_FAILPOINT": "transfer:store@1:kill"])
    XCTAssertNotEqual(early.code, 0)
    XCTAssertEqual(cachedObjects().count, 2, "only the manifests")
    XCTAssertEqual(localPacks(".pack"), [])
    let again = try dv("pull")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertTrue(again.stdout.hasPrefix("fetched 303 objects ("), again.stdout)
    assertSameFiles(files("data"), before)
    XCTAssertEqual(try dv("fsck").code, 0)
  }

  func testAPushKilledBeforeAnIndexLeavesNothingTakenAsComplete() throws {
    try makeMixedWorkspace()
    let killed = try dv("push", "-j", "1", env: ["DV_FAILPOINT": "transfer:before-pack-index:kill"])
    XCTAssertNotEqual(killed.code, 0)
    XCTAssertEqual(remotePacks(".idx"), [], "a pack without its index")
    XCTAssertEqual(remotePacks(".pack").count, 1)
    XCTAssertTrue(try dv("status", "--remote").stdout.contains("missing on 'store'"))
    let push = try dv("push")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 305 objects ("), push.stdout)
    // The orphan is garbage.
    let gc = try dv("gc", "--remote", "store", "--dry-run")
    XCTAssertEqual(gc.code, 0, gc.stderr)
    let orphans = gc.stdout.components(separatedBy: "(no index)").count - 1
    XCTAssertLessThanOrEqual(orphans, 1, gc.stdout)
    XCTAssertEqual(try dv("gc", "--remote", "store", "--yes").code, 0)
    XCTAssertEqual(remotePacks(".pack").map { $0.dropLast(5) }, remotePacks(".idx").map { $0.dropLast(4) })
    try wipe()
    XCTAssertEqual(try dv("pull").code, 0)
  }

  func testTwoWorkspacesPushingAtOnceToOneRemote() throws {
    // Two workspaces sharing half their files, pushing concurrently.
    let shared = root + "/shared-remote"
    let first = root + "/one"
    let second = root + "/two"
    for (index, directory) in [first, second].enumerated() {
      try FileSystem.createDirectory(directory)
      let name = String(directory.dropFirst(root.count + 1))
      XCTAssertEqual(try dv("init", "--no-scm", in: name).code, 0)
      for i in 0..<200 {
        let owner = i < 100 ? "common" : "ws\(index)"
        try write("\(directory.dropFirst(root.count + 1))/data/f\(i).txt", "\(owner) file \(i)\n")
      }
      XCTAssertEqual(try dv("add", "data", in: name).code, 0)
      XCTAssertEqual(try dv("remote", "add", "-d", "store", shared, in: name).code, 0)
    }
    let processes = try [first, second].map { directory -> Process in
      let process = Process()
      process.executableURL = URL(fileURLWithPath: Self.binary)
      process.arguments = ["push"]
      process.currentDirectoryURL = URL(fileURLWithPath: directory)
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      return process
    }
    for process in processes { process.waitUntilExit() }
    XCTAssertEqual(processes.map(\.terminationStatus), [0, 0])
    for directory in [first, second] {
      let expected = files(String(directory.dropFirst(root.count + 1)) + "/data")
      try FileSystem.removeTree(directory + "/.pipeline/cache")
      try FileSystem.removeTree(directory + "/.pipeline/tmp")
      try FileSystem.removeTree(directory + "/data")
      let pull = try dv("pull", in: String(directory.dropFirst(root.count + 1)))
      XCTAssertEqual(pull.code, 0, pull.stderr)
      assertSameFiles(files(String(directory.dropFirst(root.count + 1)) + "/data"), expected)
    }
  }

  func testGarbageCollectionDeletesWholePacksAndRepacks() throws {
    try makeMixedWorkspace()
    XCTAssertEqual(try dv("push").code, 0)
    let firstPacks = remotePacks(".pack")
    // A new version of data/many: 150 files change, so the old packs hold garbage.
    for i in 0..<150 { try write("data/many/d\(i % 10)/f\(i).json", "{\"row\": \(i), \"v\": 2}\n") }
    XCTAssertEqual(try dv("add", "data/many").code, 0)
    XCTAssertEqual(try dv("push").code, 0)
    XCTAssertGreaterThan(remotePacks(".pack").count, firstPacks.count)

    // Plain gc: the old packs still hold referenced objects, so only the loose old manifest goes.
    let plain = try dv("gc", "--remote", "store", "--dry-run")
    XCTAssertTrue(plain.stdout.hasPrefix("would remove 1 object ("), plain.stdout)

    let dryRun = try dv("gc", "--remote", "store", "--repack", "--dry-run")
    XCTAssertEqual(dryRun.code, 0, dryRun.stderr)
    // Both packs are small, so the repack joins them: every referenced small object is rewritten.
    XCTAssertTrue(dryRun.stdout.contains("would rewrite 301 referenced objects into new packs"), dryRun.stdout)
    XCTAssertTrue(dryRun.stdout.contains("(repacked)"), dryRun.stdout)
    let repack = try dv("gc", "--remote", "store", "--repack", "--yes")
    XCTAssertEqual(repack.code, 0, repack.stderr)
    XCTAssertTrue(repack.stdout.contains("rewrote 301 referenced objects into 1 new pack"), repack.stdout)
    for pack in firstPacks { XCTAssertFalse(remotePacks(".pack").contains(pack), "old pack \(pack) deleted") }
    XCTAssertTrue(try dv("gc", "--remote", "store", "--dry-run").stdout.hasPrefix("would remove 0 objects"))

    let before = files("data")
    try wipe()
    let pull = try dv("pull")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    assertSameFiles(files("data"), before)

    // A remote whose data is no longer referenced at all loses whole packs.
    try FileSystem.removeFile(root + "/data/many.dv")
    let all = try dv("gc", "--remote", "store", "--yes")
    XCTAssertEqual(all.code, 0, all.stderr)
    XCTAssertEqual(remotePacks(".pack"), [])
    let usage = try dv("gc", "--repack")
    XCTAssertEqual(usage.code, 2)
    XCTAssertTrue(usage.stderr.contains("give --remote NAME"), usage.stderr)
  }

  func sha256Hex(_ path: String) throws -> String {
    String(try run("/usr/bin/env", ["sha256sum", path]).stdout.prefix(64))
  }
}
