import DVBasics
import DVStorage

/// What `dv fsck` found.
public struct FsckResult: Sendable {
  public var checked: Int
  public var bytes: Int64
  /// Corrupt objects and where they were moved.
  public var corrupt: [(id: ObjectID, movedTo: String)]
}

extension Workspace {
  /// Re-hashes every cached object on all cores; a corrupt one is moved aside to
  /// `.pipeline/cache/corrupt/` so it is never served again.
  public func fsck() throws -> FsckResult {
    let lock = try lockForWriting()
    defer { lock.release() }
    let objects = try cache.allObjects()
    let total = objects.reduce(Int64(0)) { $0 + $1.size }
    let bad = Locked<[ObjectID]>([])
    progress.begin("verifying", totalItems: objects.count, totalBytes: total)
    try parallelForEach(objects.count, makeState: { IOBuffer() }) { i, buffer in
      if try !cache.verify(objects[i].id, buffer: buffer, progress: progress) {
        bad.withLock { $0.append(objects[i].id) }
      }
      progress.advance(items: 1, bytes: 0)
    }
    progress.end()
    var corrupt: [(ObjectID, String)] = []
    let found = bad.withLock { $0 }.sorted()
    // Forgotten first, so that an fsck killed halfway leaves no flag vouching for a moved object.
    if !found.isEmpty { try state().forgetCachedFlags() }
    for id in found { corrupt.append((id, try cache.moveAside(id))) }
    return FsckResult(checked: objects.count, bytes: total, corrupt: corrupt)
  }
}
