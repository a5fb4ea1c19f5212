import DVBasics
import DVPipeline
import Foundation
import XCTest

@testable import DVPlugins

final class SplitTests: TableTestCase {
  private func split(_ with: String, metrics: Bool = true) -> String {
    "stages:\n  split:\n    plugin: split\n    with: {\(with)}\n"
      + (metrics ? "    metrics: [reports/split.json]\n" : "")
  }

  private func jsonl(ids: Range<Int>, extra: (Int) -> String = { _ in "" }) -> String {
    ids.map { "{\"id\": \($0), \"text\": \"row \($0)\"\(extra($0))}\n" }.joined()
  }

  /// The ids in each output file of `outdir`.
  private func ids(_ outdir: String, _ parts: [String], ext: String = ".jsonl") throws -> [String: Set<Int>] {
    var result: [String: Set<Int>] = [:]
    for part in parts {
      let path = directory + "/" + outdir + "/" + part + ext
      let reader = try TableReader(path: path, displayName: part)
      var ids = Set<Int>()
      while try reader.next() { ids.insert(Int(try XCTUnwrap(reader.field(reader.columnIndex("id")!).integer()))) }
      result[part] = ids
    }
    return result
  }

  func testJSONLSplitByKeyInTheRatios() async throws {
    try file("in.jsonl", jsonl(ids: 0..<2000))
    let failure = try await runStage(
      split("input: in.jsonl, outdir: data/splits, ratios: {train: 0.8, val: 0.1, test: 0.1}, key: id"), "split")
    XCTAssertNil(failure)
    let parts = try ids("data/splits", ["train", "val", "test"])
    XCTAssertEqual(parts.values.map(\.count).reduce(0, +), 2000)
    XCTAssertEqual(parts["train"]!.union(parts["val"]!).union(parts["test"]!).count, 2000)
    // Hash placement is binomial: within 5 standard deviations of the ratio.
    XCTAssertEqual(Double(parts["train"]!.count), 1600, accuracy: 90)
    XCTAssertEqual(Double(parts["val"]!.count), 200, accuracy: 70)
    let report = try json("reports/split.json")
    XCTAssertEqual(report["input_rows"] as? Int, 2000)
    XCTAssertEqual(report["key"] as? String, "id")
    XCTAssertTrue(report["stratify"] is NSNull)
    let splits = try XCTUnwrap(report["splits"] as? [String: [String: Any]])
    XCTAssertEqual(splits["val"]?["rows"] as? Int, parts["val"]!.count)
    XCTAssertEqual(splits["val"]?["fraction"] as? Double ?? 0, Double(parts["val"]!.count) / 2000, accuracy: 1e-12)
  }

  func testAppendingRowsNeverMovesExistingRowsAndRunsAreDeterministic() async throws {
    let yaml = split("input: in.jsonl, outdir: out, ratios: {train: 0.7, test: 0.3}, key: id, seed: s1")
    try file("in.jsonl", jsonl(ids: 0..<500))
    let first = try await runStage(yaml, "split")
    XCTAssertNil(first)
    let before = try ids("out", ["train", "test"])
    let bytes = try contents(directory + "/out/train.jsonl")
    let again = try await runStage(yaml, "split")
    XCTAssertNil(again)
    XCTAssertEqual(try contents(directory + "/out/train.jsonl"), bytes)
    try file("in.jsonl", jsonl(ids: 0..<1000))
    let grown = try await runStage(yaml, "split")
    XCTAssertNil(grown)
    let after = try ids("out", ["train", "test"])
    XCTAssertTrue(before["train"]!.isSubset(of: after["train"]!))
    XCTAssertTrue(before["test"]!.isSubset(of: after["test"]!))
    let reseeded = try await runStage(
      split("input: in.jsonl, outdir: out, ratios: {train: 0.7, test: 0.3}, key: id, seed: s2"), "split")
    XCTAssertNil(reseeded)
    XCTAssertNotEqual(try ids("out", ["train", "test"])["train"], after["train"])
  }

