import DVBasics
import Foundation

/// One version of a file or directory in a lineage tree, and the stage runs around it.
public struct LineageNode: Sendable {
  public var path: String
  public var hash: String
  public var size: Int64?
  public var files: Int?
  /// Upstream: the run that produced this content (at most one). Downstream: the runs that read
  /// it (the latest of each stage).
  public var steps: [LineageStep]
  /// True when the depth limit stopped the walk here.
  public var truncated = false
}

/// A stage run in a lineage tree and the files on its far side (its deps upstream, its outs
/// downstream).
public struct LineageStep: Sendable {
  public var run: StageRunRecord
  public var params: [RecordedArtifact]
  public var nodes: [LineageNode]
}

/// Walks the ledger from some content to what produced it or what was derived from it.
public struct LineageTracer {
  public enum Direction: Sendable { case upstream, downstream }

  let ledger: LineageLedger
  let direction: Direction
  let maxDepth: Int

  public init(ledger: LineageLedger, direction: Direction, maxDepth: Int = 32) {
    self.ledger = ledger
    self.direction = direction
    self.maxDepth = max(1, maxDepth)
  }

  /// The tree below one artifact.
  public func trace(path: String, hash: String, size: Int64?, files: Int?) throws -> LineageNode {
    var visiting = Set<String>()
    return try node(path: path, hash: hash, size: size, files: files, depth: 0, visiting: &visiting)
  }

  private func node(
    path: String, hash: String, size: Int64?, files: Int?, depth: Int, visiting: inout Set<String>
  ) throws -> LineageNode {
    var result = LineageNode(path: path, hash: hash, size: size, files: files, steps: [])
    if depth >= maxDepth {
      result.truncated = true
      return result
    }
    // A content that (through some odd history) leads back to itself is shown once.
    guard visiting.insert(hash + "\u{0}" + path).inserted else { return result }
    defer { visiting.remove(hash + "\u{0}" + path) }
    let runs: [StageRunRecord]
    switch direction {
    case .upstream: runs = try ledger.producer(of: hash, path: path).map { [$0] } ?? []
    case .downstream: runs = try ledger.consumers(of: hash)
    }
    for run in runs {
      let params = try ledger.artifacts(of: run.id, role: "param")
      let far = try ledger.artifacts(of: run.id, role: direction == .upstream ? "dep" : "out")
      var nodes: [LineageNode] = []
      for artifact in far {
        guard let farHash = artifact.hash else { continue }
        nodes.append(
          try node(
            path: artifact.path, hash: farHash, size: artifact.size, files: artifact.files, depth: depth + 1,
            visiting: &visiting))
      }
      result.steps.append(LineageStep(run: run, params: params, nodes: nodes))
    }
    return result
  }
}
