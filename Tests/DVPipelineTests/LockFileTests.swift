import DVBasics
import DVStorage
import XCTest

@testable import DVPipeline

final class LockFileTests: XCTestCase {
  func testRoundTripAndStableText() throws {
    var lock = LockFile()
    let h = SHA256Hasher.hash(Array("x".utf8))
    lock.set(
      LockFile.StageRecord(
        cmd: "python src/prepare.py --seed 42 # \"quoted\"",
        deps: [LockFile.Entry(path: RelativePath(validating: "src/prepare.py")!, hash: h, size: 812, files: nil)],
        params: [
          ("params.yaml", [("prepare.seed", .scalar("42")), ("sizes", .list([.scalar("a"), .scalar("b: c")]))])
        ],
        outs: [LockFile.Entry(path: RelativePath(validating: "data/prepared")!, hash: h, size: 5120, files: 3)]),
      for: "prepare")
    lock.set(LockFile.StageRecord(cmd: "true", deps: [], params: [], outs: []), for: "train@small")
    let text = lock.text
    XCTAssertTrue(
      text.hasPrefix(
        "version: 1\nstages:\n  prepare:\n    cmd: \"python src/prepare.py --seed 42 # \\\"quoted\\\"\"\n"), text)
    XCTAssertTrue(text.contains("    - {path: data/prepared, hash: \(h), size: 5120, files: 3}\n"), text)
    XCTAssertTrue(text.contains("        prepare.seed: 42\n        sizes: [a, \"b: c\"]\n"), text)
    let parsed = try LockFile.parse(text)
    XCTAssertEqual(parsed, lock)
    XCTAssertEqual(parsed.record(for: "prepare")?.value(of: "prepare.seed", in: "params.yaml"), .scalar("42"))
    XCTAssertEqual(parsed.record(for: "prepare")?.outs.first?.kind, .dir)
  }

  func testBadLockFilesAreLocated() {
    XCTAssertThrowsError(try LockFile.parse("version: 2\nstages: {}\n")) { error in
      XCTAssertTrue("\(error)".hasPrefix("stages.lock:1:10: unsupported version 2"), "\(error)")
    }
    XCTAssertThrowsError(try LockFile.parse("version: 1\nstages:\n  a:\n    outs: [{path: /etc/x, hash: x}]\n")) {
      error in
      XCTAssertTrue("\(error)".hasPrefix("stages.lock:4:12:"), "\(error)")
    }
  }
}
