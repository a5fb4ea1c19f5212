import DVBasics
import Foundation
import XCTest

/// The lineage ledger and the run cache, through the `dv` binary.
final class LineageTests: DVTestCase {
  /// Four stages; `prepare` appends to a counter outside the workspace every time it really runs.
  var pipeline: String {
    """
    stages:
      prepare:
        cmd: head -n ${n} data/raw.txt > data/prepared.txt && echo ran >> \(counter)
        deps: [data/raw.txt]
        params: [n]
        outs: [data/prepared.txt]
      features:
        cmd: sed 's/^/f/' data/prepared.txt > data/features.txt
        deps: [data/prepared.txt]
        outs: [data/features.txt]
      train:
        cmd: wc -l < data/features.txt > model.txt
        deps: [data/features.txt]
        outs: [model.txt]
      evaluate:
        cmd: 'echo "{\\"lines\\": $(cat model.txt)}" > metrics.json'
        deps: [model.txt]
        metrics: [metrics.json]

    """
  }

  var counter: String { root + ".counter" }

  override func setUpWithError() throws {
    try super.setUpWithError()
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("data/raw.txt", (1...50).map(String.init).joined(separator: "\n") + "\n")
    XCTAssertEqual(try dv("add", "data/raw.txt").code, 0)
    try write("stages.yaml", pipeline)
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeFile(counter)
    try super.tearDownWithError()
  }

  func runs() -> Int { (try? FileSystem.readTextIfPresent(counter))?.split(separator: "\n").count ?? 0 }

  func lineageJSON(_ args: String...) throws -> [[String: Any]] {
    let result = try dv(["lineage", "show"] + args + ["--json"])
    XCTAssertEqual(result.code, 0, result.stderr)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
  }

  func dv(_ args: [String]) throws -> RunResult { try run(Self.binary, args) }

  /// The chain of (stage, params) from a file up to `dv add`.
  func chain(_ node: [String: Any]) -> [String] {
    guard let run = (node["runs"] as? [[String: Any]])?.first else { return [] }
    let params = (run["params"] as? [String: String]) ?? [:]
    let label =
      (run["stage"] as? String ?? "?") + (params.isEmpty ? "" : " " + params.map { "\($0)=\($1)" }.sorted().joined())
    let below = (run["artifacts"] as? [[String: Any]])?.first.map(chain) ?? []
    return [label] + below
  }

  func testEachVersionTracesToItsInputsAndTheRunCacheRestoresRevertedParams() throws {
    try write("params.yaml", "n: 3\n")
    XCTAssertEqual(try dv("repro").code, 0)
    let firstModel = read("model.txt")
    XCTAssertEqual(runs(), 1)
    let firstRun = try XCTUnwrap(
      (try lineageJSON("model.txt").first?["runs"] as? [[String: Any]])?.first?["run"] as? String)

    try write("params.yaml", "n: 7\n")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(runs(), 2)
    XCTAssertEqual(read("model.txt"), "7\n")
    let now = try XCTUnwrap(try lineageJSON("model.txt").first)
    XCTAssertEqual(chain(now), ["train", "features", "prepare params.yaml:n=7", "dv add"])
    // The earlier version of model.txt still traces to n=3.
    let past = try XCTUnwrap(try lineageJSON("model.txt", "--run", firstRun).first)
    XCTAssertEqual(chain(past), ["train", "features", "prepare params.yaml:n=3", "dv add"])

    // Reverting the param restores every stage from the run cache: prepare does not run again.
    try write("params.yaml", "n: 3\n")
    let restored = try dv("repro")
    XCTAssertEqual(restored.code, 0, restored.stderr)
    XCTAssertTrue(restored.stdout.contains("restored its outputs from the run cache"), restored.stdout)
    XCTAssertEqual(runs(), 2)
    XCTAssertEqual(read("model.txt"), firstModel)
    XCTAssertEqual(read("metrics.json"), "{\"lines\": 3}\n")
    XCTAssertTrue(try dv("status").stdout.contains("up to date"))
    // --no-run-cache really runs.
    try write("params.yaml", "n: 7\n")
    XCTAssertEqual(try dv("repro", "--no-run-cache").code, 0)
    XCTAssertEqual(runs(), 3)

    let downstream = try lineageJSON("data/raw.txt", "--downstream")
    let consumers = (downstream.first?["runs"] as? [[String: Any]])?.compactMap { $0["stage"] as? String }
    XCTAssertEqual(consumers, ["prepare"])
    let text = try dv("lineage", "show", "model.txt")
    XCTAssertTrue(text.stdout.contains("produced by stage 'train'"), text.stdout)
    XCTAssertTrue(text.stdout.contains("added by `dv add`"), text.stdout)
    XCTAssertTrue(try dv("lineage", "show", "train", "--dot").stdout.hasPrefix("digraph lineage {"))
    XCTAssertTrue(try dv("lineage", "show", "train", "--mermaid").stdout.hasPrefix("flowchart LR"))
  }

