import DVBasics
import Foundation
import GRDB

/// A stage run as the ledger remembers it, with its run's context.
public struct StageRunRecord: Sendable, Equatable {
  public var id: Int64
  public var runID: String
  public var stage: String
  public var action: String
  public var pluginKind: String?
  public var pluginVersion: String?
  public var key: String?
  public var outcome: StageRunOutcome
  public var exitCode: Int32?
  /// Milliseconds since the epoch.
  public var startedAt: Int64
  public var durationMs: Int64?
  public var command: String
  public var gitCommit: String?
  public var gitDirty: Bool?
  /// Where it ran; nil for runs recorded before dv kept it.
  public var execution: RecordedExecution?

  static let columns = """
    s.id, s.run_id, s.stage, s.action, s.plugin_kind, s.plugin_version, s.key, s.outcome, s.exit_code,
    s.started_at, s.duration_ms, r.command, r.git_commit, r.git_dirty, s.executor, s.job_id, s.node, s.queue_ms,
    s.run_ms, s.job_state, s.attempts
    """

  init(row: Row) {
    id = row[0]
    runID = row[1]
    stage = row[2]
    action = row[3]
    pluginKind = row[4]
    pluginVersion = row[5]
    key = row[6]
    outcome = StageRunOutcome(rawValue: row[7]) ?? .failed
    exitCode = (row[8] as Int64?).map { Int32(truncatingIfNeeded: $0) }
    startedAt = row[9]
    durationMs = row[10]
    command = row[11]
    gitCommit = row[12]
    gitDirty = (row[13] as Int64?).map { $0 != 0 }
    execution = (row[14] as String?).map { executor in
      RecordedExecution(
        executor: executor, jobID: row[15], node: row[16], queueMs: row[17], runMs: row[18], state: row[19],
        attempts: (row[20] as Int64?).map { Int($0) })
    }
  }
}

/// Where a stage run was carried out: the executor (`local`, `slurm`) and, for a cluster job,
/// its id, node, queue wait, run time, final state and attempts.
public struct RecordedExecution: Sendable, Equatable {
  public var executor: String
  public var jobID: String?
  public var node: String?
  public var queueMs: Int64?
  public var runMs: Int64?
  public var state: String?
  public var attempts: Int?

  public init(
    executor: String, jobID: String? = nil, node: String? = nil, queueMs: Int64? = nil, runMs: Int64? = nil,
    state: String? = nil, attempts: Int? = nil
  ) {
    self.executor = executor
    self.jobID = jobID
    self.node = node
    self.queueMs = queueMs
    self.runMs = runMs
    self.state = state
    self.attempts = attempts
  }
}

/// A run with its stage runs, for `dv lineage log`.
public struct RunRecord: Sendable {
  public var id: String
  public var command: String
  public var arguments: String
  public var startedAt: Int64
  public var finishedAt: Int64?
  public var status: String
  public var gitCommit: String?
  public var gitDirty: Bool?
  public var user: String?
  public var host: String?
  public var dvVersion: String
  public var stageRuns: [StageRunRecord]
}

extension LineageLedger {
  private static let fromJoin = "FROM stage_runs s JOIN runs r ON r.id = s.run_id"

  /// The artifacts of a stage run by role (`dep`, `param`, `out`), in recorded order.
  public func artifacts(of stageRun: Int64, role: String) throws -> [RecordedArtifact] {
    try wrap {
      try db.read { db in
        try Row.fetchAll(
          db,
          sql:
            "SELECT path, hash, size, files, value FROM artifacts WHERE stage_run_id = ? AND role = ? ORDER BY rowid",
          arguments: [stageRun, role]
        ).map { RecordedArtifact(path: $0[0], hash: $0[1], size: $0[2], files: $0[3], value: $0[4]) }
      }
    }
  }

  /// The latest successful stage run that wrote this content (preferring the same path).
  public func producer(of hash: String, path: String?) throws -> StageRunRecord? {
    try wrap {
      try db.read { db in
        let row = try Row.fetchOne(
          db,
          sql: """
            SELECT \(StageRunRecord.columns) \(Self.fromJoin)
            JOIN artifacts a ON a.stage_run_id = s.id AND a.role = 'out' AND a.hash = ?
            WHERE s.outcome IN ('ran', 'restored')
            ORDER BY (a.path = ?) DESC, s.id DESC LIMIT 1
            """, arguments: [hash, path ?? ""])
        return row.map(StageRunRecord.init(row:))
      }
    }
  }

