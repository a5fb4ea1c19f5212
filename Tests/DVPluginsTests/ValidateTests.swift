import DVBasics
import DVPipeline
import Foundation
import XCTest

@testable import DVPlugins

extension TableTestCase {
  /// Loads `stages` as the stages.yaml of a workspace in the test directory, checks the first
  /// stage's configuration and runs it; returns its log lines and its failure message, if any.
  func runFirstStage(_ stages: String) async throws -> (log: [String], failure: String?) {
    try file("stages.yaml", stages)
    try FileSystem.createDirectory(directory + "/.pipeline")
    let pipeline = try PipelineLoader(workspaceRoot: directory).load()!
    let (plugin, config) = try BuiltInPlugins.registry(searchPath: []).resolve(pipeline.stages[0])
    try plugin.validate(config: config)
    let log = Locked<[String]>([])
    let context = StageContext(
      stage: pipeline.stages[0], config: config, workspaceRoot: directory,
      output: { line in log.withLock { $0.append(line) } })
    do {
      try await plugin.run(context)
      return (log.withLock { $0 }, nil)
    } catch let error as StageRunError {
      return (log.withLock { $0 }, error.description)
    }
  }
}

final class ValidateTests: TableTestCase {
  private func stage(input: String, extra: String = "") -> String {
    """
    stages:
      check:
        plugin: validate
        with: {input: \(input), schema: schema.yaml, report: out/report.json\(extra)}
        outs: [out/report.json]
    """
  }

  /// (row, column, rule) of every violation in the report, in report order.
  private func violations(_ report: [String: Any]) -> [String] {
    (report["violations"] as? [[String: Any]] ?? []).map { v in
      "\(v["row"] as? Int ?? 0) \(v["column"] as? String ?? "-") \(v["rule"] as! String)"
    }
  }

  private let schema = """
    columns:
      id: {type: int, unique: true}
      name: {type: string, min_length: 2, max_length: 5, regex: "^[a-z]+$"}
      level: {type: string, allowed: [easy, hard]}
      score: {type: float, min: 0, max: 1, nullable: true}
      ok: {type: bool, required: false}
    """

