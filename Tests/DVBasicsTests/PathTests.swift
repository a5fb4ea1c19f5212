import XCTest

@testable import DVBasics

final class PathTests: XCTestCase {
  func testRelativePathNormalizesAndRejectsEscapes() {
    XCTAssertEqual(RelativePath(validating: "data/./raw/")?.value, "data/raw")
    XCTAssertEqual(RelativePath(validating: "data/x/../raw")?.value, "data/raw")
    XCTAssertEqual(RelativePath(validating: ".")?.value, ".")
    XCTAssertNil(RelativePath(validating: "/etc/passwd"))
    XCTAssertNil(RelativePath(validating: "../outside"))
    XCTAssertNil(RelativePath(validating: "data/../../outside"))
    XCTAssertNil(RelativePath(validating: ""))
  }

  func testInsideAndParent() {
    let raw = RelativePath(validating: "data/raw")!
    XCTAssertTrue(RelativePath(validating: "data/raw/a.csv")!.isInside(raw))
    XCTAssertTrue(raw.isInside(raw))
    XCTAssertFalse(RelativePath(validating: "data/raw2")!.isInside(raw))
    XCTAssertEqual(raw.parent.value, "data")
    XCTAssertEqual(RelativePath(validating: "x")!.parent, .root)
    XCTAssertEqual(raw.basename, "raw")
  }

  func testResolverConfinesPathsToTheWorkspace() throws {
    let resolver = PathResolver(root: "/w", currentDirectory: "/w/data")
    XCTAssertEqual(try resolver.resolve("raw").value, "data/raw")
    XCTAssertEqual(try resolver.resolve("../other").value, "other")
    XCTAssertEqual(try resolver.resolve("/w/data/raw").value, "data/raw")
    XCTAssertEqual(try resolver.resolve(".."), .root)
    XCTAssertThrowsError(try resolver.resolve("../../etc")) { error in
      XCTAssertEqual((error as? DVError)?.kind, .badInput)
    }
    XCTAssertThrowsError(try resolver.resolve("/etc/passwd"))
    XCTAssertThrowsError(try resolver.resolve("../.pipeline/cache")) { error in
      XCTAssertTrue("\(error)".contains(".pipeline"))
    }
  }

  func testByteOrderIsTheManifestOrder() {
    let names = ["a/b", "a.txt", "B", "a", "é", "z"]
    let sorted = names.sorted(by: utf8Precedes)
    XCTAssertEqual(sorted, ["B", "a", "a.txt", "a/b", "z", "é"])
  }
}
