import DVBasics
import DVPipeline
import Foundation
import XCTest

@testable import DVPlugins

final class ProfileTests: TableTestCase {
  private func profile(_ input: String, _ extra: String = "") async throws -> [String: Any] {
    let (_, failure) = try await runFirstStage(
      """
      stages:
        profile:
          plugin: profile
          with: {input: \(input), output: out/profile.json\(extra)}
          metrics: [out/profile.json]
      """)
    XCTAssertNil(failure)
    return try json("out/profile.json")
  }

  private func column(_ report: [String: Any], _ name: String) throws -> [String: Any] {
    try XCTUnwrap((report["columns"] as? [String: Any])?[name] as? [String: Any], name)
  }

  func testNumbersStringsAndNullsInCSV() async throws {
    try file(
      "data.csv",
      """
      id,score,city,empty,code
      1,0.5,Paris,,7
      2,1.5,Oslo,,42
      3,,Paris,,x
      4,2.5,Zürich,,1234
      5,3.5,,,

      """)
    let report = try await profile("data.csv")
    XCTAssertEqual(report["rows"] as? Int, 5)
    XCTAssertEqual(report["input"] as? String, "data.csv")
    let id = try column(report, "id")
    XCTAssertEqual(id["type"] as? String, "int")
    XCTAssertEqual(id["count"] as? Int, 5)
    XCTAssertEqual(id["nulls"] as? Int, 0)
    XCTAssertEqual(id["distinct"] as? Int, 5)
    XCTAssertEqual(id["distinct_approximate"] as? Bool, false)
    XCTAssertEqual(id["min"] as? Double, 1)
    XCTAssertEqual(id["max"] as? Double, 5)
    XCTAssertEqual(id["mean"] as? Double, 3)
    XCTAssertEqual(try XCTUnwrap(id["std"] as? Double), 1.5811, accuracy: 1e-4)
    let percentiles = try XCTUnwrap(id["percentiles"] as? [String: Double])
    XCTAssertEqual(percentiles, ["p25": 2, "p50": 3, "p75": 4, "p90": 4.6, "p99": 4.96])
    XCTAssertEqual(id["percentiles_approximate"] as? Bool, false)
    let score = try column(report, "score")
    XCTAssertEqual(score["type"] as? String, "float")
    XCTAssertEqual(score["count"] as? Int, 4)
    XCTAssertEqual(score["nulls"] as? Int, 1)
    XCTAssertEqual(score["mean"] as? Double, 2)
    let city = try column(report, "city")
    XCTAssertEqual(city["type"] as? String, "string")
    XCTAssertEqual(city["count"] as? Int, 4)
    XCTAssertEqual(city["distinct"] as? Int, 3)
    XCTAssertNil(city["mean"])
    XCTAssertEqual(city["length"] as? [String: Double], ["min": 4, "max": 6, "mean": 5])
    let top = try XCTUnwrap(city["top"] as? [[String: Any]])
    XCTAssertEqual(top.map { $0["value"] as? String }, ["Paris", "Oslo", "Zürich"])
    XCTAssertEqual(top.map { $0["count"] as? Int }, [2, 1, 1])
    XCTAssertEqual(city["top_approximate"] as? Bool, false)
    // Numbers first, then text: a text column whose lengths count every value.
    let code = try column(report, "code")
    XCTAssertEqual(code["type"] as? String, "string")
    XCTAssertNil(code["mean"])
    XCTAssertEqual(code["length"] as? [String: Double], ["min": 1, "max": 4, "mean": 2])
    let empty = try column(report, "empty")
    XCTAssertEqual(empty["type"] as? String, "null")
    XCTAssertEqual(empty["nulls"] as? Int, 5)
    XCTAssertEqual(empty["distinct"] as? Int, 0)
  }

  func testJSONLTypesAndKeysThatAppearLate() async throws {
    try file(
      "data.jsonl",
      """
      {"n": 1, "s": "a", "b": true, "o": {"x": 1}, "m": 1}
      {"n": 2.5, "s": "bb", "b": false, "o": [1], "m": "one"}
      {"n": null, "s": "a", "b": true, "late": 7}
      """)
    let report = try await profile("data.jsonl")
    XCTAssertEqual(try column(report, "n")["type"] as? String, "float")
    XCTAssertEqual(try column(report, "n")["nulls"] as? Int, 1)
    XCTAssertEqual(try column(report, "s")["type"] as? String, "string")
    let b = try column(report, "b")
    XCTAssertEqual(b["type"] as? String, "bool")
    XCTAssertEqual(b["true"] as? Int, 2)
    XCTAssertEqual(b["false"] as? Int, 1)
    XCTAssertEqual(try column(report, "o")["type"] as? String, "nested")
    XCTAssertEqual(try column(report, "o")["nulls"] as? Int, 1)
    XCTAssertEqual(try column(report, "m")["type"] as? String, "mixed")
    let late = try column(report, "late")
    XCTAssertEqual(late["type"] as? String, "int")
    XCTAssertEqual(late["count"] as? Int, 1)
    XCTAssertEqual(late["nulls"] as? Int, 2)
  }

