import DVBasics
import Foundation
import XCTest

/// The repository's own example pipeline (the README's first command) keeps working.
final class ExamplePipelineTests: DVTestCase {
  func testTheExamplePipelineRunsOnAFreshCopy() throws {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for file in ["stages.yaml", "params.yaml", "data/sample/queries.jsonl", "schemas/queries.yaml"] {
      let text = try XCTUnwrap(try FileSystem.readTextIfPresent(repo + "/" + file), file)
      try write(file, text)
    }
    let run = try dv("repro")
    XCTAssertEqual(run.code, 0, run.stderr)
    // Every plugin had work to do: violations, duplicates, three splits, a profile.
    XCTAssertTrue(run.stderr.contains("rows violate schemas/queries.yaml"), run.stderr)
    let dedup = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(XCTUnwrap(read("reports/dedup.json")).utf8)) as? [String: Any])
    XCTAssertGreaterThan(dedup["duplicates_removed"] as? Int ?? 0, 0)
    for split in ["train", "val", "test"] { XCTAssertTrue(exists("data/splits/\(split).jsonl"), split) }
    let profile = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(XCTUnwrap(read("reports/profile.json")).utf8)) as? [String: Any])
    XCTAssertGreaterThan(profile["rows"] as? Int ?? 0, 0)
    XCTAssertTrue(read("reports/sizes.txt")?.contains("train.jsonl") == true)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertTrue(try dv("metrics", "show").stdout.contains("duplicates_removed: "))
    XCTAssertTrue(try dv("lineage", "show", "reports/profile.json").stdout.contains("produced by stage 'split'"))

    try write("params.yaml", "split:\n  ratios: {train: 0.5, val: 0.25, test: 0.25}\n  stratify: complexity\n")
    let rerun = try dv("repro")
    XCTAssertTrue(rerun.stdout.contains("Stage 'dedup' didn't change, skipping"), rerun.stdout)
    XCTAssertTrue(rerun.stdout.contains("Running stage 'split'"), rerun.stdout)
  }
}
