import DVBasics
import Foundation
import GRDB

/// A run record could not be imported.
public struct RunRecordError: DVError {
  public var name: String
  public var reason: String

  public var kind: FailureKind { .failed }
  public var description: String { "run record '\(name)' cannot be imported: \(reason)" }
}

/// Run records shared through a remote (`runs/<run id>.json`): a finished run with its stage runs
/// and their artifacts, so that another workspace's ledger has the same lineage and run cache.
extension LineageLedger {
  /// The format version of exported run records.
  public static let runRecordVersion = 1

  /// True for a string shaped like a run id (26 characters of Crockford base 32); names from a
  /// remote listing are checked with this before they are used.
  public static func isRunID(_ text: String) -> Bool {
    text.utf8.count == 26 && text.utf8.allSatisfy { RunID.alphabet.contains($0) }
  }

  /// The ids of finished runs (a run still `running` may be in progress, or crashed: not shared).
  public func finishedRunIDs() throws -> [String] {
    try wrap {
      try db.read { db in try String.fetchAll(db, sql: "SELECT id FROM runs WHERE status != 'running' ORDER BY id") }
    }
  }

  /// The ids of every run in the ledger.
  public func allRunIDs() throws -> Set<String> {
    try wrap { try db.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM runs")) } }
  }

  /// A run as a JSON record (sorted keys, no whitespace).
  public func exportRun(_ id: String) throws -> [UInt8] {
    let record: [String: Any] = try wrap {
      try db.read { db in
        guard
          let run = try Row.fetchOne(
            db,
            sql: """
              SELECT id, command, argv, started_at, finished_at, status, git_commit, git_dirty, user, host, dv_version
              FROM runs WHERE id = ?
              """, arguments: [id])
        else { throw LineageError.unknownRun(id) }
        var stageRuns: [[String: Any]] = []
        for stageRun in try Row.fetchAll(
          db,
          sql: """
            SELECT id, stage, action, plugin_kind, plugin_version, key, outcome, exit_code, started_at, duration_ms,
              executor, job_id, node, queue_ms, run_ms, job_state, attempts
            FROM stage_runs WHERE run_id = ? ORDER BY id
            """, arguments: [id])
        {
          let artifacts = try Row.fetchAll(
            db, sql: "SELECT role, path, hash, size, files, value FROM artifacts WHERE stage_run_id = ? ORDER BY rowid",
            arguments: [stageRun[0] as Int64]
          ).map { row -> [String: Any] in
            Self.dictionary([
              "role": row[0], "path": row[1], "hash": row[2], "size": row[3], "files": row[4], "value": row[5],
            ])
          }
          var entry = Self.dictionary([
            "stage": stageRun[1], "action": stageRun[2], "plugin_kind": stageRun[3], "plugin_version": stageRun[4],
            "key": stageRun[5], "outcome": stageRun[6], "exit_code": stageRun[7], "started_at": stageRun[8],
            "duration_ms": stageRun[9], "executor": stageRun[10], "job_id": stageRun[11], "node": stageRun[12],
            "queue_ms": stageRun[13], "run_ms": stageRun[14], "job_state": stageRun[15], "attempts": stageRun[16],
          ])
          entry["artifacts"] = artifacts
          stageRuns.append(entry)
        }
        var runEntry = Self.dictionary([
          "id": run[0], "command": run[1], "argv": run[2], "started_at": run[3], "finished_at": run[4],
          "status": run[5], "git_commit": run[6], "git_dirty": run[7], "user": run[8], "host": run[9],
          "dv_version": run[10],
        ])
        runEntry["stage_runs"] = stageRuns
        return ["version": Self.runRecordVersion, "run": runEntry]
      }
    }
    let data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
    return Array(data)
  }

  /// Imports a run record; false when the ledger already has the run (importing is idempotent).
  @discardableResult
  public func importRun(_ bytes: [UInt8], name: String) throws -> Bool {
    func fail(_ reason: String) -> RunRecordError { RunRecordError(name: name, reason: reason) }
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
      throw fail("it is not a JSON object")
    }
    guard let version = object["version"] as? Int else { throw fail("it has no version") }
    guard version <= Self.runRecordVersion else {
      throw fail("it has version \(version) but this dv reads up to \(Self.runRecordVersion); upgrade dv")
    }
    guard let run = object["run"] as? [String: Any], let id = run["id"] as? String, Self.isRunID(id) else {
      throw fail("it has no valid run id")
    }
    guard let command = run["command"] as? String, let argv = run["argv"] as? String,
      let startedAt = Self.integer(run["started_at"]), let status = run["status"] as? String,
      let dvVersion = run["dv_version"] as? String
    else { throw fail("the run lacks command, argv, started_at, status or dv_version") }
    let stageRuns = run["stage_runs"] as? [[String: Any]] ?? []
    for stageRun in stageRuns {
      guard stageRun["stage"] is String, stageRun["action"] is String,
        let outcome = stageRun["outcome"] as? String, StageRunOutcome(rawValue: outcome) != nil,
        Self.integer(stageRun["started_at"]) != nil
      else { throw fail("a stage run lacks stage, action, outcome or started_at") }
    }
    return try wrap {
      try FailPoint.beforeWrite()
      return try db.write { db in
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [id]) == true { return false }
        try db.execute(
          sql: """
            INSERT INTO runs (id, command, argv, started_at, finished_at, status, git_commit, git_dirty, user, host,
              dv_version)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            id, command, argv, startedAt, Self.integer(run["finished_at"]), status, run["git_commit"] as? String,
            Self.integer(run["git_dirty"]), run["user"] as? String, run["host"] as? String, dvVersion,
          ])
        let insertArtifact = try db.makeStatement(
          sql: "INSERT INTO artifacts (stage_run_id, role, path, hash, size, files, value) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        for stageRun in stageRuns {
          try db.execute(
            sql: """
              INSERT INTO stage_runs (run_id, stage, action, plugin_kind, plugin_version, key, outcome, exit_code,
                started_at, duration_ms, executor, job_id, node, queue_ms, run_ms, job_state, attempts)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
              """,
            arguments: [
              id, stageRun["stage"] as? String, stageRun["action"] as? String, stageRun["plugin_kind"] as? String,
              stageRun["plugin_version"] as? String, stageRun["key"] as? String, stageRun["outcome"] as? String,
              Self.integer(stageRun["exit_code"]), Self.integer(stageRun["started_at"]),
              Self.integer(stageRun["duration_ms"]), stageRun["executor"] as? String, stageRun["job_id"] as? String,
              stageRun["node"] as? String, Self.integer(stageRun["queue_ms"]), Self.integer(stageRun["run_ms"]),
              stageRun["job_state"] as? String, Self.integer(stageRun["attempts"]),
            ])
          let stageRunID = db.lastInsertedRowID
          for artifact in stageRun["artifacts"] as? [[String: Any]] ?? [] {
            guard let role = artifact["role"] as? String, let path = artifact["path"] as? String else { continue }
            try insertArtifact.execute(arguments: [
              stageRunID, role, path, artifact["hash"] as? String, Self.integer(artifact["size"]),
              Self.integer(artifact["files"]), artifact["value"] as? String,
            ])
          }
        }
        return true
      }
    }
  }

  /// The outputs recorded by successful stage runs that carry a run-cache key: what the run
  /// cache may restore. Directories have a file count.
  public func runCacheOutputs() throws -> [RecordedArtifact] {
    try wrap {
      try db.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT DISTINCT a.path, a.hash, a.size, a.files FROM artifacts a JOIN stage_runs s ON s.id = a.stage_run_id
            WHERE a.role = 'out' AND a.hash IS NOT NULL AND s.key IS NOT NULL AND s.outcome IN ('ran', 'restored')
            """
        ).map { RecordedArtifact(path: $0[0], hash: $0[1], size: $0[2], files: $0[3]) }
      }
    }
  }

  /// Drops nil values, so that records carry only what is known.
  private static func dictionary(_ values: [String: DatabaseValueConvertible?]) -> [String: Any] {
    var out: [String: Any] = [:]
    for (key, value) in values {
      switch value?.databaseValue.storage {
      case .int64(let n): out[key] = n
      case .double(let d): out[key] = d
      case .string(let s): out[key] = s
      default: break
      }
    }
    return out
  }

  private static func integer(_ value: Any?) -> Int64? {
    if let n = value as? Int64 { return n }
    if let n = value as? Int { return Int64(n) }
    if let n = value as? NSNumber { return n.int64Value }
    return nil
  }
}
