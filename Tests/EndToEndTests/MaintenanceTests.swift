import DVBasics
import Foundation
import XCTest

final class MaintenanceTests: DVTestCase {
  func testGCRemovesOnlyUnreferencedObjects() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try write("data/raw/a.csv", "changed\n")
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    XCTAssertEqual(cachedObjects().count, 6, "old a.csv and old manifest are still cached")

    let dry = try dv("gc", "--dry-run")
    XCTAssertEqual(dry.code, 0)
    XCTAssertTrue(dry.stdout.hasPrefix("would remove 2 objects"), dry.stdout)
    XCTAssertEqual(cachedObjects().count, 6)

    let gc = try dv("gc")
    XCTAssertEqual(gc.code, 0, gc.stderr)
    XCTAssertTrue(gc.stdout.hasPrefix("removed 2 objects"), gc.stdout)
    XCTAssertEqual(cachedObjects().count, 4)
    try FileSystem.removeTree(root + "/data/raw")
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(read("data/raw/a.csv"), "changed\n")
    XCTAssertEqual(try dv("gc").stdout.prefix(17), "removed 0 objects")
  }

  func testGCKeepsOutputsRecordedInStagesLock() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("out.txt", "stage output")
    XCTAssertEqual(try dv("add", "out.txt").code, 0)
    let hash = read("out.txt.dv")!.split(separator: "\n").first { $0.hasPrefix("hash: ") }!.dropFirst(6)
    try FileManager.default.removeItem(atPath: root + "/out.txt.dv")
    try write(
      "stages.lock",
      "version: 1\nstages:\n  make:\n    cmd: echo\n    outs: [{path: out.txt, hash: \(hash), size: 12}]\n")
    XCTAssertTrue(try dv("gc").stdout.hasPrefix("removed 0 objects"))
    try FileManager.default.removeItem(atPath: root + "/out.txt")
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(read("out.txt"), "stage output")
  }

  func testFsckFindsAndMovesAsideACorruptObject() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let good = try dv("fsck")
    XCTAssertEqual(good.code, 0)
    XCTAssertTrue(good.stdout.hasPrefix("verified 4 objects"), good.stdout)

    let hex = SHA256Hex.of("id,v\n1,a\n")
    let object = root + "/.pipeline/cache/sha256/" + hex.prefix(2) + "/" + hex.dropFirst(2)
    chmod(object, 0o644)
    try Data("id,v\n1,EVIL\n".utf8).write(to: URL(fileURLWithPath: object))
    let bad = try dv("fsck")
    XCTAssertEqual(bad.code, 1)
    XCTAssertTrue(bad.stdout.contains("corrupt: sha256:\(hex)"), bad.stdout)
    XCTAssertTrue(bad.stderr.contains("1 corrupt object"), bad.stderr)
    XCTAssertFalse(FileSystem.exists(object))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/.pipeline/cache/corrupt").count, 1)

    // The workspace copy is intact; adding it again restores the object (fsck made the stat
    // cache forget that the directory's objects were all cached).
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    XCTAssertTrue(FileSystem.exists(object))
    XCTAssertEqual(try dv("fsck").code, 0)
  }

  func testADamagedStatCacheIsRebuilt() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try FileSystem.removeFile(root + "/.pipeline/state.db-wal")
    try FileSystem.removeFile(root + "/.pipeline/state.db-shm")
    try write(".pipeline/state.db", "this is not a database")
    let status = try dv("status")
    XCTAssertEqual(status.code, 0, status.stderr)
    XCTAssertEqual(status.stdout, "data and pipelines are up to date\n")
  }

  func testWritersWaitForTheLockAndNameItsHolder() throws {
    try makeWorkspaceWithData()
    let lock = try FileLock(path: root + "/.pipeline/lock", timeout: 1)
    let blocked = try dv("add", "data/raw", env: ["DV_LOCK_TIMEOUT": "0.2"])
    assertFails(blocked, code: 1, "another dv process (pid \(getpid())) is using this workspace")
    XCTAssertFalse(exists("data/raw.dv"))
    // Readers take no lock.
    XCTAssertEqual(try dv("status").code, 0)
    lock.release()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
  }

  func testAnAddInterruptedBeforeThePointerIsWrittenCanBeRerun() throws {
    try makeWorkspaceWithData()
    let failed = try dv("add", "data/raw", env: ["DV_FAILPOINT": "add:before-pointer"])
    XCTAssertEqual(failed.code, 1)
    XCTAssertFalse(exists("data/raw.dv"))
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    XCTAssertEqual(try dv("fsck").code, 0)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testAKilledAddLeavesARecoverableWorkspace() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for i in 0..<300 { try write("data/big/f\(i).bin", String(repeating: "\(i)", count: 2000)) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.binary)
    process.arguments = ["add", "data/big"]
    process.currentDirectoryURL = URL(fileURLWithPath: root)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    usleep(20_000)
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    XCTAssertEqual(try dv("fsck").code, 0)
    XCTAssertEqual(try dv("add", "data/big").code, 0)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    try FileSystem.removeTree(root + "/data/big")
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertEqual(read("data/big/f7.bin"), String(repeating: "7", count: 2000))
  }
}

/// SHA-256 hex of a string, computed by the system's sha256sum (independent of dv's code).
enum SHA256Hex {
  static func of(_ text: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sha256sum"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try! process.run()
    input.fileHandleForWriting.write(Data(text.utf8))
    try! input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(String(decoding: data, as: UTF8.self).prefix(64))
  }
}
