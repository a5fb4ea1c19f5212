import DVBasics
import Foundation
import XCTest

@testable import DVLineage

final class LedgerTests: XCTestCase {
  var directory: String!

  override func setUpWithError() throws {
    directory = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-ledger-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory)
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  var path: String { directory + "/lineage.db" }

  let context = RunContext(
    command: "repro", arguments: ["repro"], gitCommit: "abc", gitDirty: false, user: "u", host: "h", dvVersion: "0")

  func testMigratesAnEmptyDatabaseAndRefusesANewerOne() throws {
    let ledger = try LineageLedger(path: path)
    XCTAssertTrue(try ledger.runs(limit: 10).isEmpty)
    // Reopening a current ledger does not migrate again.
    XCTAssertTrue(try LineageLedger(path: path).runs(limit: 10).isEmpty)
    try ledger.db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA user_version = 99") }
    XCTAssertThrowsError(try LineageLedger(path: path)) { error in
      XCTAssertEqual(
        "\(error)", ".pipeline/lineage.db has schema version 99 but this dv reads up to 3; upgrade dv")
    }
  }

  func testALedgerOfVersionOneGainsTheExecutionColumnsAndKeepsItsRuns() throws {
    // A ledger as the first schema left it: one run with a stage run and an output.
    let ledger = try LineageLedger(path: path)
    let run = try ledger.beginRun(context)
    let a = try ledger.beginStageRun(run: run, stage: "a", action: "cmd a", pluginKind: nil, pluginVersion: nil, key: "k")
    try ledger.finishStageRun(a, outcome: .ran, exitCode: 0, outs: [RecordedArtifact(path: "o", hash: "sha256:02", size: 2)])
    try ledger.db.writeWithoutTransaction { db in
      for column in ["executor", "job_id", "node", "queue_ms", "run_ms", "job_state", "attempts"] {
        try db.execute(sql: "ALTER TABLE stage_runs DROP COLUMN \(column)")
      }
      try db.execute(sql: "DROP TABLE experiments")
      try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier IN ('2-stage-run-execution', '3-experiments')")
      try db.execute(sql: "PRAGMA user_version = 1")
    }
    let migrated = try LineageLedger(path: path)
    let runs = try migrated.runs(limit: 10)
    XCTAssertEqual(runs.map(\.stageRuns.count), [1])
    XCTAssertNil(runs.first?.stageRuns.first?.execution, "runs recorded before say nothing of where they ran")
    let b = try migrated.beginStageRun(run: run, stage: "b", action: "cmd b", pluginKind: nil, pluginVersion: nil, key: "k2")
    let execution = RecordedExecution(
      executor: "slurm", jobID: "42", node: "n1", queueMs: 120, runMs: 900, state: "COMPLETED", attempts: 2)
    try migrated.finishStageRun(b, outcome: .ran, exitCode: 0, execution: execution)
    XCTAssertEqual(try migrated.runs(limit: 10).first?.stageRuns.last?.execution, execution)
  }

  func testRecordsStageRunsAndFindsProducersConsumersAndReusableRuns() throws {
    let ledger = try LineageLedger(path: path)
    let run = try ledger.beginRun(context)
    let a = try ledger.beginStageRun(
      run: run, stage: "a", action: "cmd a", pluginKind: nil, pluginVersion: nil, key: "k1")
    try ledger.finishStageRun(
      a, outcome: .ran, exitCode: 0, deps: [RecordedArtifact(path: "in", hash: "sha256:01", size: 1)],
      params: [RecordedArtifact(path: "params.yaml:n", value: "3")],
      outs: [RecordedArtifact(path: "mid", hash: "sha256:02", size: 2)])
    let b = try ledger.beginStageRun(
      run: run, stage: "b", action: "cmd b", pluginKind: nil, pluginVersion: nil, key: "k2")
    try ledger.finishStageRun(
      b, outcome: .failed, exitCode: 3, deps: [RecordedArtifact(path: "mid", hash: "sha256:02", size: 2)])
    try ledger.finishRun(run, status: .failed)

    XCTAssertEqual(try ledger.producer(of: "sha256:02", path: "mid")?.stage, "a")
    XCTAssertNil(try ledger.producer(of: "sha256:01", path: "in"))
    // A failed run neither counts as a consumer nor as reusable.
    XCTAssertTrue(try ledger.consumers(of: "sha256:02").isEmpty)
    XCTAssertEqual(try ledger.reusableOutputs(key: "k1")?.outs.map(\.path), ["mid"])
    XCTAssertNil(try ledger.reusableOutputs(key: "k2"))
    let log = try ledger.runs(limit: 5)
    XCTAssertEqual(log.first?.status, "failed")
    XCTAssertEqual(log.first?.stageRuns.map(\.outcome), [.ran, .failed])
    XCTAssertEqual(log.first?.stageRuns.last?.exitCode, 3)

    let tree = try LineageTracer(ledger: ledger, direction: .upstream).trace(
      path: "mid", hash: "sha256:02", size: 2, files: nil)
    XCTAssertEqual(tree.steps.first?.run.stage, "a")
    XCTAssertEqual(tree.steps.first?.nodes.map(\.path), ["in"])
    XCTAssertEqual(tree.steps.first?.params.first?.value, "3")
  }

  func testAStageRunThatNeverFinishedStaysVisible() throws {
    let ledger = try LineageLedger(path: path)
    let run = try ledger.beginRun(context)
    _ = try ledger.beginStageRun(run: run, stage: "a", action: "cmd", pluginKind: nil, pluginVersion: nil, key: nil)
    // The process dies here; a later reader still sees the run and its stage as running.
    let reopened = try LineageLedger(path: path)
    XCTAssertEqual(try reopened.runs(limit: 1).first?.status, "running")
    XCTAssertEqual(try reopened.runs(limit: 1).first?.stageRuns.first?.outcome, .running)
  }

  func testSecretsAreScrubbedFromUrls() {
    XCTAssertEqual(
      SecretScrubber.scrub("plugin download@1 {url: https://bob:hunter2@example.org/a.csv?X-Amz-Signature=abc&part=1}"),
      "plugin download@1 {url: https://example.org/a.csv?X-Amz-Signature=REDACTED&part=1}")
    XCTAssertEqual(SecretScrubber.scrub("no urls here"), "no urls here")
  }

  func testRunIDsSortByTime() {
    let early = RunID.make(milliseconds: 1_000)
    let late = RunID.make(milliseconds: 2_000)
    XCTAssertEqual(early.count, 26)
    XCTAssertLessThan(early, late)
  }
}