  func testFailedStagesAndRunsAreRecorded() throws {
    try write("params.yaml", "n: 3\n")
    try write("stages.yaml", pipeline.replacingOccurrences(of: "wc -l <", with: "exit 4; wc -l <"))
    XCTAssertEqual(try dv("repro").code, 1)
    let log = try dv("lineage", "log", "--json")
    let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(runs.first?["status"] as? String, "failed")
    let stageRuns = try XCTUnwrap(runs.first?["stage_runs"] as? [[String: Any]])
    let train = try XCTUnwrap(stageRuns.first { $0["stage"] as? String == "train" })
    XCTAssertEqual(train["outcome"] as? String, "failed")
    XCTAssertEqual(train["exit_code"] as? Int, 4)
    XCTAssertEqual(runs.last?["command"] as? String, "add")
    let text = try dv("lineage", "log", "--stage", "train")
    XCTAssertTrue(text.stdout.contains("train  failed"), text.stdout)
    XCTAssertFalse(text.stdout.contains("prepare"), text.stdout)
    assertFails(
      try dv("lineage", "show", "data/prepared.txt", "--run", "ZZZ"), code: 2,
      "no run 'ZZZ' in the ledger; `dv lineage log` lists them")
  }

  func testOpenLineageEventsHaveTheRunEventStructure() throws {
    try write("params.yaml", "n: 3\n")
    XCTAssertEqual(try dv("repro").code, 0)
    let export = try dv("lineage", "export", "--format", "openlineage")
    XCTAssertEqual(export.code, 0, export.stderr)
    let events = try export.stdout.split(separator: "\n").map {
      try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    XCTAssertEqual(events.count, 2 * 5)  // dv add and four stages, START and COMPLETE each
    for event in events {
      XCTAssertTrue(["START", "COMPLETE", "FAIL"].contains(event["eventType"] as? String ?? ""))
      XCTAssertNotNil(ISO8601DateFormatter().date(from: String((event["eventTime"] as? String ?? "").prefix(19)) + "Z"))
      let run = try XCTUnwrap(event["run"] as? [String: Any])
      XCTAssertNotNil(UUID(uuidString: run["runId"] as? String ?? ""), "runId is a UUID")
      let job = try XCTUnwrap(event["job"] as? [String: Any])
      XCTAssertNotNil(job["namespace"] as? String)
      XCTAssertNotNil(job["name"] as? String)
      XCTAssertNotNil(event["inputs"] as? [[String: Any]])
      XCTAssertNotNil(event["outputs"] as? [[String: Any]])
      XCTAssertNotNil(event["producer"] as? String)
      XCTAssertTrue((event["schemaURL"] as? String ?? "").contains("RunEvent"))
    }
    let complete = try XCTUnwrap(
      events.first {
        ($0["job"] as? [String: Any])?["name"] as? String == "prepare" && $0["eventType"] as? String == "COMPLETE"
      })
    XCTAssertEqual((complete["inputs"] as? [[String: Any]])?.first?["name"] as? String, "data/raw.txt")
    XCTAssertEqual((complete["outputs"] as? [[String: Any]])?.first?["name"] as? String, "data/prepared.txt")
  }

  func testReadersWorkWhileReproWrites() throws {
    try write("params.yaml", "n: 3\n")
    try write("stages.yaml", pipeline.replacingOccurrences(of: "wc -l <", with: "sleep 2; wc -l <"))
    let repro = Process()
    repro.executableURL = URL(fileURLWithPath: Self.binary)
    repro.arguments = ["repro"]
    repro.currentDirectoryURL = URL(fileURLWithPath: root)
    repro.standardOutput = FileHandle.nullDevice
    repro.standardError = FileHandle.nullDevice
    try repro.run()
    var sawRunning = false
    for _ in 0..<40 where repro.isRunning {
      let log = try dv("lineage", "log")
      XCTAssertEqual(log.code, 0, log.stderr)
      if log.stdout.contains("train  running") { sawRunning = true }
      Thread.sleep(forTimeInterval: 0.1)
    }
    repro.waitUntilExit()
    XCTAssertEqual(repro.terminationStatus, 0)
    XCTAssertTrue(sawRunning, "the stage run in progress is visible to readers")
    XCTAssertTrue(try dv("lineage", "log").stdout.contains("train  ran"))
  }

  func testNothingRecordedYetIsBadInput() throws {
    try FileSystem.removeFile(root + "/.pipeline/lineage.db")
    assertFails(try dv("lineage", "show", "model.txt"), code: 2, "no lineage recorded for 'model.txt'")
  }
}