  /// The latest successful stage run of each stage that read this content.
  public func consumers(of hash: String) throws -> [StageRunRecord] {
    try wrap {
      try db.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT \(StageRunRecord.columns) \(Self.fromJoin)
            WHERE s.id IN (
              SELECT MAX(s2.id) FROM stage_runs s2
              JOIN artifacts a ON a.stage_run_id = s2.id AND a.role = 'dep' AND a.hash = ?
              WHERE s2.outcome IN ('ran', 'restored') GROUP BY s2.stage)
            ORDER BY s.stage
            """, arguments: [hash]
        ).map(StageRunRecord.init(row:))
      }
    }
  }

  /// The latest successful stage run of a stage, or within one run.
  public func latestStageRun(stage: String, run: String? = nil) throws -> StageRunRecord? {
    try wrap {
      try db.read { db in
        let row = try Row.fetchOne(
          db,
          sql: """
            SELECT \(StageRunRecord.columns) \(Self.fromJoin)
            WHERE s.stage = ? AND s.outcome IN ('ran', 'restored') AND (? IS NULL OR s.run_id = ?)
            ORDER BY s.id DESC LIMIT 1
            """, arguments: [stage, run, run])
        return row.map(StageRunRecord.init(row:))
      }
    }
  }

  /// The hash a path had as an output of a run (a past version), or nil.
  public func outputHash(path: String, run: String) throws -> RecordedArtifact? {
    try wrap {
      try db.read { db in
        guard try Int.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [run]) != nil else {
          throw LineageError.unknownRun(run)
        }
        return try Row.fetchOne(
          db,
          sql: """
            SELECT a.path, a.hash, a.size, a.files FROM artifacts a JOIN stage_runs s ON s.id = a.stage_run_id
            WHERE s.run_id = ? AND a.role = 'out' AND a.path = ? ORDER BY s.id DESC LIMIT 1
            """, arguments: [run, path]
        ).map { RecordedArtifact(path: $0[0], hash: $0[1], size: $0[2], files: $0[3]) }
      }
    }
  }

  /// A run id from a unique prefix.
  public func resolveRun(_ prefix: String) throws -> String {
    try wrap {
      try db.read { db in
        let ids = try String.fetchAll(
          db, sql: "SELECT id FROM runs WHERE id LIKE ? ORDER BY id LIMIT 2", arguments: [prefix.uppercased() + "%"])
        guard ids.count == 1 else { throw LineageError.unknownRun(prefix) }
        return ids[0]
      }
    }
  }

  /// Runs, newest first, with their stage runs (only those of `stage` when given).
  public func runs(limit: Int, stage: String? = nil) throws -> [RunRecord] {
    try wrap {
      try db.read { db in
        let runRows = try Row.fetchAll(
          db,
          sql: """
            SELECT id, command, argv, started_at, finished_at, status, git_commit, git_dirty, user, host, dv_version
            FROM runs r WHERE (? IS NULL OR EXISTS (SELECT 1 FROM stage_runs s WHERE s.run_id = r.id AND s.stage = ?))
            ORDER BY id DESC LIMIT ?
            """, arguments: [stage, stage, limit])
        return try runRows.map { row in
          let id: String = row[0]
          let stageRuns = try Row.fetchAll(
            db,
            sql: """
              SELECT \(StageRunRecord.columns) \(Self.fromJoin) WHERE s.run_id = ? AND (? IS NULL OR s.stage = ?)
              ORDER BY s.id
              """, arguments: [id, stage, stage]
          ).map(StageRunRecord.init(row:))
          return RunRecord(
            id: id, command: row[1], arguments: row[2], startedAt: row[3], finishedAt: row[4], status: row[5],
            gitCommit: row[6], gitDirty: (row[7] as Int64?).map { $0 != 0 }, user: row[8], host: row[9],
            dvVersion: row[10], stageRuns: stageRuns)
        }
      }
    }
  }

  /// Every stage run that did something (not skipped), oldest first, for exports.
  public func forEachStageRun(
    _ body: (StageRunRecord, _ deps: [RecordedArtifact], _ outs: [RecordedArtifact]) throws -> Void
  ) throws {
    try wrap {
      try db.read { db in
        let artifacts = try db.makeStatement(
          sql:
            "SELECT role, path, hash, size, files FROM artifacts WHERE stage_run_id = ? AND role != 'param' ORDER BY rowid"
        )
        let cursor = try Row.fetchCursor(
          db, sql: "SELECT \(StageRunRecord.columns) \(Self.fromJoin) WHERE s.outcome != 'skipped' ORDER BY s.id")
        while let row = try cursor.next() {
          let record = StageRunRecord(row: row)
          var deps: [RecordedArtifact] = []
          var outs: [RecordedArtifact] = []
          for a in try Row.fetchAll(artifacts, arguments: [record.id]) {
            let artifact = RecordedArtifact(path: a[1], hash: a[2], size: a[3], files: a[4])
            if (a[0] as String) == "dep" { deps.append(artifact) } else { outs.append(artifact) }
          }
          try body(record, deps, outs)
        }
      }
    }
  }
}
