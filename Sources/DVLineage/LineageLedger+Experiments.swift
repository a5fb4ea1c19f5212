import DVBasics
import Foundation
import GRDB

/// One experiment: a run of the pipeline with params overridden, kept with what it used and
/// what it measured, so `dv exp show` compares them and `dv exp apply` brings one back.
public struct ExperimentRecord: Sendable, Equatable, Codable {
  public enum Status: String, Sendable, Codable {
    case queued, running, succeeded, failed
  }

  public var name: String
  /// The repro run of the ledger that carried it out.
  public var runID: String?
  /// The git commit it started from (nil outside git).
  public var baseline: String?
  /// Milliseconds since the epoch.
  public var createdAt: Int64
  public var finishedAt: Int64?
  public var status: Status
  /// The `-S` overrides as written.
  public var overrides: [String]
  /// Params the pipeline reads, by file then dotted key, as flow YAML.
  public var params: [String: [String: String]]
  /// Metrics files, by file then dotted key.
  public var metrics: [String: [String: String]]
  /// Texts of the params files and of stages.lock when it finished: `exp apply` writes them back
  /// and checks the outputs out of the cache.
  public var files: [String: String]
  /// Paths git does not track that a queued run's copy of the workspace gets too (`-C`).
  public var copies: [String]? = nil

  public init(
    name: String, runID: String?, baseline: String?, createdAt: Int64, finishedAt: Int64? = nil, status: Status,
    overrides: [String], params: [String: [String: String]] = [:], metrics: [String: [String: String]] = [:],
    files: [String: String] = [:], copies: [String]? = nil
  ) {
    self.name = name
    self.runID = runID
    self.baseline = baseline
    self.createdAt = createdAt
    self.finishedAt = finishedAt
    self.status = status
    self.overrides = overrides
    self.params = params
    self.metrics = metrics
    self.files = files
    self.copies = copies
  }
}

extension LineageLedger {
  /// Records an experiment (a new name, or the same name again: replaced).
  public func saveExperiment(_ experiment: ExperimentRecord) throws {
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: """
            INSERT OR REPLACE INTO experiments
              (name, run_id, baseline, created_at, finished_at, status, overrides, params, metrics, files, copies)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            experiment.name, experiment.runID, experiment.baseline, experiment.createdAt, experiment.finishedAt,
            experiment.status.rawValue, Self.json(experiment.overrides), Self.json(experiment.params),
            Self.json(experiment.metrics), Self.json(experiment.files), Self.json(experiment.copies ?? []),
          ])
      }
    }
  }

  /// Every experiment, oldest first. Without `files` their texts are left out (`exp show` of a
  /// thousand experiments needs only params and metrics).
  public func experiments(files withFiles: Bool = true) throws -> [ExperimentRecord] {
    try wrap {
      try db.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT name, run_id, baseline, created_at, finished_at, status, overrides, params, metrics,
              \(withFiles ? "files" : "NULL"), copies
            FROM experiments ORDER BY created_at, name
            """
        ).map { row in
          ExperimentRecord(
            name: row[0], runID: row[1], baseline: row[2], createdAt: row[3], finishedAt: row[4],
            status: ExperimentRecord.Status(rawValue: row[5]) ?? .failed,
            overrides: Self.object(row[6]) as? [String] ?? [], params: Self.table(row[7]),
            metrics: Self.table(row[8]), files: Self.object(row[9]) as? [String: String] ?? [:],
            copies: Self.object(row[10]) as? [String])
        }
      }
    }
  }

  /// JSON text decoded with JSONSerialization, several times faster than JSONDecoder for these
  /// small objects (a thousand rows of `exp show`).
  private static func object(_ text: String?) -> Any? {
    text.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
  }

  /// File -> key -> value.
  private static func table(_ text: String?) -> [String: [String: String]] {
    object(text) as? [String: [String: String]] ?? [:]
  }

  /// Deletes experiments by name; returns how many there were.
  @discardableResult
  public func removeExperiments(_ names: [String]) throws -> Int {
    try wrap {
      try FailPoint.beforeWrite()
      return try db.write { db in
        var removed = 0
        for name in names {
          try db.execute(sql: "DELETE FROM experiments WHERE name = ?", arguments: [name])
          removed += db.changesCount
        }
        return removed
      }
    }
  }

  private static func json<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
  }
}
