import DVBasics
import DVPipeline
import DVRemotes
import DVStorage
import Foundation

/// What `dv gc --remote` deleted (or, with `--dry-run`, would delete).
public struct RemoteGCResult: Sendable {
  /// One pack deleted (all its objects unreferenced, an orphan without an index, or replaced by
  /// a repack).
  public struct Pack: Sendable {
    public var name: String
    public var size: Int64
    /// Objects it held that nothing references (they are gone with it).
    public var garbage: Int
    /// Why it goes: "unreferenced", "no index" or "repacked".
    public var reason: String
  }

  /// The remote's name.
  public var remote: String
  /// Loose object ids (hex) with their sizes, sorted.
  public var removed: [(id: String, size: Int64)]
  /// Packs deleted, sorted by name.
  public var removedPacks: [Pack] = []
  /// Referenced objects rewritten into new packs by `--repack`.
  public var repackedObjects = 0
  /// Packs the repack wrote.
  public var newPacks = 0
  /// Referenced objects on the remote.
  public var kept: Int
  public var dryRun: Bool
  /// Unreferenced objects removed, loose and in packs.
  public var removedObjects: Int { removed.count + removedPacks.reduce(0) { $0 + $1.garbage } }
  /// Bytes freed by deleting loose objects and packs (before what a repack adds back).
  public var removedBytes: Int64 { removed.reduce(0) { $0 + $1.size } + removedPacks.reduce(0) { $0 + $1.size } }
}

