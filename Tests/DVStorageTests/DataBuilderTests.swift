import DVBasics
import Foundation
import XCTest

@testable import DVStorage

final class DataBuilderTests: StorageTestCase {
  func makeBuilder(ignore: String = "") throws -> DataBuilder {
    try FileSystem.createDirectory(dir + "/.pipeline")
    return DataBuilder(
      workspaceRoot: dir, ignore: IgnoreRules(text: ignore), state: try StateCache(path: dir + "/.pipeline/state.db"),
      cache: ObjectCache(root: dir + "/.pipeline/cache", tmp: dir + "/.pipeline/tmp"), progress: SilentProgress())
  }

  let raw = RelativePath(validating: "data/raw")!

  func testDirectoryHashIsTheManifestHashAndIgnoresDvignoredFiles() throws {
    try write("data/raw/a.csv", "a")
    try write("data/raw/sub/b.csv", "b")
    try write("data/raw/skip.tmp", "t")
    let builder = try makeBuilder(ignore: "*.tmp\n")
    let built = try XCTUnwrap(try builder.build(raw, mode: .inspect, wantManifest: true))
    XCTAssertEqual(built.kind, .dir)
    XCTAssertEqual(built.manifest?.entries.map(\.path), ["a.csv", "sub/b.csv"])
    XCTAssertEqual(built.hash, built.manifest?.objectID())
    XCTAssertEqual(built.files, 2)
  }

  func testScanOrderIsPathByteOrder() throws {
    // "a" is a directory: its files sort after "a.txt" and "a-b" ("/" is 0x2F) but before "a0".
    for name in ["a.txt", "a/b", "a-b/c", "B", "a/b.c/d", "ab", "a0/z", "é"] { try write("data/raw/" + name, name) }
    let scanned = try DirectoryScanner(workspaceRoot: dir, ignore: .none).scan(raw).map(\.path)
    XCTAssertEqual(scanned, scanned.sorted(by: utf8Precedes))
    XCTAssertEqual(scanned, ["B", "a-b/c", "a.txt", "a/b", "a/b.c/d", "a0/z", "ab", "é"])
  }

  func testUnchangedDirectoryIsAnsweredFromTheFingerprintAndChangesAreSeen() throws {
    try write("data/raw/a.csv", "a")
    try write("data/raw/b.csv", "b")
    let builder = try makeBuilder()
    let first = try XCTUnwrap(try builder.build(raw, mode: .ingest([.copy])))
    let again = try XCTUnwrap(try builder.build(raw, mode: .inspect))
    XCTAssertEqual(again.hash, first.hash)
    XCTAssertNil(again.manifest, "the fingerprint answered without rebuilding the manifest")

    try write("data/raw/a.csv", "changed")
    let changed = try XCTUnwrap(try builder.build(raw, mode: .inspect))
    XCTAssertNotEqual(changed.hash, first.hash)
  }

  func testAFileRewrittenWithinTheSameTickIsNeverServedStale() throws {
    let path = try write("data/raw/a.csv", "one", backdate: false)
    let builder = try makeBuilder()
    let first = try XCTUnwrap(try builder.build(raw, mode: .inspect))
    // Same size, and possibly the same coarse mtime: the stat cache must not have trusted it.
    try Data("two".utf8).write(to: URL(fileURLWithPath: path))
    let second = try XCTUnwrap(try builder.build(raw, mode: .inspect))
    XCTAssertNotEqual(first.hash, second.hash)
  }

  func testIngestPutsEveryFileAndTheManifestInTheCache() throws {
    try write("data/raw/a.csv", "a")
    try write("data/raw/deep/er/b.csv", "b")
    let builder = try makeBuilder()
    let built = try XCTUnwrap(try builder.build(raw, mode: .ingest([.copy]), wantManifest: true))
    XCTAssertTrue(builder.cache.contains(built.hash))
    for entry in built.manifest!.entries { XCTAssertTrue(builder.cache.contains(entry.hash)) }
    XCTAssertEqual(try builder.cache.manifest(built.hash), built.manifest)
  }

  func testCheckoutRefusesToDestroyUncachedContent() throws {
    try write("data/raw/a.csv", "a")
    let builder = try makeBuilder()
    let built = try XCTUnwrap(try builder.build(raw, mode: .ingest([.copy])))
    try write("data/raw/a.csv", "edited but never added")
    try write("data/raw/extra.csv", "new file")
    let checkout = DataCheckout(builder: builder)
    let plan = try checkout.plan(raw, kind: .dir, hash: built.hash)
    XCTAssertEqual(Set(plan.unsafe.map(\.value)), ["data/raw/a.csv", "data/raw/extra.csv"])
    try checkout.apply(plan, types: [.copy], force: true)
    XCTAssertEqual(try FileSystem.readTextIfPresent(dir + "/data/raw/a.csv"), "a")
    XCTAssertFalse(FileSystem.exists(dir + "/data/raw/extra.csv"))
  }
}
