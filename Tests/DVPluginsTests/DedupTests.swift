import DVBasics
import DVPipeline
import Foundation
import XCTest

@testable import DVPlugins

final class DedupTests: TableTestCase {
  private func dedup(_ with: String, metrics: Bool = true) -> String {
    "stages:\n  dedup:\n    plugin: dedup\n    with: {\(with)}\n"
      + (metrics ? "    metrics: [reports/dedup.json]\n" : "")
  }

  func testJSONLWholeRecordsCompareValuesNotSpelling() async throws {
    try file(
      "in.jsonl",
      """
      {"a": 1, "b": "x"}
      {"b":"x","a":1}
      {"a": 1, "b": "\\u0078"}
      {"a": 1, "b": "x", "c": null}
      {"a": "1", "b": "x"}

      {"a": 2}
      {"a": 1, "b": "x"}
      """ + "\n")
    let failure = try await runStage(dedup("input: in.jsonl, output: out/clean.jsonl"), "dedup")
    XCTAssertNil(failure)
    XCTAssertEqual(
      try contents(directory + "/out/clean.jsonl"),
      "{\"a\": 1, \"b\": \"x\"}\n{\"a\": 1, \"b\": \"x\", \"c\": null}\n{\"a\": \"1\", \"b\": \"x\"}\n{\"a\": 2}\n")
    let report = try json("reports/dedup.json")
    XCTAssertEqual(report["input_rows"] as? Int, 7)
    XCTAssertEqual(report["output_rows"] as? Int, 4)
    XCTAssertEqual(report["duplicates_removed"] as? Int, 3)
    XCTAssertTrue(report["keys"] is NSNull)
  }

  func testCSVKeysTrimAndIgnoreCase() async throws {
    try file(
      "in.csv",
      "id,question,sql\r\n1,What?,SELECT 1\r\n2,\" what? \",select 1\r\n3,What?,SELECT 2\r\n4,\"What?\",SELECT 1\r\n")
    let plain = try await runStage(dedup("input: in.csv, output: plain.csv, keys: [question, sql]"), "dedup")
    XCTAssertNil(plain)
    XCTAssertEqual(
      try contents(directory + "/plain.csv"),
      "id,question,sql\n1,What?,SELECT 1\n2,\" what? \",select 1\n3,What?,SELECT 2\n")
    let folded = try await runStage(
      dedup("input: in.csv, output: folded.csv.gz, keys: [question, sql], trim: true, ignore_case: true"), "dedup")
    XCTAssertNil(folded)
    XCTAssertEqual(try contents(directory + "/folded.csv.gz"), "id,question,sql\n1,What?,SELECT 1\n3,What?,SELECT 2\n")
    let report = try json("reports/dedup.json")
    XCTAssertEqual(report["keys"] as? [String], ["question", "sql"])
    XCTAssertEqual(report["duplicates_removed"] as? Int, 2)
  }

  func testUnicodeCaseFolding() async throws {
    try file("in.jsonl", "{\"q\": \"ÉTÉ\"}\n{\"q\": \"été\"}\n{\"q\": \"Ete\"}\n")
    let failure = try await runStage(dedup("input: in.jsonl, output: out.jsonl, keys: q, ignore_case: true"), "dedup")
    XCTAssertNil(failure)
    XCTAssertEqual(try contents(directory + "/out.jsonl"), "{\"q\": \"ÉTÉ\"}\n{\"q\": \"Ete\"}\n")
  }

  func testMissingKeyAndNullAreDistinct() async throws {
    try file(
      "in.jsonl",
      "{\"id\": 1, \"k\": null}\n{\"id\": 2}\n{\"id\": 3, \"k\": null}\n{\"id\": 4}\n{\"id\": 5, \"k\": \"null\"}\n")
    let failure = try await runStage(dedup("input: in.jsonl, output: out.jsonl.gz, keys: [k]"), "dedup")
    XCTAssertNil(failure)
    XCTAssertEqual(
      try contents(directory + "/out.jsonl.gz"), "{\"id\": 1, \"k\": null}\n{\"id\": 2}\n{\"id\": 5, \"k\": \"null\"}\n"
    )
  }