extension Workspace {
  /// Deletes the objects on a remote that nothing in the working tree references (pointers,
  /// stages.lock deps and outs, and the files of their directory manifests): unreferenced loose
  /// objects, packs none of whose objects is referenced, and packs without an index (left by an
  /// interrupted push). With `repack`, packs that hold garbage, duplicates, or that are small
  /// are rewritten with just their referenced objects (docs/formats.md §7). Destructive and
  /// shared: it needs `confirmed` unless `dryRun`.
  public func collectRemoteGarbage(
    remote name: String, dryRun: Bool, confirmed: Bool, repack: Bool = false,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> RemoteGCResult {
    let engine = try transferEngine(remote: name, jobs: nil, environment: environment)
    if !dryRun && !confirmed {
      throw RemoteConfigError.confirmationNeeded(
        "`dv gc --remote` deletes objects from '\(name)' that other branches or teammates may still need")
    }
    let lock = try lockForWriting()
    defer { lock.release() }
    let keepHex = try referencedObjects(engine)
    let loose = try engine.remoteObjects()
    let remove = loose.filter { !keepHex.contains($0.key) }.map { (id: $0.key, size: $0.value) }.sorted {
      $0.id < $1.id
    }
    var result = RemoteGCResult(
      remote: try remoteSettings(named: name).name, removed: remove, kept: 0, dryRun: dryRun)

    // Packs: whole ones without a referenced object, orphans, and with `repack` the rewritable.
    let catalog = try engine.packCatalog()
    let indexes = catalog?.indexes ?? [:]
    var packSizes: [String: Int64] = [:]
    try engine.retrying {
      try engine.remote.list(prefix: PackFormat.prefix) { key, size in
        if let pack = PackFormat.packName(fromPackKey: key) { packSizes[pack] = size }
        return true
      }
    }
    var storedReferenced = Set(loose.keys).intersection(keepHex)
    var rewrite: [String] = []
    var seen = Set(loose.keys)
    let smallPacks = indexes.values.filter { $0.packSize < 8 << 20 }.count
    for name in indexes.keys.sorted() {
      let index = indexes[name]!
      let referenced = index.entries.filter { keepHex.contains($0.id) }
      let size = packSizes[name] ?? index.packSize
      let duplicates = index.entries.contains { seen.contains($0.id) }
      for entry in index.entries { seen.insert(entry.id) }
      storedReferenced.formUnion(referenced.map(\.id))
      if referenced.isEmpty {
        result.removedPacks.append(.init(name: name, size: size, garbage: index.entries.count, reason: "unreferenced"))
      } else if repack
        && (referenced.count < index.entries.count || duplicates || (index.packSize < 8 << 20 && smallPacks > 1))
      {
        rewrite.append(name)
        result.removedPacks.append(
          .init(name: name, size: size, garbage: index.entries.count - referenced.count, reason: "repacked"))
      }
    }
    for (name, size) in packSizes where indexes[name] == nil {
      result.removedPacks.append(.init(name: name, size: size, garbage: 0, reason: "no index"))
    }
    result.removedPacks.sort { $0.name < $1.name }
    result.kept = storedReferenced.count

    if !rewrite.isEmpty {
      // The referenced objects of the packs to rewrite, in their pack order, taken only from
      // packs (a loose copy or one in a pack that stays needs no new copy).
      let staying = Set(indexes.keys).subtracting(rewrite)
      var elsewhere = Set(loose.keys)
      for name in staying { elsewhere.formUnion(indexes[name]!.entries.map(\.id)) }
      var ids: [String] = []
      var taken = Set<String>()
      for name in rewrite {
        for entry in indexes[name]!.entries.sorted(by: { $0.offset < $1.offset })
        where keepHex.contains(entry.id) && !elsewhere.contains(entry.id) && taken.insert(entry.id).inserted {
          ids.append(entry.id)
        }
      }
      result.repackedObjects = ids.count
      if !dryRun {
        result.newPacks = try repackObjects(ids, engine: engine)
      }
    }
    if dryRun { return result }

    let failures = Locked<[Error]>([])
    try parallelForEach(remove.count, workers: engine.jobs) { i in
      do {
        try engine.retrying { try engine.remote.delete(TransferEngine.key(ofObject: remove[i].id)) }
      } catch {
        failures.withLock { $0.append(error) }
      }
    }
    // The index before its pack: a reader never sees an index whose pack is gone.
    let packs = result.removedPacks
    try parallelForEach(packs.count, workers: engine.jobs) { i in
      do {
        try engine.retrying { try engine.remote.delete(PackFormat.indexKey(packs[i].name)) }
        catalog?.remove(packs[i].name)
        try engine.retrying { try engine.remote.delete(PackFormat.packKey(packs[i].name)) }
      } catch {
        failures.withLock { $0.append(error) }
      }
    }
    if let first = failures.withLock({ $0.first }) {
      throw RemoteConfigError.transferFailed(count: failures.withLock { $0.count }, first: "\(first)")
    }
    return result
  }

  /// The ids (hex) of every object the working tree references: pointers, stages.lock deps and
  /// outs, and the files of directory manifests (manifests the cache lacks are fetched).
  private func referencedObjects(_ engine: TransferEngine) throws -> Set<String> {
    let items = try trackedData()
    var keep = Set<ObjectID>(items.map(\.hash))
    for (_, record) in try LockFile.load(workspaceRoot: root).stages {
      keep.formUnion(record.deps.map(\.hash))
      keep.formUnion(record.outs.map(\.hash))
    }
    let manifests = Set(items.filter { $0.kind == .dir }.map(\.hash))
    let missingManifests = manifests.filter { !cache.contains($0) }
    if !missingManifests.isEmpty {
      let present = Set(missingManifests.map(\.hex)).subtracting(
        try engine.missingOnRemote(missingManifests.map(\.hex)))
      try engine.download(
        Array(present), into: pipelineDirectory + "/tmp", commit: commitDownload, store: storeDownload
      ).throwIfFailed()
    }
    for manifest in manifests where cache.contains(manifest) {
      keep.formUnion(try cache.manifest(manifest).entries.map(\.hash))
    }
    return Set(keep.map(\.hex))
  }

  /// Writes `ids` (objects now in packs about to be deleted) into new packs: each is fetched
  /// into the local cache if it is not there, then uploaded as a push would. Returns how many
  /// packs were written; throws when any object could not be rewritten (nothing is deleted then).
  private func repackObjects(_ ids: [String], engine: TransferEngine) throws -> Int {
    let objectIDs = ids.compactMap { ObjectID(hex: Array($0.utf8)) }
    let absent = objectIDs.filter { !cache.contains($0) }.map(\.hex)
    try engine.download(absent, into: pipelineDirectory + "/tmp", commit: commitDownload, store: storeDownload)
      .throwIfFailed()
    if !absent.isEmpty { try cache.sync() }
    var items: [UploadItem] = []
    for id in objectIDs {
      guard let (path, size) = try cache.looseFile(for: id) else {
        throw StorageError.missingObject(id, forPath: id.short)
      }
      items.append(UploadItem(id: id.hex, path: path, size: size))
    }
    let before = Set(engine.catalog?.indexes.keys.map { $0 } ?? [])
    try engine.upload(items, missing: Set(ids)).throwIfFailed()
    let after = Set(engine.catalog?.indexes.keys.map { $0 } ?? [])
    return after.subtracting(before).count
  }
}
