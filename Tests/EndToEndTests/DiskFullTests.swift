import DVBasics
import Foundation
import XCTest

/// Issue 9's disk-full suite: a workspace on a small tmpfs (mounted here; skipped with a message
/// where mounting is refused, e.g. without root or in a container without CAP_SYS_ADMIN). `dv add`
/// and `dv pull` that run out of space end with exit 1 and one line saying "no space left on
/// device", and leave the workspace and cache consistent: pointers unchanged, no half-written
/// object or file, no temporary files holding the space, `dv fsck` clean; once space is freed the
/// same command completes.
final class DiskFullTests: DVTestCase {
  /// The tmpfs mount point: the workspace (`root/small`).
  var mountPoint: String?

  /// Mounts a tmpfs of `megabytes` at `root/small`, or skips the test.
  func mountSmallFilesystem(megabytes: Int) throws {
    let point = root + "/small"
    try FileSystem.createDirectory(point)
    let mount = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0755", "tmpfs", point])
    guard mount.code == 0 else {
      throw XCTSkip(
        "mounting a \(megabytes) MB tmpfs was refused (\(mount.stderr.trimmingCharacters(in: .whitespacesAndNewlines))); "
          + "the disk-full tests need root and permission to mount")
    }
    mountPoint = point
  }

  override func tearDownWithError() throws {
    if let mountPoint {
      // Always unmount, lazily if something still holds it, before the tree is removed.
      if (try? run("/bin/umount", [mountPoint]))?.code != 0 { _ = try? run("/bin/umount", ["-l", mountPoint]) }
    }
    try super.tearDownWithError()
  }

  /// `bytes` of incompressible-looking text unique to `seed`.
  static func content(_ seed: String, bytes: Int) -> String {
    var text = ""
    var state = seed.utf8.reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    text.reserveCapacity(bytes)
    while text.utf8.count < bytes {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      text += String(state >> 11, radix: 36) + "\n"
    }
    return String(text.utf8.prefix(bytes))!
  }

  /// Free bytes on the tmpfs.
  func freeBytes() throws -> Int64 {
    let attributes = try FileManager.default.attributesOfFileSystem(forPath: try XCTUnwrap(mountPoint))
    return (attributes[.systemFreeSize] as? NSNumber)?.int64Value ?? -1
  }

  /// Files dv left in `.pipeline/tmp` (partial objects or downloads would hold space).
  func temporaryLeftovers(_ workspace: String) -> [String] {
    let directory = root + "/" + workspace + "/.pipeline/tmp"
    return ((try? FileSystem.listDirectory(directory)) ?? []).map(\.name).filter { $0 != "remotes" }
  }

