import DVBasics
import Foundation
import GRDB

/// Errors of the lineage ledger.
public enum LineageError: DVError {
  /// The database could not be opened, read or written.
  case database(String)
  /// `lineage.db` was written by a newer dv.
  case newerSchema(found: Int, supported: Int)
  /// A path or stage has no recorded lineage.
  case unknown(String)
  /// `--run` names no run.
  case unknownRun(String)

  public var kind: FailureKind {
    switch self {
    case .database: return .failed
    case .newerSchema, .unknown, .unknownRun: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .database(let message): return "lineage ledger (.pipeline/lineage.db): \(message)"
    case .newerSchema(let found, let supported):
      return ".pipeline/lineage.db has schema version \(found) but this dv reads up to \(supported); upgrade dv"
    case .unknown(let what):
      return "no lineage recorded for '\(what)'; it is produced by `dv repro` or `dv add` from now on"
    case .unknownRun(let id): return "no run '\(id)' in the ledger; `dv lineage log` lists them"
    }
  }
}

/// `.pipeline/lineage.db` (docs/architecture.md §9): every `dv repro` and `dv add` is a run, every stage
/// execution a stage run with its inputs, params and outputs. Written as the run progresses, so a
/// crashed run stays visible as `running`/`failed`; WAL, so readers never wait for a writer.
public final class LineageLedger: @unchecked Sendable {
  /// The file name under `.pipeline/`.
  public static let fileName = "lineage.db"
  /// The schema version this dv writes (SQLite's user_version, set after the migrations).
  static let schemaVersion = 3

  let db: DatabaseQueue

  /// Opens the ledger of a workspace, creating it (and migrating an older one) when needed.
  public convenience init(workspaceRoot: String) throws {
    try self.init(path: workspaceRoot + "/.pipeline/" + Self.fileName)
  }

  /// Opens the ledger at `path`.
  public init(path: String) throws {
    do {
      var config = Configuration()
      config.busyMode = .timeout(10)
      config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
      db = try DatabaseQueue(path: path, configuration: config)
      let current = try db.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
      if current > Self.schemaVersion { throw LineageError.newerSchema(found: current, supported: Self.schemaVersion) }
      if current < Self.schemaVersion {
        try db.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        try Self.migrator.migrate(db)
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = \(Self.schemaVersion)") }
      }
    } catch let error as DatabaseError {
      throw Self.failure(error)
    }
  }

  /// The error to report for a database error: a full disk as the `SystemError` it is (whose
  /// message says what to do), anything else as `LineageError.database`.
  static func failure(_ error: DatabaseError) -> Error {
    if error.resultCode == .SQLITE_FULL {
      return SystemError("writing the lineage ledger .pipeline/lineage.db", errno: ENOSPC)
    }
    return LineageError.database(error.message ?? "\(error)")
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("1-runs-stage-runs-artifacts") { db in
      try db.execute(
        sql: """
          CREATE TABLE runs (
            id TEXT PRIMARY KEY NOT NULL,
            command TEXT NOT NULL,
            argv TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            status TEXT NOT NULL,
            git_commit TEXT,
            git_dirty INTEGER,
            user TEXT,
            host TEXT,
            dv_version TEXT NOT NULL);
          CREATE TABLE stage_runs (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            stage TEXT NOT NULL,
            action TEXT NOT NULL,
            plugin_kind TEXT,
            plugin_version TEXT,
            key TEXT,
            outcome TEXT NOT NULL,
            exit_code INTEGER,
            started_at INTEGER NOT NULL,
            duration_ms INTEGER);
          CREATE INDEX stage_runs_by_key ON stage_runs(key, outcome);
          CREATE INDEX stage_runs_by_stage ON stage_runs(stage, id);
          CREATE INDEX stage_runs_by_run ON stage_runs(run_id);
          CREATE TABLE artifacts (
            stage_run_id INTEGER NOT NULL REFERENCES stage_runs(id),
            role TEXT NOT NULL,
            path TEXT NOT NULL,
            hash TEXT,
            size INTEGER,
            files INTEGER,
            value TEXT);
          CREATE INDEX artifacts_by_hash ON artifacts(hash, role);
          CREATE INDEX artifacts_by_stage_run ON artifacts(stage_run_id);
          """)
    }
    // Where a stage ran: the executor, and a cluster job's id, node, queue wait, run time, final
    // state and attempts (NULL for runs recorded before, and for local runs' job fields).
    migrator.registerMigration("2-stage-run-execution") { db in
      try db.execute(
        sql: """
          ALTER TABLE stage_runs ADD COLUMN executor TEXT;
          ALTER TABLE stage_runs ADD COLUMN job_id TEXT;
          ALTER TABLE stage_runs ADD COLUMN node TEXT;
          ALTER TABLE stage_runs ADD COLUMN queue_ms INTEGER;
          ALTER TABLE stage_runs ADD COLUMN run_ms INTEGER;
          ALTER TABLE stage_runs ADD COLUMN job_state TEXT;
          ALTER TABLE stage_runs ADD COLUMN attempts INTEGER;
          """)
    }
    // Experiments (`dv exp run`): name, the run that carried it out, its baseline commit, status,
    // overrides, params and metrics (JSON), the params files' and stages.lock's texts, and the
    // untracked paths a queued run's copy gets (`-C`).
    migrator.registerMigration("3-experiments") { db in
      try db.execute(
        sql: """
          CREATE TABLE experiments (
            name TEXT PRIMARY KEY NOT NULL,
            run_id TEXT,
            baseline TEXT,
            created_at INTEGER NOT NULL,
            finished_at INTEGER,
            status TEXT NOT NULL,
            overrides TEXT NOT NULL,
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            files TEXT NOT NULL,
            copies TEXT NOT NULL DEFAULT '[]');
          """)
    }
    return migrator
  }

  func wrap<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as DatabaseError {
      throw Self.failure(error)
    }
  }

  /// Milliseconds since the epoch.
  public static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// A run's identity: 48 bits of milliseconds and 80 random bits in Crockford base 32 (26
/// characters, sorting by time, like a ULID).
public enum RunID {
  static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

  /// A new id for a run starting now.
  public static func make(milliseconds: Int64 = LineageLedger.now()) -> String {
    var bits: [UInt8] = []
    let time = UInt64(milliseconds) & 0xFFFF_FFFF_FFFF
    for shift in stride(from: 45, through: 0, by: -5) { bits.append(UInt8((time >> UInt64(shift)) & 31)) }
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<16 { bits.append(UInt8(generator.next() & 31)) }
    return String(decoding: bits.map { alphabet[Int($0)] }, as: UTF8.self)
  }
}