  func testGzipInput() async throws {
    try file("in.csv.gz", "a,b\n1,2\n1,2\n3,4\n")
    let failure = try await runStage(dedup("input: in.csv.gz, output: out.csv", metrics: false), "dedup")
    XCTAssertNil(failure)
    XCTAssertEqual(try contents(directory + "/out.csv"), "a,b\n1,2\n3,4\n")
    XCTAssertFalse(FileSystem.exists(directory + "/reports"), "no metrics output, no report option: no report")
  }

  func testExplicitReportOption() async throws {
    try file("in.csv", "a\n1\n1\n")
    let failure = try await runStage(dedup("input: in.csv, output: out.csv, report: r/d.json", metrics: false), "dedup")
    XCTAssertNil(failure)
    XCTAssertEqual(try json("r/d.json")["output_rows"] as? Int, 1)
  }

  func testMissingCSVColumnNamesInputAndColumn() async throws {
    try file("in.csv", "a,b\n1,2\n")
    let failure = try await runStage(dedup("input: in.csv, output: out.csv, keys: [a, c]"), "dedup")
    XCTAssertEqual(failure, "in.csv:1: no column 'c' in the header (columns: a, b); fix 'keys' of stage 'dedup'")
    XCTAssertFalse(FileSystem.exists(directory + "/out.csv"))
  }

  func testKeyThatNoJSONLRowHasIsAFailure() async throws {
    try file("in.jsonl", "{\"a\": 1}\n")
    let failure = try await runStage(dedup("input: in.jsonl, output: out.jsonl, keys: [qestion]"), "dedup")
    XCTAssertEqual(failure, "in.jsonl: no row has the key 'qestion'; fix 'keys' of stage 'dedup'")
  }

  func testMalformedInputFailsWithTheLineAndLeavesNoOutput() async throws {
    try file("in.jsonl", "{\"a\": 1}\n{\"a\": 1\n")
    let failure = try await runStage(dedup("input: in.jsonl, output: out.jsonl"), "dedup")
    XCTAssertEqual(
      failure, "in.jsonl:2: invalid JSON at column 8: unterminated object; each line must be one JSON object")
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), [".pipeline", "in.jsonl", "stages.yaml"])
  }

  func testConfigurationErrorsNameTheOption() {
    XCTAssertEqual(
      configurationError(dedup("input: in.csv, output: out.jsonl"), "dedup"),
      "stages.yaml:4:35: the output must have the input's format ('in.csv'); only '.gz' may differ")
    XCTAssertEqual(
      configurationError(dedup("input: in.txt, output: out.csv"), "dedup"),
      "stages.yaml:4:19: 'in.txt' is not a table file; name it with one of .csv, .jsonl, .ndjson (each optionally .gz)")
    XCTAssertEqual(
      configurationError(dedup("input: in.csv, output: out.csv, keys: [a, a]"), "dedup"),
      "stages.yaml:4:54: key 'a' is listed twice")
    XCTAssertEqual(
      configurationError(dedup("input: in.csv, output: out.csv, trim: maybe"), "dedup"),
      "stages.yaml:4:50: option 'trim' of plugin 'dedup' must be true or false")
    XCTAssertEqual(
      configurationError(dedup("output: out.csv"), "dedup"),
      "stages.yaml:4:11: plugin 'dedup' needs option 'input' (a string)")
  }

  func testReportFormat() {
    let report: JSONValue = ["b": [1, 2.5, "x", nil], "a": ["nested": true], "e": [:], "n": .number(.nan)]
    XCTAssertEqual(
      report.prettyPrinted,
      """
      {
        "a": {
          "nested": true
        },
        "b": [
          1,
          2.5,
          "x",
          null
        ],
        "e": {},
        "n": null
      }

      """)
  }
}
