import DVBasics
import Foundation
import XCTest

/// Every bad input a user can give ends in one line, exit code 2, and no change.
final class ErrorTests: DVTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    try makeWorkspaceWithData()
  }

  func assertNothingChanged(file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(cachedObjects(), [], file: file, line: line)
    XCTAssertFalse(exists("data/raw.dv"), file: file, line: line)
  }

  func testAddingAPathOutsideTheWorkspace() throws {
    assertFails(try dv("add", "/etc/hostname"), code: 2, "'/etc/hostname' is outside the workspace")
    assertFails(try dv("add", "../elsewhere"), code: 2, "is outside the workspace")
    assertNothingChanged()
  }

  func testAddingInsideDotPipeline() throws {
    assertFails(try dv("add", ".pipeline/config.yaml"), code: 2, "inside .pipeline/")
    assertNothingChanged()
  }

  func testAddingAMissingPath() throws {
    assertFails(try dv("add", "data/nope"), code: 2, "'data/nope' does not exist")
    assertNothingChanged()
  }

  func testAddingInsideATrackedDirectoryOrAroundOne() throws {
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let objects = cachedObjects()
    assertFails(try dv("add", "data/raw/a.csv"), code: 2, "inside a directory tracked by 'data/raw.dv'")
    assertFails(try dv("add", "data"), code: 2, "contains data already tracked by 'data/raw.dv'")
    XCTAssertEqual(cachedObjects(), objects)
    XCTAssertFalse(exists("data.dv"))
  }

  func testAddingASymlinkOrThePointerOrTheRoot() throws {
    try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: root + "/data/raw")
    assertFails(try dv("add", "link"), code: 2, "is a symbolic link")
    assertFails(try dv("add", "."), code: 2, "root cannot be tracked")
    assertNothingChanged()
  }

  func testASymlinkInsideADirectoryPointingOutsideIsRejected() throws {
    try FileManager.default.createSymbolicLink(atPath: root + "/data/raw/passwd", withDestinationPath: "/etc/passwd")
    assertFails(try dv("add", "data/raw"), code: 2, "'data/raw/passwd' is a symlink")
    assertNothingChanged()
  }

  func testMalformedPointerNamesFileLineColumn() throws {
    try write("data/other.dv", "version: 1\npath: other\nhash: sha256:xyz\n")
    assertFails(try dv("status"), code: 2, "data/other.dv:3:7: 'hash' must be sha256:")
    try write("data/other.dv", "version: 1\npath: [other\n")
    assertFails(try dv("status"), code: 2, "data/other.dv:")
    try write("data/other.dv", "version: 9\npath: other\n")
    assertFails(try dv("checkout"), code: 2, "data/other.dv:1:10: unsupported version 9")
  }

  func testBadConfigNamesTheSetting() throws {
    try write(".pipeline/config.yaml", "version: 1\ncache:\n  type: [warp]\n")
    assertFails(try dv("add", "data/raw"), code: 2, ".pipeline/config.yaml:3:10: unknown cache.type 'warp'")
    assertNothingChanged()
  }

  func testCheckoutOfAnUntrackedPath() throws {
    assertFails(try dv("checkout", "data/raw"), code: 2, "'data/raw' is not tracked")
  }

  func testAFileNameThatIsNotUTF8() throws {
    let name = root + "/data/raw/bad-\u{FF}"
    // Build the name from raw bytes: 0xFF is not valid UTF-8.
    var bytes = Array((root + "/data/raw/bad-").utf8)
    bytes.append(0xFF)
    bytes.append(0)
    let fd = bytes.withUnsafeBufferPointer {
      open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644)
    }
    XCTAssertGreaterThanOrEqual(fd, 0, name)
    close(fd)
    assertFails(try dv("add", "data/raw"), code: 2, "is not valid UTF-8")
    assertNothingChanged()
  }
}
