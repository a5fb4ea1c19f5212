import DVBasics
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The `validate` and `profile` built-in plugins, run by `dv repro` as a user runs them.
final class ValidateProfilePluginTests: DVTestCase {
  private let stages = """
    stages:
      validate:
        plugin: validate
        with: {input: data/raw/queries.jsonl, schema: schemas/queries.yaml, report: reports/validation.json}
        deps: [data/raw/queries.jsonl, schemas/queries.yaml]
        outs: [reports/validation.json]
      profile:
        plugin: profile
        with: {input: data/raw/queries.jsonl, output: reports/profile.json}
        deps: [data/raw/queries.jsonl]
        metrics: [reports/profile.json]
    """

  private let schema = """
    columns:
      id: {type: int, unique: true}
      question: {type: string, min_length: 5}
      complexity: {type: string, allowed: [easy, medium, hard]}
      age: {type: int, min: 0, max: 120, nullable: true}
      sql: {type: string, regex: "^SELECT "}
    rows: {min: 1}
    """

  private func writeQueries(badAgeAtRow: Int? = nil) throws {
    var lines: [String] = []
    for i in 1...6 {
      let age = i == badAgeAtRow ? "130" : i % 3 == 0 ? "null" : String(20 + i)
      let complexity = ["easy", "medium", "hard"][i % 3]
      lines.append(
        "{\"id\": \(i), \"question\": \"question \(i)?\", \"complexity\": \"\(complexity)\", \"age\": \(age), "
          + "\"sql\": \"SELECT \(i)\"}")
    }
    try write("data/raw/queries.jsonl", lines.joined(separator: "\n") + "\n")
  }

  private func report(_ path: String) throws -> [String: Any] {
    let text = try XCTUnwrap(read(path), "\(path) is missing")
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
  }

  func testValidateAndProfileThroughRepro() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", stages)
    try write("schemas/queries.yaml", schema)
    try writeQueries()
    let result = try dv("repro")
    XCTAssertEqual(result.code, 0, result.stderr)
    XCTAssertTrue(
      result.stderr.contains("data/raw/queries.jsonl: 6 rows checked against schemas/queries.yaml, 0 violations"))
    let validation = try report("reports/validation.json")
    XCTAssertEqual(validation["rows"] as? Int, 6)
    XCTAssertEqual(validation["valid_rows"] as? Int, 6)
    XCTAssertEqual(validation["violations_count"] as? Int, 0)
    let profile = try report("reports/profile.json")
    XCTAssertEqual(profile["rows"] as? Int, 6)

