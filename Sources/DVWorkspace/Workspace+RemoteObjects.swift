import DVBasics
import DVLineage
import DVRemotes
import DVStorage
import Foundation

/// The objects one tracked path needs: its own, and for a directory its manifest's files.
struct TrackedObjects {
  var data: TrackedData
  /// The data's object and, when the manifest is in the cache, every file's object.
  var ids: [ObjectID]
  /// False for a directory whose manifest is not in the local cache (its files are unknown).
  var complete: Bool
}

extension Workspace {
  /// The tracked data that `userPaths` select (all of it when empty), as checkout selects it.
  func trackedData(selecting userPaths: [String]) throws -> [TrackedData] {
    let filter = try userPaths.map { try resolver.resolve($0) }
    let all = try trackedData()
    for target in filter where !all.contains(where: { $0.path.isInside(target) || target.isInside($0.path) }) {
      throw WorkspaceError.notTracked(target.value)
    }
    return all.filter { item in
      filter.isEmpty || filter.contains(where: { item.path.isInside($0) || $0.isInside(item.path) })
    }
  }

  /// The objects each item needs, as far as the local cache knows.
  func objects(of items: [TrackedData]) throws -> [TrackedObjects] {
    try items.map { item in
      guard item.kind == .dir else { return TrackedObjects(data: item, ids: [item.hash], complete: true) }
      guard cache.contains(item.hash) else { return TrackedObjects(data: item, ids: [item.hash], complete: false) }
      let entries = try cache.manifest(item.hash).entries
      return TrackedObjects(data: item, ids: [item.hash] + entries.map(\.hash), complete: true)
    }
  }

  /// Moves a verified download into the cache (write-once, read-only); the temporary file is
  /// linked where the filesystem allows, else copied.
  func commitDownload(id hex: String, path: String) throws {
    guard let id = ObjectID(hex: Array(hex.utf8)), let stat = try FileStat.of(path) else { return }
    let wasCached = cache.contains(id)
    _ = try cache.ingest(file: path, stat: stat, known: id, types: [.hardlink, .copy], buffer: IOBuffer(size: 1 << 16))
    // The transfer engine hashed these bytes before handing them over, so checkout need not hash
    // them again; an object that was cached before keeps being checked.
    if !wasCached { cache.noteVerified(id) }
  }

  /// Puts objects read from a pack (already verified against their ids) into the cache, small
  /// ones together as one pack.
  func storeDownload(_ objects: [(id: String, bytes: [UInt8])]) throws {
    try cache.store(
      verified: objects.compactMap { object in
        ObjectID(hex: Array(object.id.utf8)).map { ($0, object.bytes) }
      })
  }

  /// Downloads the objects of `ids` that are not cached; directory manifests among them are
  /// read afterwards and their missing files downloaded too.
  func download(_ ids: [ObjectID], manifests: Set<ObjectID>, engine: TransferEngine) throws -> TransferSummary {
    let temporary = pipelineDirectory + "/tmp"
    var summary = TransferSummary()
    let wanted = Array(Set(ids))
    let missing = wanted.filter { !cache.contains($0) }
    summary.alreadyThere += wanted.count - missing.count
    summary.merge(
      try engine.download(missing.map(\.hex), into: temporary, commit: commitDownload, store: storeDownload))
    var files = Set<ObjectID>()
    for manifest in manifests where cache.contains(manifest) {
      for entry in try cache.manifest(manifest).entries { files.insert(entry.hash) }
    }
    let missingFiles = files.filter { !cache.contains($0) }
    summary.alreadyThere += files.count - missingFiles.count
    summary.merge(
      try engine.download(missingFiles.map(\.hex), into: temporary, commit: commitDownload, store: storeDownload))
    return summary
  }

  /// The run ids on the remote (validated names of `runs/<id>.json`).
  func remoteRunIDs(_ engine: TransferEngine) throws -> Set<String> {
    var ids = Set<String>()
    try engine.remote.list(prefix: TransferEngine.runsPrefix) { key, _ in
      let name = key.dropFirst(TransferEngine.runsPrefix.count)
      if name.hasSuffix(".json") {
        let id = String(name.dropLast(".json".count))
        if LineageLedger.isRunID(id) { ids.insert(id) }
      }
      return true
    }
    return ids
  }
}

/// A transfer's failures as one error, or nothing when all went well.
extension TransferSummary {
  /// Throws `RemoteConfigError.transferFailed` naming the first failure, when any.
  public func throwIfFailed() throws {
    guard let first = failed.first else { return }
    throw RemoteConfigError.transferFailed(count: failed.count, first: "\(first.error)")
  }
}