  func testCSVGzipSplitKeepsHeaderAndExtensions() async throws {
    try file("in.csv.gz", "id,label\n" + (0..<300).map { "\($0),\"l,\($0 % 3)\"\n" }.joined())
    let failure = try await runStage(
      split("input: in.csv.gz, outdir: parts, ratios: {a: 0.5, b: 0.5}", metrics: false), "split")
    XCTAssertNil(failure)
    let a = try contents(directory + "/parts/a.csv.gz")
    let b = try contents(directory + "/parts/b.csv.gz")
    XCTAssertTrue(a.hasPrefix("id,label\n") && b.hasPrefix("id,label\n"))
    XCTAssertEqual(a.split(separator: "\n").count + b.split(separator: "\n").count, 302)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: directory + "/parts").sorted(), ["a.csv.gz", "b.csv.gz"])
  }

  func testStratifiedSplitKeepsProportionsInEveryStratum() async throws {
    let sizes = ["big": 3000, "small": 50, "tiny": 7]
    var text = ""
    var id = 0
    for (name, count) in sizes.sorted(by: { $0.key < $1.key }) {
      for _ in 0..<count {
        text += "{\"id\": \(id), \"complexity\": \"\(name)\"}\n"
        id += 1
      }
    }
    try file("in.jsonl", text)
    let failure = try await runStage(
      split("input: in.jsonl, outdir: s, ratios: {train: 0.8, test: 0.2}, key: id, stratify: complexity"), "split")
    XCTAssertNil(failure)
    let report = try json("reports/split.json")
    XCTAssertEqual(report["strata_count"] as? Int, 3)
    let strata = try XCTUnwrap(report["strata"] as? [String: [String: Int]])
    for (name, count) in sizes {
      let train = try XCTUnwrap(strata[name]?["train"])
      XCTAssertEqual(train + (strata[name]?["test"] ?? 0), count)
      // Boundaries fall between slices of 1/1024: off by at most the rows of one slice.
      XCTAssertEqual(Double(train), Double(count) * 0.8, accuracy: max(1, Double(count) / 1024 * 4), name)
    }
  }

  func testTooManyStrataIsAFailure() async throws {
    try file("in.csv", "id\n" + (0...10_000).map { "\($0)\n" }.joined())
    let failure = try await runStage(
      split("input: in.csv, outdir: s, ratios: {a: 0.5, b: 0.5}, stratify: id", metrics: false), "split")
    XCTAssertEqual(
      failure, "in.csv:10002: column 'id' has more than 10000 distinct values; stratify by a column with fewer")
    XCTAssertFalse(FileSystem.exists(directory + "/s/a.csv"))
  }

  func testMissingKeyColumnIsAFailure() async throws {
    try file("in.csv", "id\n1\n")
    let failure = try await runStage(
      split("input: in.csv, outdir: s, ratios: {a: 1}, key: uid", metrics: false), "split")
    XCTAssertEqual(failure, "in.csv:1: no column 'uid' in the header (columns: id); fix 'key' of stage 'split'")
  }

  func testRatioErrorsPointAtTheRatios() {
    XCTAssertEqual(
      configurationError(split("input: in.csv, outdir: s, ratios: {a: 0.5, b: 0.4}"), "split"),
      "stages.yaml:4:46: the ratios add up to 0.9; they must add up to 1")
    XCTAssertEqual(
      configurationError(split("input: in.csv, outdir: s, ratios: {a: 0, b: 1}"), "split"),
      "stages.yaml:4:50: ratio 'a' is 0.0; each ratio must be in (0, 1]")
    XCTAssertEqual(
      configurationError(split("input: in.csv, outdir: s, ratios: {a: 1.5, b: -0.5}"), "split"),
      "stages.yaml:4:50: ratio 'a' is 1.5; each ratio must be in (0, 1]")
    XCTAssertEqual(
      configurationError(split("input: in.csv, outdir: s, ratios: {a: x}"), "split"),
      "stages.yaml:4:50: 'ratios.a' of plugin 'split' must be a number")
    XCTAssertEqual(
      configurationError(split("input: in.csv, outdir: s, ratios: {../a: 1}"), "split"),
      "stages.yaml:4:53: '../a' cannot name a file; use a plain name like 'train'")
    XCTAssertEqual(
      configurationError(split("input: in.csv, ratios: {a: 1}"), "split"),
      "stages.yaml:4:11: plugin 'split' needs option 'outdir' (a string)")
  }

  func testRowsWithoutTheKeyAreCountedInTheLog() async throws {
    try file("in.jsonl", "{\"id\": 1}\n{\"id\": null}\n{\"other\": 3}\n")
    let failure = try await runStage(split("input: in.jsonl, outdir: s, ratios: {a: 0.5, b: 0.5}, key: id"), "split")
    XCTAssertNil(failure)
    XCTAssertEqual(
      logged.withLock { $0 }.last,
      "split: warning: 2 rows have no value for 'id' (missing or null); they all go to the same part")
  }
}