  func testEveryRowRuleOnCSV() async throws {
    try file("schema.yaml", schema)
    try file(
      "data.csv",
      """
      id,name,level,score,ok
      1,abc,easy,0.5,true
      2,a,hard,,false
      x,abc,easy,0.1,true
      4,ABC,medium,1.5,TRUE
      5,abcdef,easy,-1,maybe
      1,abc,"",0,False
      7,,easy,0,true

      """)
    let (_, failure) = try await runFirstStage(stage(input: "data.csv"))
    let report = try json("out/report.json")
    XCTAssertEqual(
      violations(report),
      [
        "2 name min_length", "3 id type", "4 name regex", "4 level allowed", "4 score max", "5 name max_length",
        "5 score min", "5 ok type", "6 level allowed", "6 id unique", "7 name nullable",
      ])
    XCTAssertEqual(report["rows"] as? Int, 7)
    XCTAssertEqual(report["valid_rows"] as? Int, 1)
    XCTAssertEqual(report["violations_count"] as? Int, 11)
    XCTAssertEqual(report["input"] as? String, "data.csv")
    XCTAssertEqual(report["schema"] as? String, "schema.yaml")
    let byRule = try XCTUnwrap(report["by_rule"] as? [String: Int])
    XCTAssertEqual(byRule["allowed"], 2)
    XCTAssertEqual(byRule["unique"], 1)
    let first = try XCTUnwrap((report["violations"] as? [[String: Any]])?.first)
    XCTAssertEqual(first["line"] as? Int, 3)
    XCTAssertEqual(first["value"] as? String, "a")
    XCTAssertEqual(first["message"] as? String, "'name' is shorter than min_length 2")
    XCTAssertEqual(
      failure,
      "data.csv: 6 rows violate schema.yaml (first: row 2, 'name' is shorter than min_length 2); see out/report.json")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory + "/.pipeline/tmp"), [])
  }

  func testEveryRowRuleOnJSONL() async throws {
    try file("schema.yaml", schema)
    try file(
      "data.jsonl",
      """
      {"id": 1, "name": "abc", "level": "easy", "score": 0.5, "ok": true}
      {"id": "2", "name": "abc", "level": "hard", "score": null}
      {"id": 3, "name": 12, "level": "easy", "score": 1, "ok": "true"}
      {"id": 4.5, "name": "abc", "level": "easy", "score": {"a": 1}}
      {"id": 5, "level": "easy", "score": 0}
      {"id": null, "name": "ab", "level": "easy", "score": 0}
      {"id": 3, "name": "ab", "level": "easy", "score": 0}
      """)
    let (_, failure) = try await runFirstStage(stage(input: "data.jsonl"))
    let report = try json("out/report.json")
    XCTAssertEqual(
      violations(report),
      [
        "2 id type", "3 name type", "3 ok type", "4 id type", "4 score type", "5 name required", "6 id nullable",
        "7 id unique",
      ])
    XCTAssertEqual(report["valid_rows"] as? Int, 1)
    XCTAssertEqual(
      failure?.hasPrefix("data.jsonl: 6 rows violate schema.yaml (first: row 2, 'id' is not an int)"), true,
      failure ?? "")
  }

  func testMissingAndExtraColumnsAreFileViolations() async throws {
    try file("schema.yaml", "columns:\n  id: int\n  name: string\n  note: {required: false}\nstrict: true\n")
    try file("data.csv", "id,extra\n1,x\n2,y\n")
    let (_, failure) = try await runFirstStage(stage(input: "data.csv"))
    let report = try json("out/report.json")
    XCTAssertEqual(violations(report), ["0 name required", "0 extra strict"])
    let first = try XCTUnwrap((report["violations"] as? [[String: Any]])?.first)
    XCTAssertTrue(first["row"] is NSNull)
    XCTAssertEqual(report["valid_rows"] as? Int, 2)
    XCTAssertEqual(
      failure, "data.csv violates schema.yaml (first: column 'name' is missing from the header); see out/report.json")
  }

  func testStrictJSONLRejectsUnknownKeys() async throws {
    try file("schema.yaml", "columns:\n  id: int\nstrict: true\n")
    try file("data.jsonl", "{\"id\": 1}\n{\"id\": 2, \"x\": null}\n{\"id\": 3}\n")
    _ = try await runFirstStage(stage(input: "data.jsonl"))
    XCTAssertEqual(violations(try json("out/report.json")), ["2 x strict"])
  }

  func testRowCountBounds() async throws {
    try file("schema.yaml", "columns:\n  id: int\nrows: {min: 3, max: 10}\n")
    try file("data.csv", "id\n1\n2\n")
    let (_, failure) = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(violations(try json("out/report.json")), ["0 - rows"])
    XCTAssertEqual(failure?.contains("has 2 rows, fewer than the minimum 3"), true)
    try file("schema.yaml", "columns:\n  id: int\nrows: {max: 1}\n")
    let (_, tooMany) = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(tooMany?.contains("has 2 rows, more than the maximum 1"), true)
  }

  func testUniqueComparesNumbersByValueAndIgnoresNulls() async throws {
    try file("schema.yaml", "columns:\n  x: {type: float, unique: true, nullable: true}\n  s: {unique: true}\n")
    try file("data.csv", "x,s\n1,a\n1.0,b\n,c\n,d\n2,a\n2.5,\"a \"\n")
    _ = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(violations(try json("out/report.json")), ["2 x unique", "5 s unique"])
  }

  func testWarnLogsAndSucceeds() async throws {
    try file("schema.yaml", "columns:\n  id: {type: int, max: 10}\n")
    try file("data.csv", "id\n5\n50\n")
    let (log, failure) = try await runFirstStage(stage(input: "data.csv", extra: ", on_error: warn"))
    XCTAssertNil(failure)
    XCTAssertTrue(
      log.contains(
        "warning: data.csv: 1 row violates schema.yaml (first: row 2, 'id' is above max 10); see out/report.json"),
      "\(log)")
    XCTAssertEqual(try json("out/report.json")["violations_count"] as? Int, 1)
  }

  func testCleanInputGzipAndTheMetricsConvention() async throws {
    try file("schema.yaml", schema)
    try file("data.jsonl.gz", "{\"id\": 1, \"name\": \"ab\", \"level\": \"easy\", \"score\": null}\n")
    let (log, failure) = try await runFirstStage(
      """
      stages:
        check:
          plugin: validate
          with: {input: data.jsonl.gz, schema: schema.yaml}
          metrics: [out/validation.json]
      """)
    XCTAssertNil(failure)
    XCTAssertEqual(log, ["data.jsonl.gz: 1 row checked against schema.yaml, 0 violations"])
    let report = try json("out/validation.json")
    XCTAssertEqual(report["valid_rows"] as? Int, 1)
    XCTAssertEqual((report["violations"] as? [Any])?.count, 0)
  }

  func testMalformedInputNamesFileAndLine() async throws {
    try file("schema.yaml", "columns:\n  id: int\n")
    try file("data.jsonl", "{\"id\": 1}\n{\"id\": 2\n")
    let (_, failure) = try await runFirstStage(stage(input: "data.jsonl"))
    XCTAssertEqual(failure?.hasPrefix("data.jsonl:2: "), true, failure ?? "")
    try file("data.csv", "id\n1\n\"2\n")
    let (_, csvFailure) = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(csvFailure?.hasPrefix("data.csv:3: "), true, csvFailure ?? "")
  }

  func testSchemaProblemsAtRunTime() async throws {
    try file("data.csv", "id\n1\n")
    let (_, missing) = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(missing, "schema.yaml: no such schema file; create it or fix the 'schema' option")
    try file("schema.yaml", "columns:\n  id: {type: number}\n")
    let (_, bad) = try await runFirstStage(stage(input: "data.csv"))
    XCTAssertEqual(bad?.hasPrefix("schema.yaml:2:14: unknown type 'number'"), true, bad ?? "")
  }

  func testBadOptionsNameTheirPlace() async throws {
    try file("schema.yaml", "columns:\n  id: int\n")
    for (with, expected) in [
      ("{input: data.csv, schema: schema.yaml, on_error: maybe}", "stages.yaml:4:60: option 'on_error'"),
      ("{input: data.csv}", "stages.yaml:4:11: plugin 'validate' needs option 'schema'"),
      ("{input: data.txt, schema: schema.yaml}", "stages.yaml:4:19: 'data.txt' is not a table file"),
      ("{input: data.csv, schema: /etc/x.yaml}", "stages.yaml:4:37: '/etc/x.yaml' is absolute"),
      ("{input: data.csv, schema: schema.yaml, sample: 3}", "stages.yaml:4:58: unknown option 'sample'"),
    ] {
      do {
        _ = try await runFirstStage("stages:\n  check:\n    plugin: validate\n    with: \(with)\n")
        XCTFail("accepted \(with)")
      } catch let error as FileFormatError {
        XCTAssertTrue(error.description.hasPrefix(expected), "\(error)")
      }
    }
  }
}
