import DVBasics
import Foundation
import GRDB

/// How a stage run ended.
public enum StageRunOutcome: String, Sendable, CaseIterable {
  /// Started and not (yet) finished: a crash leaves this.
  case running
  /// The stage's command or plugin ran and its outs were recorded.
  case ran
  /// The outs were checked out from the run cache instead of running.
  case restored
  /// Up to date, or frozen.
  case skipped
  /// The command or plugin failed, or was interrupted.
  case failed
}

/// How a whole run ended.
public enum RunStatus: String, Sendable {
  case running, succeeded, failed, interrupted
}

/// A dependency, output or param of a stage run.
public struct RecordedArtifact: Sendable, Equatable {
  /// Workspace-relative path; for params `file:key`.
  public var path: String
  /// `sha256:<hex>` for data.
  public var hash: String?
  public var size: Int64?
  public var files: Int?
  /// A param's value (flow YAML).
  public var value: String?

  public init(path: String, hash: String? = nil, size: Int64? = nil, files: Int? = nil, value: String? = nil) {
    self.path = path
    self.hash = hash
    self.size = size
    self.files = files
    self.value = value
  }
}

/// What identifies a run besides its id.
public struct RunContext: Sendable {
  /// `repro`, `add`.
  public var command: String
  /// The arguments after `dv` (no environment).
  public var arguments: [String]
  public var gitCommit: String?
  public var gitDirty: Bool?
  public var user: String?
  public var host: String?
  public var dvVersion: String

  public init(
    command: String, arguments: [String], gitCommit: String?, gitDirty: Bool?, user: String?, host: String?,
    dvVersion: String
  ) {
    self.command = command
    self.arguments = arguments
    self.gitCommit = gitCommit
    self.gitDirty = gitDirty
    self.user = user
    self.host = host
    self.dvVersion = dvVersion
  }
}

extension LineageLedger {
  /// Records the start of a run; returns its id.
  public func beginRun(_ context: RunContext) throws -> String {
    let id = RunID.make()
    let argv = "[" + context.arguments.map { JSONText.quote(SecretScrubber.scrub($0)) }.joined(separator: ",") + "]"
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: """
            INSERT INTO runs (id, command, argv, started_at, status, git_commit, git_dirty, user, host, dv_version)
            VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
            """,
          arguments: [
            id, context.command, argv, Self.now(), context.gitCommit, context.gitDirty.map { $0 ? 1 : 0 },
            context.user, context.host, context.dvVersion,
          ])
      }
    }
    return id
  }

  /// Records how a run ended.
  public func finishRun(_ id: String, status: RunStatus) throws {
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", arguments: [status.rawValue, Self.now(), id])
      }
    }
  }

  /// Records that a stage starts (outcome `running` until `finishStageRun`); returns its id.
  public func beginStageRun(
    run: String, stage: String, action: String, pluginKind: String?, pluginVersion: String?, key: String?
  ) throws -> Int64 {
    try wrap {
      try FailPoint.beforeWrite()
      return try db.write { db in
        try db.execute(
          sql: """
            INSERT INTO stage_runs (run_id, stage, action, plugin_kind, plugin_version, key, outcome, started_at)
            VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
            """,
          arguments: [run, stage, SecretScrubber.scrub(action), pluginKind, pluginVersion, key, Self.now()])
        return db.lastInsertedRowID
      }
    }
  }

  /// Records how a stage run ended, with what it read and wrote, in one transaction.
  public func finishStageRun(
    _ id: Int64, outcome: StageRunOutcome, exitCode: Int32?, deps: [RecordedArtifact] = [],
    params: [RecordedArtifact] = [], outs: [RecordedArtifact] = [], execution: RecordedExecution? = nil
  ) throws {
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: """
            UPDATE stage_runs SET outcome = ?, exit_code = ?, duration_ms = ? - started_at, executor = ?, job_id = ?,
              node = ?, queue_ms = ?, run_ms = ?, job_state = ?, attempts = ?
            WHERE id = ?
            """,
          arguments: [
            outcome.rawValue, exitCode, Self.now(), execution?.executor, execution?.jobID, execution?.node,
            execution?.queueMs, execution?.runMs, execution?.state, execution?.attempts, id,
          ])
        let insert = try db.makeStatement(
          sql: "INSERT INTO artifacts (stage_run_id, role, path, hash, size, files, value) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        for (role, list) in [("dep", deps), ("param", params), ("out", outs)] {
          for a in list {
            try insert.execute(arguments: [
              id, role, a.path, a.hash, a.size, a.files, a.value.map(SecretScrubber.scrub),
            ])
          }
        }
      }
    }
  }

  /// Records a stage that did not need to run.
  public func recordSkipped(run: String, stage: String, action: String) throws {
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: """
            INSERT INTO stage_runs (run_id, stage, action, outcome, started_at, duration_ms)
            VALUES (?, ?, ?, 'skipped', ?, 0)
            """,
          arguments: [run, stage, SecretScrubber.scrub(action), Self.now()])
      }
    }
  }

  /// The outs of the latest successful stage run with this run-cache key.
  public func reusableOutputs(key: String) throws -> (stageRun: Int64, outs: [RecordedArtifact])? {
    try wrap {
      try db.read { db in
        guard
          let id = try Int64.fetchOne(
            db,
            sql: """
              SELECT id FROM stage_runs WHERE key = ? AND outcome IN ('ran', 'restored') ORDER BY id DESC LIMIT 1
              """, arguments: [key])
        else { return nil }
        let outs = try Row.fetchAll(
          db, sql: "SELECT path, hash, size, files FROM artifacts WHERE stage_run_id = ? AND role = 'out'",
          arguments: [id]
        ).map { RecordedArtifact(path: $0[0], hash: $0[1], size: $0[2], files: $0[3]) }
        return (id, outs)
      }
    }
  }
}
