import Foundation
import XCTest

@testable import DVBasics

final class FileSystemTests: XCTestCase {
  var dir: String!

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "dv-basics-\(UUID().uuidString)"
    try FileSystem.createDirectory(dir)
  }

  override func tearDownWithError() throws {
    FailPoint.arm(nil)
    try FileSystem.removeTree(dir)
  }

  func testAtomicWriteReplacesContent() throws {
    let path = dir + "/file.txt"
    try FileSystem.writeAtomically("one\n", to: path)
    try FileSystem.writeAtomically("two\n", to: path)
    XCTAssertEqual(try FileSystem.readTextIfPresent(path), "two\n")
    XCTAssertEqual(try FileSystem.listDirectory(dir).map(\.name), ["file.txt"])
  }

  func testAtomicWriteInterruptedBeforeRenameKeepsTheOldFileAndNoTemporaries() throws {
    let path = dir + "/pointer.dv"
    try FileSystem.writeAtomically("old\n", to: path)
    FailPoint.arm("atomic-write:before-rename")
    XCTAssertThrowsError(try FileSystem.writeAtomically("new\n", to: path)) { error in
      XCTAssertTrue(error is FailPoint.Injected)
    }
    FailPoint.arm(nil)
    XCTAssertEqual(try FileSystem.readTextIfPresent(path), "old\n")
    XCTAssertEqual(try FileSystem.listDirectory(dir).map(\.name), ["pointer.dv"])
  }

  func testCreateDirectoryMakesParentsAndRemoveTreeRemovesReadOnlyFiles() throws {
    let nested = dir + "/a/b/c"
    try FileSystem.createDirectory(nested)
    XCTAssertTrue(FileSystem.isDirectory(nested))
    try FileSystem.writeAtomically("x", to: nested + "/f", mode: 0o444)
    try FileSystem.removeTree(dir + "/a")
    XCTAssertFalse(FileSystem.exists(dir + "/a"))
  }

  func testRemoveTreeRemovesNamesThatAreNotUTF8AndDoesNotFollowLinks() throws {
    let tree = dir + "/tree"
    try FileSystem.createDirectory(tree + "/sub")
    // Names with the byte 0xFF (never UTF-8), a file and a directory holding a file.
    for name: [UInt8] in [Array("/bad-\u{1}".utf8) + [0xFF], Array("/sub/dir-".utf8) + [0xFE, 0xFF]] {
      let path = Array(tree.utf8) + name + [0]
      if name.starts(with: Array("/sub/dir-".utf8)) {
        XCTAssertEqual(
          path.withUnsafeBufferPointer {
            mkdir(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 0o755)
          }, 0)
        let file = Array(path.dropLast()) + Array("/f".utf8) + [0]
        let fd = file.withUnsafeBufferPointer {
          open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o444)
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
      } else {
        let fd = path.withUnsafeBufferPointer {
          open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644)
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
      }
    }
    // A link to a directory outside: removed, the target kept.
    try FileSystem.createDirectory(dir + "/outside")
    try FileSystem.writeAtomically("keep\n", to: dir + "/outside/keep.txt")
    XCTAssertEqual(symlink(dir + "/outside", tree + "/sub/link"), 0)
    try FileSystem.removeTree(tree)
    XCTAssertFalse(FileSystem.exists(tree))
    XCTAssertEqual(try FileSystem.readTextIfPresent(dir + "/outside/keep.txt"), "keep\n")
  }

  func testReadRangeReadsFromAnOffsetAndStopsAtTheEnd() throws {
    let path = dir + "/range.bin"
    try FileSystem.writeAtomically("0123456789", to: path)
    XCTAssertEqual(try FileSystem.readRange(of: path, offset: 3, length: 4), Array("3456".utf8))
    XCTAssertEqual(try FileSystem.readRange(of: path, offset: 8, length: 5), Array("89".utf8), "short at the end")
    XCTAssertThrowsError(try FileSystem.readRange(of: dir + "/missing", offset: 0, length: 1))
  }

  func testSecondLockerTimesOutNamingTheHolder() throws {
    let path = dir + "/lock"
    let first = try FileLock(path: path, timeout: 1)
    XCTAssertThrowsError(try FileLock(path: path, timeout: 0.1)) { error in
      guard let busy = error as? FileLock.Busy else { return XCTFail("unexpected \(error)") }
      XCTAssertEqual(busy.holder, getpid())
      XCTAssertTrue(busy.description.contains("another dv process (pid \(getpid()))"))
    }
    first.release()
    let second = try FileLock(path: path, timeout: 0.1)
    second.release()
  }

  func testParallelForEachVisitsEveryIndexOnceAndRethrows() throws {
    let seen = Locked<[Int]>([])
    try parallelForEach(1000) { i in seen.withLock { $0.append(i) } }
    XCTAssertEqual(seen.withLock { $0 }.sorted(), Array(0..<1000))

    struct Boom: Error {}
    XCTAssertThrowsError(try parallelForEach(100) { i in if i == 50 { throw Boom() } }) { error in
      XCTAssertTrue(error is Boom)
    }
  }

  func testSettledMeansChangedInAnEarlierClockTick() {
    let now = FileClock.nowNs()
    XCTAssertFalse(FileClock.isSettled(mtimeNs: now, readStartNs: now))
    XCTAssertTrue(FileClock.isSettled(mtimeNs: now - 2 * FileClock.tickNs - 1, readStartNs: now))
  }
}