  func testDistinctAndTopBecomeApproximateAboveTheirLimits() async throws {
    var text = "key,hot\n"
    for i in 0..<20_000 { text += "k\(i),\(i % 4 == 0 ? "yes" : "n\(i)")\n" }
    try file("data.csv", text)
    let report = try await profile("data.csv", ", distinct_exact_limit: 1000, top: 2")
    let key = try column(report, "key")
    XCTAssertEqual(key["distinct_approximate"] as? Bool, true)
    XCTAssertEqual(Double(try XCTUnwrap(key["distinct"] as? Int)), 20_000, accuracy: 500)
    let hot = try column(report, "hot")
    XCTAssertEqual(hot["top_approximate"] as? Bool, true)
    let top = try XCTUnwrap(hot["top"] as? [[String: Any]])
    XCTAssertEqual(top.count, 2)
    XCTAssertEqual(top[0]["value"] as? String, "yes")
    // Misra-Gries under-counts by at most rows / (counters + 1).
    XCTAssertEqual(Double(try XCTUnwrap(top[0]["count"] as? Int)), 5000, accuracy: 20)
  }

  func testPercentilesAndColumnsOptions() async throws {
    try file("data.csv", "a,b,c\n" + (1...101).map { "\($0),x,y" }.joined(separator: "\n") + "\n")
    let report = try await profile("data.csv", ", columns: [c, a], percentiles: [0, 0.5, 0.999, 1], top: 0")
    XCTAssertEqual((report["columns"] as? [String: Any])?.keys.sorted(), ["a", "c"])
    let a = try column(report, "a")
    XCTAssertEqual(a["percentiles"] as? [String: Double], ["p0": 1, "p50": 51, "p99_9": 100.9, "p100": 101])
    XCTAssertNil(a["top"])
  }

  func testGzipInput() async throws {
    try file("data.jsonl.gz", "{\"v\": 3}\n{\"v\": 5}\n")
    let report = try await profile("data.jsonl.gz")
    XCTAssertEqual(try column(report, "v")["mean"] as? Double, 4)
  }

  func testUnknownColumnAndMissingOutput() async throws {
    try file("data.csv", "a\n1\n")
    let (_, failure) = try await runFirstStage(
      "stages:\n  p:\n    plugin: profile\n    with: {input: data.csv, output: p.json, columns: [b]}\n")
    XCTAssertEqual(failure, "data.csv: no column 'b' (it has: a); fix the 'columns' option")
    try file("data.jsonl", "{\"a\": 1}\n")
    let (_, jsonFailure) = try await runFirstStage(
      "stages:\n  p:\n    plugin: profile\n    with: {input: data.jsonl, output: p.json, columns: [b]}\n")
    XCTAssertEqual(jsonFailure, "data.jsonl: no row has the key 'b'; fix the 'columns' option")
    let (_, noOutput) = try await runFirstStage("stages:\n  p:\n    plugin: profile\n    with: {input: data.csv}\n")
    XCTAssertEqual(noOutput, "stage 'p': profile needs an 'output' option or exactly one 'metrics:' output")
  }

  func testBadOptionsNameTheirPlace() async throws {
    for (with, expected) in [
      ("{input: d.csv, percentiles: [0.5, 2]}", "stages.yaml:4:45: each entry of 'percentiles'"),
      ("{input: d.csv, percentiles: 0.5}", "stages.yaml:4:39: option 'percentiles' of plugin 'profile' must be a list"),
      ("{input: d.csv, top: -1}", "stages.yaml:4:31: option 'top' of plugin 'profile' must be 0 or more"),
      ("{input: d.csv, top: many}", "stages.yaml:4:31: option 'top' of plugin 'profile' must be an integer"),
      ("{output: p.json}", "stages.yaml:4:11: plugin 'profile' needs option 'input'"),
    ] {
      do {
        _ = try await runFirstStage("stages:\n  check:\n    plugin: profile\n    with: \(with)\n")
        XCTFail("accepted \(with)")
      } catch let error as FileFormatError {
        XCTAssertTrue(error.description.hasPrefix(expected), "\(error)")
      }
    }
  }
}
