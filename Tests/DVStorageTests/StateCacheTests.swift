import DVBasics
import Foundation
import XCTest

@testable import DVStorage

final class StateCacheTests: StorageTestCase {
  func testLookupNeedsTheExactStat() throws {
    let state = try StateCache(path: dir + "/state.db")
    let path = try write("a.csv", "abc")
    let stat = try FileStat.of(path)!
    let id = SHA256Hasher.hash(Array("abc".utf8))
    try state.record(files: [(stat, id)], readStartNs: FileClock.nowNs())
    XCTAssertEqual(try state.hash(for: stat), id)

    var grown = stat
    grown.size += 1
    XCTAssertNil(try state.hash(for: grown), "a size change invalidates")
    var touched = stat
    touched.mtimeNs += 1
    XCTAssertNil(try state.hash(for: touched), "an mtime change invalidates")
    var moved = stat
    moved.inode += 1
    XCTAssertNil(try state.hash(for: moved), "another inode is another file")
  }

  func testFilesChangedInTheCurrentClockTickAreNotRemembered() throws {
    let state = try StateCache(path: dir + "/state.db")
    let path = try write("fresh.csv", "new", backdate: false)
    let stat = try FileStat.of(path)!
    try state.record(files: [(stat, SHA256Hasher.hash(Array("new".utf8)))], readStartNs: stat.mtimeNs)
    XCTAssertNil(try state.hash(for: stat))
  }

  func testDirectorySnapshotsRoundTrip() throws {
    let state = try StateCache(path: dir + "/state.db")
    let stat = try FileStat.of(try write("x", "1"))!
    let entries = [
      SnapshotEntry(path: "a/ü.csv", stat: stat, hash: SHA256Hasher.hash([1])),
      SnapshotEntry(path: "b", stat: stat, hash: SHA256Hasher.hash([2])),
    ]
    let path = RelativePath(validating: "data/raw")!
    try state.record(
      tree: path, fingerprint: SHA256Hasher.hash([3]), hash: SHA256Hasher.hash([4]), cached: true, entries: entries)
    XCTAssertEqual(try state.snapshot(path), entries)
    XCTAssertEqual(try state.tree(path)?.hash, SHA256Hasher.hash([4]))
    XCTAssertEqual(try state.tree(path)?.cached, true)
    try state.forgetCachedFlags()
    XCTAssertEqual(try state.tree(path)?.cached, false)
    // Reopening finds the same data (and runs no migration twice).
    XCTAssertEqual(try StateCache(path: dir + "/state.db").snapshot(path), entries)
  }
}
