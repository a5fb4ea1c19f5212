import DVBasics
import Foundation
import XCTest

@testable import DVStorage

final class ObjectCacheTests: StorageTestCase {
  var cache: ObjectCache!

  override func setUpWithError() throws {
    try super.setUpWithError()
    cache = ObjectCache(root: dir + "/.pipeline/cache", tmp: dir + "/.pipeline/tmp")
  }

  private func ingest(_ relative: String, _ types: [LinkType]) throws -> ObjectCache.Ingested {
    let path = dir + "/" + relative
    return try cache.ingest(file: path, stat: try FileStat.of(path)!, known: nil, types: types, buffer: IOBuffer())
  }

  private func mode(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue
  }

  func testCopyIngestNamesTheObjectByItsHashReadOnlyWithFanOut() throws {
    try write("a.csv", "hello\n")
    let result = try ingest("a.csv", [.copy])
    XCTAssertEqual(result.id, SHA256Hasher.hash(Array("hello\n".utf8)))
    let object = cache.path(for: result.id)
    XCTAssertTrue(object.hasSuffix("/sha256/" + result.id.hex.prefix(2) + "/" + result.id.hex.dropFirst(2)))
    XCTAssertEqual(try FileSystem.readTextIfPresent(object), "hello\n")
    XCTAssertEqual(try mode(object), 0o444)
    XCTAssertFalse(result.replacedWorkspaceFile)
  }

  func testLargeFilesStreamThroughTheCache() throws {
    let content = String(repeating: "x", count: (1 << 20) + 12345)
    try write("big.bin", content)
    let result = try ingest("big.bin", [.copy])
    XCTAssertEqual(result.size, Int64(content.utf8.count))
    XCTAssertEqual(result.id, SHA256Hasher.hash(Array(content.utf8)))
    XCTAssertTrue(try cache.verify(result.id, buffer: IOBuffer()))
  }

  func testObjectsAreWriteOnce() throws {
    let id = try cache.store(Array("same".utf8))
    let object = cache.path(for: id)
    let before = try FileStat.of(object)!
    XCTAssertEqual(try cache.store(Array("same".utf8)), id)
    try write("same.txt", "same")
    _ = try ingest("same.txt", [.copy])
    XCTAssertEqual(try FileStat.of(object)!.inode, before.inode)
  }

  func testHardlinkMakesTheWorkspaceFileTheReadOnlyObject() throws {
    let path = try write("h.csv", "linked\n")
    let result = try ingest("h.csv", [.hardlink])
    XCTAssertEqual(result.linkType, .hardlink)
    let ws = try FileStat.of(path)!
    XCTAssertEqual(ws.inode, try FileStat.of(cache.path(for: result.id))!.inode)
    XCTAssertEqual(ws.mode & 0o777, 0o444)

    // A second file with the same content is replaced by a link to the existing object.
    let other = try write("h2.csv", "linked\n")
    let second = try ingest("h2.csv", [.hardlink])
    XCTAssertTrue(second.replacedWorkspaceFile)
    XCTAssertEqual(try FileStat.of(other)!.inode, ws.inode)
  }

  func testSymlinkPointsTheWorkspaceAtTheCache() throws {
    let path = try write("s.csv", "sym\n")
    let result = try ingest("s.csv", [.symlink])
    XCTAssertEqual(result.linkType, .symlink)
    XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: path), cache.path(for: result.id))
    XCTAssertEqual(try FileSystem.readTextIfPresent(path), "sym\n")
  }

  func testReflinkFallsBackInOrderWhereUnsupported() throws {
    try write("r.csv", "clone me\n")
    let result = try ingest("r.csv", [.reflink, .copy])
    // ext4 and tmpfs cannot clone; btrfs and XFS can. Either way the object is right.
    XCTAssertTrue([.reflink, .copy].contains(result.linkType))
    XCTAssertEqual(try FileSystem.readTextIfPresent(cache.path(for: result.id)), "clone me\n")
  }

  func testMaterializeWithEachStrategy() throws {
    let id = try cache.store(Array("payload\n".utf8))
    for type in LinkType.allCases {
      let target = dir + "/out-\(type.rawValue).txt"
      let used = try cache.materialize(id, at: target, executable: false, types: [type, .copy], buffer: IOBuffer())
      XCTAssertEqual(try FileSystem.readTextIfPresent(target), "payload\n", "\(type)")
      switch used {
      case .copy, .reflink: XCTAssertEqual(try mode(target), 0o644)
      case .hardlink: XCTAssertEqual(try FileStat.of(target)!.inode, try FileStat.of(cache.path(for: id))!.inode)
      case .symlink:
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: target), cache.path(for: id))
      }
    }
    let exe = dir + "/run.sh"
    try cache.materialize(id, at: exe, executable: true, types: [.copy], buffer: IOBuffer())
    XCTAssertEqual(try mode(exe), 0o755)
  }

  func testACorruptObjectIsDetectedOnReadAndMovedAside() throws {
    let id = try cache.store(Array("precious\n".utf8))
    let object = cache.path(for: id)
    chmod(object, 0o644)
    try Data("tampered\n".utf8).write(to: URL(fileURLWithPath: object))
    XCTAssertFalse(try cache.verify(id, buffer: IOBuffer()))
    XCTAssertThrowsError(
      try cache.materialize(id, at: dir + "/out.txt", executable: false, types: [.copy], buffer: IOBuffer())
    ) { error in
      guard case StorageError.corruptObject(let bad, let moved) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(bad, id)
      XCTAssertTrue(FileSystem.exists(moved))
    }
    XCTAssertFalse(cache.contains(id))
    XCTAssertFalse(FileSystem.exists(dir + "/out.txt"))
  }

  func testAnInterruptedIngestLeavesNoObjectBehind() throws {
    try write("c.csv", "never committed\n")
    FailPoint.arm("cache:before-commit")
    XCTAssertThrowsError(try ingest("c.csv", [.copy]))
    FailPoint.arm(nil)
    XCTAssertEqual(try cache.allObjects().count, 0)
    XCTAssertEqual(try ingest("c.csv", [.copy]).id, SHA256Hasher.hash(Array("never committed\n".utf8)))
  }
}