    let metrics = try dv("metrics", "show")
    XCTAssertEqual(metrics.code, 0, metrics.stderr)
    for line in [
      "reports/profile.json", "    rows: 6", "    columns.id.mean: 3.5", "    columns.age.nulls: 2",
      "    columns.age.max: 25", "    columns.complexity.distinct: 3", "    columns.complexity.type: string",
      "    columns.question.length.min: 11",
    ] {
      XCTAssertTrue(
        metrics.stdout.split(separator: "\n").contains(Substring(line)), "no '\(line)' in:\n\(metrics.stdout)")
    }
    // Nothing changed: nothing runs again.
    XCTAssertFalse(try dv("repro").stdout.contains("Running stage"))
  }

  func testViolationsFailTheStageAfterWritingTheReport() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", stages)
    try write("schemas/queries.yaml", schema)
    try writeQueries(badAgeAtRow: 4)
    let result = try dv("repro", "validate")
    XCTAssertEqual(result.code, 1)
    // dv's closing error names the stage and says what is wrong.
    XCTAssertTrue(
      result.stderr.contains(
        "error: stage 'validate' failed: data/raw/queries.jsonl: 1 row violates schemas/queries.yaml (first: row 4, "
          + "'age' is above max 120); see reports/validation.json"), result.stderr)
    XCTAssertFalse(result.stderr.contains("Fatal error"))
    let violations = try XCTUnwrap(try report("reports/validation.json")["violations"] as? [[String: Any]])
    XCTAssertEqual(violations.count, 1)
    XCTAssertEqual(violations[0]["row"] as? Int, 4)
    XCTAssertEqual(violations[0]["line"] as? Int, 4)
    XCTAssertEqual(violations[0]["value"] as? String, "130")

    // The failed run's report is in no cache: dv would refuse to delete it.
    try FileManager.default.removeItem(atPath: root + "/reports/validation.json")
    try write(
      "stages.yaml",
      stages.replacingOccurrences(
        of: "report: reports/validation.json}", with: "report: reports/validation.json, on_error: warn}"))
    let warned = try dv("repro", "validate")
    XCTAssertEqual(warned.code, 0, warned.stderr)
    XCTAssertTrue(warned.stderr.contains("warning: data/raw/queries.jsonl: 1 row violates"), warned.stderr)
  }

  func testBadOptionIsAUsageErrorWithItsLocation() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write(
      "stages.yaml",
      stages.replacingOccurrences(of: "output: reports/profile.json", with: "output: reports/profile.json, top: lots"))
    try write("schemas/queries.yaml", schema)
    try writeQueries()
    assertFails(try dv("repro"), code: 2, "stages.yaml:9:78: option 'top' of plugin 'profile' must be an integer")
    assertFails(try dv("status"), code: 2, "stages.yaml:9:78:")
  }

  func testBadSchemaIsAUsageErrorAtItsLine() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", stages)
    try write("schemas/queries.yaml", "columns:\n  id: {type: int}\n  age: {type: int, min: 10, max: 1}\n")
    try writeQueries()
    assertFails(
      try dv("repro"), code: 2, "schemas/queries.yaml:3:8: 'min' (10) of column 'age' is larger than its 'max' (1)")
    XCTAssertFalse(exists("reports/validation.json"))
  }

  func testMalformedInputFailsNamingTheLine() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", stages)
    try write("schemas/queries.yaml", schema)
    try write("data/raw/queries.jsonl", "{\"id\": 1}\n{\"id\": 2,\n")
    let result = try dv("repro", "profile")
    XCTAssertEqual(result.code, 1)
    XCTAssertTrue(result.stderr.contains("stage 'profile' failed: data/raw/queries.jsonl:2: "), result.stderr)
  }

  /// Writes about `megabytes` MB of CSV in buffered chunks: an id, a float, a category, text.
  private func writeLargeCSV(_ relative: String, megabytes: Int) throws {
    let path = root + "/" + relative
    try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    XCTAssertGreaterThanOrEqual(fd, 0)
    defer { close(fd) }
    var chunk = Array("id,score,complexity,question\n".utf8)
    var written = 0
    var row = 0
    let categories = ["easy", "medium", "hard"]
    while written < megabytes << 20 {
      while chunk.count < 1 << 20 {
        row += 1
        let score = Double((row &* 7919) % 10_000) / 10_000
        chunk.append(
          contentsOf:
            "\(row),\(score),\(categories[row % 3]),how many rows of table t\(row % 5000) are above \(row % 97)?\n"
            .utf8)
      }
      try chunk.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
      written += chunk.count
      chunk.removeAll(keepingCapacity: true)
    }
  }

  func testLargeInputStaysUnderTheMemoryBound() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try writeLargeCSV("data/big.csv", megabytes: 200)
    try write(
      "schemas/big.yaml",
      """
      columns:
        id: {type: int, unique: true}
        score: {type: float, min: 0, max: 1}
        complexity: {type: string, allowed: [easy, medium, hard]}
        question: {type: string, regex: "^how many "}
      rows: {min: 1000}
      """)
    try write(
      "stages.yaml",
      """
      stages:
        validate:
          plugin: validate
          with: {input: data/big.csv, schema: schemas/big.yaml}
          deps: [data/big.csv, schemas/big.yaml]
          metrics: [reports/validation.json]
        profile:
          plugin: profile
          with: {input: data/big.csv, output: reports/profile.json}
          deps: [data/big.csv]
          metrics: [reports/profile.json]
      """)
    let result = try dv("repro", timeout: 600)
    XCTAssertEqual(result.code, 0, result.stdout + result.stderr)
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
    XCTAssertLessThan(usage.ru_maxrss, 200 * 1024, "peak RSS of dv in KiB")
    let validation = try report("reports/validation.json")
    XCTAssertEqual(validation["violations_count"] as? Int, 0)
    let rows = try XCTUnwrap(validation["rows"] as? Int)
    XCTAssertGreaterThan(rows, 2_000_000)
    let columns = try XCTUnwrap(try report("reports/profile.json")["columns"] as? [String: [String: Any]])
    XCTAssertEqual(columns["id"]?["distinct_approximate"] as? Bool, true)
    XCTAssertEqual(
      Double(try XCTUnwrap(columns["id"]?["distinct"] as? Int)), Double(rows), accuracy: Double(rows) * 0.03)
    XCTAssertEqual(columns["complexity"]?["distinct"] as? Int, 3)
    XCTAssertEqual(columns["score"]?["percentiles_approximate"] as? Bool, true)
    let median = try XCTUnwrap((columns["score"]?["percentiles"] as? [String: Double])?["p50"])
    XCTAssertEqual(median, 0.5, accuracy: 0.02)
  }
}
