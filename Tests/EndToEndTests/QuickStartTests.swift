import DVBasics
import Foundation
import XCTest

/// The README's Quick start, as a new user runs it: the first command, `scripts/dv repro`, in a
/// clean clone of the repository (its committed HEAD), building dv from nothing and running the
/// example pipeline. (`scripts/test`, the second command, is what runs this test.)
final class QuickStartTests: DVTestCase {
  func testTheFirstCommandBuildsDVAndRunsTheExamplePipelineInACleanClone() throws {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    guard FileSystem.exists(repository + "/.git") else { throw XCTSkip("not a git checkout: \(repository)") }
    let clone = try run("/usr/bin/env", ["git", "clone", "--quiet", "--no-hardlinks", repository, "clone"])
    XCTAssertEqual(clone.code, 0, clone.stderr)

    // A debug build from scratch takes minutes on two cores.
    let first = try run(root + "/clone/scripts/dv", ["repro"], in: "clone", timeout: 1500)
    XCTAssertEqual(first.code, 0, first.stderr)
    let buildWarnings = first.stderr.split(separator: "\n").filter {
      $0.contains(": warning:") || $0.hasPrefix("warning: '")
    }
    XCTAssertEqual(buildWarnings, [], "a clean build prints no warnings")
    for stage in ["validate", "dedup", "split", "sizes"] {
      XCTAssertTrue(first.stdout.contains("Running stage '\(stage)'"), first.stdout)
    }
    for split in ["train", "val", "test"] { XCTAssertTrue(exists("clone/data/splits/\(split).jsonl"), split) }
    XCTAssertTrue(read("clone/reports/sizes.txt")?.contains("train.jsonl") == true)

    let status = try run(root + "/clone/scripts/dv", ["status"], in: "clone", timeout: 300)
    XCTAssertEqual(status.stdout, "data and pipelines are up to date\n", status.stderr)
    // The example's outputs are ignored by git: the clone is as clean as it came.
    let git = try run("/usr/bin/env", ["git", "status", "--porcelain"], in: "clone")
    XCTAssertEqual(git.stdout, "")
  }
}
