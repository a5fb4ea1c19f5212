import DVBasics
import Foundation
import XCTest

@testable import DVStorage

/// Small objects stored together as packs in the local cache (docs/formats.md §8).
final class CachePacksTests: StorageTestCase {
  var cache: ObjectCache!
  var packDirectory: String { dir + "/.pipeline/cache/packs" }

  override func setUpWithError() throws {
    try super.setUpWithError()
    cache = ObjectCache(root: dir + "/.pipeline/cache", tmp: dir + "/.pipeline/tmp")
  }

  /// A new cache object over the same directory: what the next command sees.
  func reopened() -> ObjectCache {
    ObjectCache(root: dir + "/.pipeline/cache", tmp: dir + "/.pipeline/tmp")
  }

  /// `count` distinct small objects.
  func objects(_ count: Int, tag: String = "o") -> [(id: ObjectID, bytes: [UInt8])] {
    (0..<count).map { i in
      let bytes = Array("\(tag) \(i) \(String(repeating: "z", count: i % 50))\n".utf8)
      return (SHA256Hasher.hash(bytes), bytes)
    }
  }

  func names(_ suffix: String) -> [String] {
    ((try? FileSystem.listDirectory(packDirectory)) ?? []).map(\.name).filter { $0.hasSuffix(suffix) }.sorted()
  }

  func testABatchOfSmallObjectsBecomesOnePackThatTheNextCommandReads() throws {
    let batch = objects(40)
    XCTAssertEqual(try cache.store(verified: batch), 40)
    XCTAssertEqual(names(".pack").count, 1)
    XCTAssertEqual(names(".idx").count, 1)
    XCTAssertFalse(FileSystem.exists(cache.path(for: batch[0].id)), "not loose")
    // The pack is named by its hash and read-only, like every object.
    let pack = packDirectory + "/" + names(".pack")[0]
    let packBytes = try XCTUnwrap(try FileSystem.readFileIfPresent(pack))
    XCTAssertEqual(SHA256Hasher.hash(packBytes).hex + ".pack", names(".pack")[0])
    XCTAssertEqual(try FileStat.of(pack)!.mode & 0o777, 0o444)

    let next = reopened()
    for object in batch {
      XCTAssertTrue(next.contains(object.id))
      XCTAssertEqual(try next.read(object.id), object.bytes)
      XCTAssertEqual(next.size(of: object.id), Int64(object.bytes.count))
      XCTAssertTrue(try next.verify(object.id, buffer: IOBuffer()))
    }
    XCTAssertEqual(Set(try next.allObjects().map(\.id)), Set(batch.map(\.id)))
    // Stored again: nothing new.
    XCTAssertEqual(try next.store(verified: batch), 0)
    XCTAssertEqual(names(".pack").count, 1)
  }

  func testFewOrLargeObjectsStayLoose() throws {
    let few = objects(5)
    XCTAssertEqual(try cache.store(verified: few), 5)
    XCTAssertEqual(names(".pack"), [])
    for object in few { XCTAssertTrue(FileSystem.exists(cache.path(for: object.id))) }

    let large = [UInt8](repeating: 7, count: ObjectCache.packedObjectLimit)
    let batch = objects(20, tag: "p") + [(SHA256Hasher.hash(large), large)]
    XCTAssertEqual(try cache.store(verified: batch), 21)
    XCTAssertTrue(FileSystem.exists(cache.path(for: SHA256Hasher.hash(large))), "a 1 MiB object is loose")
    XCTAssertEqual(names(".pack").count, 1)
  }

  func testCheckoutCopiesOutOfThePackOrWritesALooseFileForALink() throws {
    let batch = objects(20)
    try cache.store(verified: batch)
    let next = reopened()
    let copy = dir + "/copy.txt"
    XCTAssertEqual(
      try next.materialize(batch[3].id, at: copy, executable: false, types: [.reflink, .copy], buffer: IOBuffer()),
      .copy)
    XCTAssertEqual(try FileSystem.readFileIfPresent(copy), batch[3].bytes)
    XCTAssertEqual(try FileStat.of(copy)!.mode & 0o777, 0o644)

    let link = dir + "/link.txt"
    XCTAssertEqual(
      try next.materialize(batch[4].id, at: link, executable: false, types: [.hardlink, .copy], buffer: IOBuffer()),
      .hardlink)
    XCTAssertEqual(try FileSystem.readFileIfPresent(link), batch[4].bytes)
    XCTAssertTrue(FileSystem.exists(next.path(for: batch[4].id)), "the link's target is a loose object")
    let loose = try XCTUnwrap(try next.looseFile(for: batch[5].id))
    XCTAssertEqual(loose.path, next.path(for: batch[5].id))
    XCTAssertEqual(loose.size, Int64(batch[5].bytes.count))
    XCTAssertEqual(try FileSystem.readFileIfPresent(next.path(for: batch[5].id)), batch[5].bytes)
    XCTAssertEqual(Set(try next.allObjects().map(\.id)).count, 20, "a loose copy is not counted twice")
  }

