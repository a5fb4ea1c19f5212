import DVBasics
import DVPipeline
import DVStorage

/// What `dv gc` removed (or, with `--dry-run`, would remove).
public struct GCResult: Sendable {
  public var removed: [(id: ObjectID, size: Int64)]
  public var kept: Int
  public var dryRun: Bool
  /// Bytes freed (or that would be).
  public var removedBytes: Int64 { removed.reduce(0) { $0 + $1.size } }
}

extension Workspace {
  /// Removes cached objects that no pointer and no stages.lock entry in the working tree
  /// references (directory manifests keep their files).
  public func collectGarbage(dryRun: Bool) throws -> GCResult {
    let lock = try lockForWriting()
    defer { lock.release() }
    var keep = Set<ObjectID>()
    for (_, record) in try LockFile.load(workspaceRoot: root).stages {
      keep.formUnion(record.deps.map(\.hash))
      keep.formUnion(record.outs.map(\.hash))
    }
    for item in try trackedData() {
      keep.insert(item.hash)
      if item.kind == .dir, cache.contains(item.hash) {
        for entry in try cache.manifest(item.hash).entries { keep.insert(entry.hash) }
      }
    }
    let all = try cache.allObjects()
    let remove = all.filter { !keep.contains($0.id) }
    if !dryRun {
      cache.clearTemporaryFiles()
      try cache.removeUnindexedPacks()
      // The stat cache forgets which objects are cached before any goes, not after: a gc killed
      // halfway must not leave it vouching for an object that is gone (add would skip it).
      if !remove.isEmpty { try state().forgetCachedFlags() }
      try cache.remove(Set(remove.map(\.id)))
    }
    return GCResult(removed: remove, kept: all.count - remove.count, dryRun: dryRun)
  }
}
