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

  func testDirectorySnapshotsRoundTripAndGrowByDeltas() throws {
    let state = try StateCache(path: dir + "/state.db")
    let path = RelativePath(validating: "data/raw")!
    let stats = try (0..<300).map { i in try FileStat.of(try write("f\(i)", "\(i)"))! }
    let entries = stats.enumerated().map {
      SnapshotEntry(stat: $1, hash: SHA256Hasher.hash([UInt8($0 % 250)]), cached: true)
    }
    try state.record(
      tree: path, fingerprint: SHA256Hasher.hash([3]), hash: SHA256Hasher.hash([4]), entries: entries,
      previous: try state.snapshot(path))
    let snapshot = try state.snapshot(path)
    for (stat, entry) in zip(stats, entries) { XCTAssertEqual(snapshot.hash(for: stat), entry.hash) }
    var changed = stats[7]
    changed.mtimeNs += 1
    XCTAssertNil(snapshot.hash(for: changed))
    XCTAssertEqual(try state.tree(path)?.hash, SHA256Hasher.hash([4]))
    XCTAssertEqual(try state.tree(path)?.cached, true)

    // One changed file is recorded as a delta row; lookups see both.
    var next = entries
    next[7] = SnapshotEntry(stat: changed, hash: SHA256Hasher.hash([99]), cached: false)
    try state.record(tree: path, fingerprint: nil, hash: SHA256Hasher.hash([5]), entries: next, previous: snapshot)
    let reread = try state.snapshot(path)
    XCTAssertEqual(reread.delta.count, 1)
    XCTAssertEqual(reread.entry(for: changed)?.hash, SHA256Hasher.hash([99]))
    XCTAssertEqual(reread.entry(for: changed)?.cached, false, "status hashed it but did not cache it")
    XCTAssertEqual(reread.entry(for: stats[8])?.cached, true)
    XCTAssertEqual(try state.tree(path)?.cached, false)
    // Reopening finds the same data (and runs no migration twice).
    XCTAssertEqual(try StateCache(path: dir + "/state.db").snapshot(path).hash(for: changed), SHA256Hasher.hash([99]))

    // After gc or fsck nothing counts as cached any more, but hashes stay known.
    try state.record(
      tree: path, fingerprint: nil, hash: SHA256Hasher.hash([4]), entries: entries, previous: try state.snapshot(path))
    XCTAssertEqual(try state.tree(path)?.cached, true)
    try state.forgetCachedFlags()
    XCTAssertEqual(try state.tree(path)?.cached, false)
    XCTAssertEqual(try state.snapshot(path).entry(for: stats[8])?.cached, false)
    XCTAssertEqual(try state.snapshot(path).hash(for: stats[8]), entries[8].hash)

    // A record made from a snapshot read before a gc carries the old epoch: its flags are void.
    let beforeGC = try state.snapshot(path)
    try state.forgetCachedFlags()
    try state.record(tree: path, fingerprint: nil, hash: SHA256Hasher.hash([4]), entries: entries, previous: beforeGC)
    XCTAssertEqual(try state.tree(path)?.cached, false)
    XCTAssertEqual(try state.snapshot(path).entry(for: stats[8])?.cached, false)
  }
}