  /// Flips a byte of the object `id` inside its pack (the pack is made writable for it).
  func damage(_ id: ObjectID, in cache: ObjectCache) throws {
    let location = try XCTUnwrap(cache.packs.location(of: id))
    let path = cache.packs.packPath(location.pack)
    chmod(path, 0o644)
    var bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(path))
    bytes[Int(location.offset)] ^= 0x01
    try FileSystem.writeFile(bytes, to: path)
  }

  func testACorruptPackedObjectIsNeverPlacedAndIsMovedAsideAlone() throws {
    let batch = objects(30)
    try cache.store(verified: batch)
    let next = reopened()
    try damage(batch[7].id, in: next)
    XCTAssertFalse(try next.verify(batch[7].id, buffer: IOBuffer()))
    XCTAssertTrue(try next.verify(batch[8].id, buffer: IOBuffer()))
    let target = dir + "/out.txt"
    XCTAssertThrowsError(
      try next.materialize(batch[7].id, at: target, executable: false, types: [.copy], buffer: IOBuffer())
    ) { error in
      guard case StorageError.corruptObject(let id, let moved) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(id, batch[7].id)
      XCTAssertTrue(moved.contains("/.pipeline/cache/corrupt/"), moved)
    }
    XCTAssertFalse(FileSystem.exists(target))
    XCTAssertFalse(next.contains(batch[7].id))
    // The index lost that object only, for this process and the next.
    let after = reopened()
    XCTAssertFalse(after.contains(batch[7].id))
    XCTAssertEqual(try after.allObjects().count, 29)
    XCTAssertEqual(try after.read(batch[8].id), batch[8].bytes)
  }

  func testRemovingObjectsRewritesOrDeletesTheirPacks() throws {
    let first = objects(20, tag: "first")
    let second = objects(20, tag: "second")
    try cache.store(verified: first)
    try cache.store(verified: second)
    XCTAssertEqual(names(".pack").count, 2)
    let next = reopened()
    // All of the first pack and half of the second.
    let gone = Set(first.map(\.id) + second.prefix(10).map(\.id))
    try next.remove(gone)
    XCTAssertEqual(names(".pack").count, 1)
    XCTAssertEqual(names(".idx").count, 1)
    let after = reopened()
    XCTAssertEqual(Set(try after.allObjects().map(\.id)), Set(second.suffix(10).map(\.id)))
    for object in second.suffix(10) { XCTAssertEqual(try after.read(object.id), object.bytes) }
    for id in gone { XCTAssertFalse(after.contains(id)) }
  }

  func testAPackWithoutItsIndexIsIgnoredAndRemoved() throws {
    try cache.store(verified: objects(20))
    let index = packDirectory + "/" + names(".idx")[0]
    try FileSystem.removeFile(index)
    let next = reopened()
    XCTAssertEqual(try next.allObjects().count, 0)
    try next.removeUnindexedPacks()
    XCTAssertEqual(names(".pack"), [])
  }

  func testADamagedIndexIsIgnored() throws {
    let batch = objects(20)
    try cache.store(verified: batch)
    let index = packDirectory + "/" + names(".idx")[0]
    chmod(index, 0o644)
    var bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(index))
    bytes[20] ^= 0x10
    try FileSystem.writeFile(bytes, to: index)
    XCTAssertFalse(reopened().contains(batch[0].id), "objects of an index that does not verify are absent")
  }

  func testIndexLayoutRoundTripsAndRejectsAnotherPacksName() throws {
    let pack = SHA256Hasher.hash(Array("pack".utf8))
    let slots = objects(3).map { PackLayout.Slot(id: $0.id, offset: 8, length: Int64($0.bytes.count)) }
      .sorted { $0.id < $1.id }
    let bytes = PackLayout.encodeIndex(slots, pack: pack, packSize: 100)
    let decoded = try PackLayout.decodeIndex(bytes, pack: pack)
    XCTAssertEqual(decoded.slots, slots)
    XCTAssertEqual(decoded.packSize, 100)
    XCTAssertThrowsError(try PackLayout.decodeIndex(bytes, pack: SHA256Hasher.hash(Array("other".utf8))))
  }
}