  func assertNoSpaceFailure(_ result: RunResult, file: StaticString = #filePath, line: UInt = #line) {
    print("disk-full: exit \(result.code): \(result.stderr.trimmingCharacters(in: .newlines))")
    XCTAssertEqual(result.code, 1, result.stderr, file: file, line: line)
    XCTAssertTrue(
      result.stderr.lowercased().contains("no space left on device"), "stderr: \(result.stderr)", file: file,
      line: line)
    XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "one line: \(result.stderr)", file: file, line: line)
    XCTAssertFalse(result.stderr.contains("Fatal error"), file: file, line: line)
  }

  func testAddThatFillsTheDiskFailsCleanlyAndSucceedsOnceSpaceIsFree() throws {
    try mountSmallFilesystem(megabytes: 4)
    XCTAssertEqual(try dv("init", "--no-scm", in: "small").code, 0)
    try write("small/data/small/a.txt", "a\n")
    try write("small/data/small/b.txt", "b\n")
    XCTAssertEqual(try dv("add", "data/small", in: "small").code, 0)
    let pointer = read("small/data/small.dv")
    let objects = try cachedObjectNames("small")

    // 1.6 MB of other files and 1.4 MB to add: the cache's copy does not fit.
    try write("small/filler.bin", Self.content("filler", bytes: 1_600_000))
    let big = Self.content("big", bytes: 1_400_000)
    try write("small/data/big.bin", big)
    let before = try freeBytes()
    let add = try dv("add", "data/big.bin", in: "small")
    assertNoSpaceFailure(add)
    XCTAssertFalse(exists("small/data/big.bin.dv"), "no pointer to an object that is not cached")
    XCTAssertEqual(read("small/data/small.dv"), pointer)
    XCTAssertEqual(try cachedObjectNames("small"), objects, "no partial object in the cache")
    XCTAssertEqual(temporaryLeftovers("small"), [], "no temporary file holds the space")
    XCTAssertGreaterThanOrEqual(try freeBytes(), before - 64 * 1024, "the space the add took is given back")
    XCTAssertEqual(try dv("fsck", in: "small").code, 0)
    XCTAssertEqual(try dv("status", "--check", in: "small").code, 0)
    XCTAssertEqual(read("small/data/big.bin"), big, "the data itself is untouched")

    try FileSystem.removeFile(root + "/small/filler.bin")
    let again = try dv("add", "data/big.bin", in: "small")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertTrue(exists("small/data/big.bin.dv"))
    XCTAssertEqual(try dv("fsck", in: "small").code, 0)
  }

  /// A workspace outside the tmpfs (`src`) pushes `data/set` (files of `fileSize` bytes) to a
  /// directory remote outside it; the workspace on the tmpfs gets the pointer and the remote.
  func prepareRemote(files: Int, fileSize: Int) throws -> [String: String] {
    try FileSystem.createDirectory(root + "/src")
    XCTAssertEqual(try dv("init", "--no-scm", in: "src").code, 0)
    var expected: [String: String] = [:]
    for i in 0..<files {
      let content = Self.content("set \(i)", bytes: fileSize)
      try write("src/data/set/f\(i).bin", content)
      expected["data/set/f\(i).bin"] = content
    }
    XCTAssertEqual(try dv("add", "data/set", in: "src").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "store", root + "/remote", in: "src").code, 0)
    XCTAssertEqual(try dv("push", in: "src").code, 0)
    XCTAssertEqual(try dv("init", "--no-scm", in: "small").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "store", root + "/remote", in: "small").code, 0)
    try FileSystem.createDirectory(root + "/small/data")
    try FileSystem.writeAtomically(
      try XCTUnwrap(try FileSystem.readFileIfPresent(root + "/src/data/set.dv")), to: root + "/small/data/set.dv")
    return expected
  }

  /// The cache cannot hold what the pull fetches: nothing is checked out, nothing partial stays.
  func testPullThatFillsTheDiskWhileFetchingFailsCleanly() throws {
    try mountSmallFilesystem(megabytes: 6)
    let expected = try prepareRemote(files: 8, fileSize: 250_000)
    try write("small/filler.bin", Self.content("filler", bytes: 4_600_000))
    let pointer = read("small/data/set.dv")
    let pull = try dv("pull", in: "small")
    assertNoSpaceFailure(pull)
    XCTAssertEqual(read("small/data/set.dv"), pointer)
    XCTAssertFalse(exists("small/data/set"), "nothing is checked out when the fetch failed")
    XCTAssertEqual(temporaryLeftovers("small"), [], "no partial download holds the space")
    XCTAssertEqual(try dv("fsck", in: "small").code, 0)

    try FileSystem.removeFile(root + "/small/filler.bin")
    let again = try dv("pull", in: "small")
    XCTAssertEqual(again.code, 0, again.stderr)
    for (path, content) in expected { XCTAssertEqual(read("small/" + path), content, path) }
    XCTAssertEqual(try dv("status", "--check", in: "small").code, 0)
  }

  /// The objects fit in the cache but their workspace copies do not: checkout stops with the
  /// error, every file it placed is whole, and a pull after freeing space completes.
  func testPullThatFillsTheDiskWhileCheckingOutFailsCleanly() throws {
    try mountSmallFilesystem(megabytes: 6)
    let expected = try prepareRemote(files: 8, fileSize: 250_000)
    try write("small/filler.bin", Self.content("filler", bytes: 2_600_000))
    let pull = try dv("pull", in: "small")
    assertNoSpaceFailure(pull)
    var placed = 0
    for (path, content) in expected where exists("small/" + path) {
      XCTAssertEqual(read("small/" + path), content, "a file checkout placed is whole: \(path)")
      placed += 1
    }
    XCTAssertLessThan(placed, expected.count)
    XCTAssertEqual(temporaryLeftovers("small"), [])
    let leftovers = ((try? FileSystem.listDirectory(root + "/small/data/set")) ?? []).map(\.name).filter {
      !$0.hasSuffix(".bin")
    }
    XCTAssertEqual(leftovers, [], "no temporary sibling of a file is left in the workspace")
    XCTAssertEqual(try dv("fsck", in: "small").code, 0)

    try FileSystem.removeFile(root + "/small/filler.bin")
    let again = try dv("pull", in: "small")
    XCTAssertEqual(again.code, 0, again.stderr)
    for (path, content) in expected { XCTAssertEqual(read("small/" + path), content, path) }
    XCTAssertEqual(try dv("status", "--check", in: "small").code, 0)
  }

  /// The objects of a workspace's cache.
  func cachedObjectNames(_ workspace: String) throws -> [String] {
    cachedObjects(in: workspace)
  }
}
