import DVBasics
import Foundation
import XCTest

/// The repository's own example pipeline (the README's first command) keeps working.
final class ExamplePipelineTests: DVTestCase {
  func testTheExamplePipelineRunsOnAFreshCopy() throws {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for file in ["stages.yaml", "params.yaml", "data/sample/queries.csv"] {
      let text = try XCTUnwrap(try FileSystem.readTextIfPresent(repo + "/" + file), file)
      try write(file, text)
    }
    let run = try dv("repro")
    XCTAssertEqual(run.code, 0, run.stderr)
    let profile = try XCTUnwrap(read("reports/profile.json"))
    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(profile.utf8)) as? [String: Int])
    XCTAssertGreaterThan(json["train_rows"] ?? 0, 0)
    XCTAssertGreaterThan(json["test_rows"] ?? 0, 0)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")

    try write("params.yaml", "split:\n  test_every: 2\n")
    let rerun = try dv("repro")
    XCTAssertTrue(rerun.stdout.contains("Stage 'dedup' didn't change, skipping"), rerun.stdout)
    XCTAssertTrue(rerun.stdout.contains("Running stage 'split'"), rerun.stdout)
  }
}
