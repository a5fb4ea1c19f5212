import DVBasics
import DVStorage
import Foundation

extension LineageNode {
  /// The tree as JSON-ready values.
  public var jsonValue: [String: Any] {
    var out: [String: Any] = ["path": path, "hash": hash]
    if let size { out["size"] = size }
    if let files { out["files"] = files }
    if truncated { out["truncated"] = true }
    out["runs"] = steps.map { step -> [String: Any] in
      var run = step.run.jsonValue
      run["params"] = Dictionary(step.params.map { ($0.path, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
      run["artifacts"] = step.nodes.map(\.jsonValue)
      return run
    }
    return out
  }

  /// Every node and step once, with edges in the direction data flows.
  func edges(direction: LineageTracer.Direction) -> (
    nodes: [String: String], runs: [Int64: String], edges: [(String, String)]
  ) {
    var nodes: [String: String] = [:]
    var runs: [Int64: String] = [:]
    var edges: [(String, String)] = []
    var seen = Set<String>()
    func visit(_ node: LineageNode) {
      let nodeID = "f" + String(node.hash.suffix(12)) + String(UInt(bitPattern: node.path.hashValue) % 100000)
      nodes[nodeID] = node.path
      for step in node.steps {
        let runID = "r\(step.run.id)"
        runs[step.run.id] = step.run.stage
        let edge = direction == .upstream ? (runID, nodeID) : (nodeID, runID)
        if seen.insert(edge.0 + ">" + edge.1).inserted { edges.append(edge) }
        for child in step.nodes {
          let childID = "f" + String(child.hash.suffix(12)) + String(UInt(bitPattern: child.path.hashValue) % 100000)
          let childEdge = direction == .upstream ? (childID, runID) : (runID, childID)
          if seen.insert(childEdge.0 + ">" + childEdge.1).inserted { edges.append(childEdge) }
          visit(child)
        }
      }
    }
    visit(self)
    return (nodes, runs, edges)
  }
}

extension StageRunRecord {
  /// The stage run as JSON-ready values.
  public var jsonValue: [String: Any] {
    var out: [String: Any] = [
      "stage_run": id, "run": runID, "stage": stage, "action": action, "outcome": outcome.rawValue,
      "started_at": LineageFormat.isoTime(startedAt), "command": command,
    ]
    if let pluginKind { out["plugin"] = pluginKind }
    if let pluginVersion { out["plugin_version"] = pluginVersion }
    if let key { out["run_cache_key"] = key }
    if let exitCode { out["exit_code"] = Int(exitCode) }
    if let durationMs { out["duration_ms"] = durationMs }
    if let gitCommit { out["git_commit"] = gitCommit }
    if let gitDirty { out["git_dirty"] = gitDirty }
    if let execution {
      var entry: [String: Any] = ["executor": execution.executor]
      entry["job_id"] = execution.jobID
      entry["node"] = execution.node
      entry["queue_ms"] = execution.queueMs
      entry["run_ms"] = execution.runMs
      entry["job_state"] = execution.state
      entry["attempts"] = execution.attempts
      out["execution"] = entry
    }
    return out
  }
}

/// Graph text for lineage trees (Graphviz and Mermaid), files as boxes and stage runs as ellipses.
public enum LineageGraphText {
  public static func dot(_ roots: [LineageNode], direction: LineageTracer.Direction) -> String {
    var out = "digraph lineage {\n  rankdir=LR;\n"
    for (nodes, runs, edges) in roots.map({ $0.edges(direction: direction) }) {
      for (id, path) in nodes.sorted(by: { $0.key < $1.key }) { out += "  \(id) [shape=box, label=\(quote(path))];\n" }
      for (id, stage) in runs.sorted(by: { $0.key < $1.key }) {
        out += "  r\(id) [shape=ellipse, label=\(quote(stage + " #\(id)"))];\n"
      }
      for (from, to) in edges { out += "  \(from) -> \(to);\n" }
    }
    return out + "}\n"
  }

  public static func mermaid(_ roots: [LineageNode], direction: LineageTracer.Direction) -> String {
    var out = "flowchart LR\n"
    for (nodes, runs, edges) in roots.map({ $0.edges(direction: direction) }) {
      for (id, path) in nodes.sorted(by: { $0.key < $1.key }) { out += "  \(id)[\"\(escape(path))\"]\n" }
      for (id, stage) in runs.sorted(by: { $0.key < $1.key }) { out += "  r\(id)([\"\(escape(stage)) #\(id)\"])\n" }
      for (from, to) in edges { out += "  \(from) --> \(to)\n" }
    }
    return out
  }

  private static func quote(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }

  private static func escape(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "#quot;") }
}

/// Times as the ledger shows them.
public enum LineageFormat {
  /// `2026-11-23T19:02:11.123Z`.
  public static func isoTime(_ milliseconds: Int64) -> String {
    // By hand (gmtime_r): an ISO8601DateFormatter per call cost 0.3 ms, which made `dv exp show`
    // of a thousand experiments take a third of a second.
    let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
    var time = time_t(fraction < 0 ? seconds - 1 : seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    func padded(_ value: Int32, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2) + "T"
      + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2) + "."
      + padded(Int32(fraction < 0 ? fraction + 1000 : fraction), 3) + "Z"
  }

  /// `2026-11-23 19:02` in UTC.
  public static func shortTime(_ milliseconds: Int64) -> String {
    let iso = isoTime(milliseconds)
    return String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(5))
  }
}

/// Writes the ledger as OpenLineage RunEvents (one JSON object per line): START and then
/// COMPLETE or FAIL (or RUNNING for a run that never finished) per stage run.
public enum OpenLineageExporter {
  /// Where the events say they come from.
  static let producer = "https://github.com/dv-data/dv"
  static let schemaURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

