import DVBasics
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

final class DedupSplitPluginTests: DVTestCase {
  private let pipeline = """
    stages:
      dedup:
        plugin: dedup
        with: {input: data/raw/queries.jsonl, keys: [question, sql], output: data/clean/queries.jsonl}
        deps: [data/raw/queries.jsonl]
        outs: [data/clean/queries.jsonl]
        metrics: [reports/dedup.json]
      split:
        plugin: split
        with: {input: data/clean/queries.jsonl, ratios: {train: 0.8, val: 0.1, test: 0.1}, key: id, stratify: complexity, outdir: data/splits}
        deps: [data/clean/queries.jsonl]
        outs: [data/splits]
        metrics: [reports/split.json]
    """

  private func queries(_ count: Int) -> String {
    (0..<count).map { i in
      // Every fifth row repeats the question and SQL of the row before it, under a new id.
      let n = i % 5 == 4 ? i - 1 : i
      return "{\"id\": \(i), \"question\": \"how many rows in t\(n)?\", \"sql\": \"SELECT COUNT(*) FROM t\(n)\", "
        + "\"complexity\": \"\(["easy", "medium", "hard"][n % 3])\"}\n"
    }.joined()
  }

  func testDedupThenSplitThroughRepro() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("data/raw/queries.jsonl", queries(1000))
    try write("stages.yaml", pipeline)
    let first = try dv("repro")
    XCTAssertEqual(first.code, 0, first.stderr)
    XCTAssertTrue(first.stderr.contains("dedup: 1000 rows, 200 duplicates removed"), first.stderr)

    let clean = try XCTUnwrap(read("data/clean/queries.jsonl")).split(separator: "\n")
    XCTAssertEqual(clean.count, 800)
    XCTAssertFalse(clean.contains { $0.contains("\"id\": 4,") }, "row 4 repeats row 3")
    var total = 0
    for part in ["train", "val", "test"] {
      total += try XCTUnwrap(read("data/splits/\(part).jsonl")).split(separator: "\n").count
    }
    XCTAssertEqual(total, 800)
    let dedupReport = try XCTUnwrap(read("reports/dedup.json"))
    XCTAssertTrue(dedupReport.contains("\"duplicates_removed\": 200"), dedupReport)
    let splitReport = try XCTUnwrap(read("reports/split.json"))
    XCTAssertTrue(splitReport.contains("\"stratify\": \"complexity\""), splitReport)
    XCTAssertTrue(try dv("metrics", "show").stdout.contains("output_rows: 800"))

    let again = try dv("repro")
    XCTAssertEqual(again.code, 0)
    XCTAssertEqual(again.stdout, "Stage 'dedup' didn't change, skipping\nStage 'split' didn't change, skipping\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testBadOptionIsExitTwoWithItsLocation() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("data/raw/queries.jsonl", queries(10))
    try write("stages.yaml", pipeline.replacingOccurrences(of: "test: 0.1", with: "test: 0.2"))
    assertFails(try dv("repro"), code: 2, "stages.yaml:10:53: the ratios add up to 1.1; they must add up to 1")
    try write("stages.yaml", pipeline.replacingOccurrences(of: "keys:", with: "kees:"))
    assertFails(try dv("repro"), code: 2, "stages.yaml:4:49: unknown option 'kees' for plugin 'dedup'")
  }

  func testBadInputFailsTheStageWithTheLine() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("data/raw/queries.jsonl", queries(3) + "{\"id\": 3, \"question\": oops}\n")
    try write("stages.yaml", pipeline)
    let result = try dv("repro")
    XCTAssertEqual(result.code, 1)
    XCTAssertTrue(
      result.stderr.contains(
        "stage 'dedup' failed: data/raw/queries.jsonl:4: invalid JSON at column 23: expected a value"),
      result.stderr)
    XCTAssertFalse(exists("data/clean/queries.jsonl"))
  }

  /// About 250 MB through dedup and split: the peak RSS of `dv` stays far below the input size.
  func testLargeInputRunsInBoundedMemory() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", pipeline)
    try FileSystem.createDirectory(root + "/data/raw")
    let fd = open(root + "/data/raw/queries.jsonl", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    XCTAssertGreaterThanOrEqual(fd, 0)
    var written = 0
    var row = 0
    let padding = String(repeating: "x", count: 60)
    while written < 250 << 20 {
      var chunk = ""
      chunk.reserveCapacity(4 << 20)
      while chunk.utf8.count < 4 << 20 {
        // One row in eight repeats an earlier question and SQL.
        let n = row % 8 == 7 ? row / 2 : row
        chunk +=
          "{\"id\": \(row), \"question\": \"q\(n) \(padding)\", \"sql\": \"SELECT \(n)\", \"complexity\": \"c\(n % 4)\"}\n"
        row += 1
      }
      try Array(chunk.utf8).withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: "queries.jsonl") }
      written += chunk.utf8.count
    }
    close(fd)
    let result = try dv("repro", timeout: 600)
    XCTAssertEqual(result.code, 0, result.stderr)
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    let peakMegabytes = usage.ru_maxrss / 1024
    XCTAssertLessThan(peakMegabytes, 200, "peak RSS of dv: \(peakMegabytes) MB")
    XCTAssertTrue(result.stderr.contains("dedup: \(row) rows"), result.stderr)
  }
}