  public static func export(_ ledger: LineageLedger, namespace: String, line: (String) throws -> Void) throws {
    try ledger.forEachStageRun { run, deps, outs in
      let runID = uuid(run.runID + "/" + String(run.id))
      let job: [String: Any] = ["namespace": namespace, "name": run.stage]
      func datasets(_ artifacts: [RecordedArtifact]) -> [[String: Any]] {
        artifacts.map { a in
          var facets: [String: Any] = [:]
          if let hash = a.hash {
            facets["dv_content"] = [
              "_producer": producer, "_schemaURL": producer + "/facets/content.json", "hash": hash,
              "size": a.size ?? 0,
            ]
          }
          return ["namespace": namespace, "name": a.path, "facets": facets]
        }
      }
      var runFacets: [String: Any] = [:]
      runFacets["dv"] = [
        "_producer": producer, "_schemaURL": producer + "/facets/run.json", "run": run.runID,
        "action": run.action, "outcome": run.outcome.rawValue, "git_commit": run.gitCommit ?? "",
      ]
      let start: [String: Any] = [
        "eventType": "START", "eventTime": LineageFormat.isoTime(run.startedAt),
        "run": ["runId": runID, "facets": runFacets], "job": job, "inputs": datasets(deps), "outputs": [],
        "producer": producer, "schemaURL": schemaURL,
      ]
      try line(try json(start))
      let endType: String
      switch run.outcome {
      case .ran, .restored, .skipped: endType = "COMPLETE"
      case .failed: endType = "FAIL"
      case .running: endType = "RUNNING"
      }
      let end: [String: Any] = [
        "eventType": endType, "eventTime": LineageFormat.isoTime(run.startedAt + (run.durationMs ?? 0)),
        "run": ["runId": runID], "job": job, "inputs": datasets(deps), "outputs": datasets(outs),
        "producer": producer, "schemaURL": schemaURL,
      ]
      try line(try json(end))
    }
  }

  /// The ledger's own records, one stage run per line.
  public static func exportJSON(_ ledger: LineageLedger, line: (String) throws -> Void) throws {
    try ledger.forEachStageRun { run, deps, outs in
      var value = run.jsonValue
      value["deps"] = deps.map { ["path": $0.path, "hash": $0.hash ?? "", "size": $0.size ?? 0] }
      value["outs"] = outs.map { ["path": $0.path, "hash": $0.hash ?? "", "size": $0.size ?? 0] }
      try line(try json(value))
    }
  }

  private static func json(_ value: [String: Any]) throws -> String {
    String(
      decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]),
      as: UTF8.self)
  }

  /// A stable UUID (version 4 layout) from a name: OpenLineage wants UUIDs for run ids.
  static func uuid(_ name: String) -> String {
    var bytes = Array(SHA256Hasher.hash(Array(name.utf8)).bytes.prefix(16))
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    let hex = bytes.map { String(format: "%02x", $0) }.joined()
    let h = Array(hex)
    return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
      + String(h[20..<32])
  }
}
