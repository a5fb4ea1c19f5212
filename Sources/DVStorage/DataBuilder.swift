import DVBasics

/// Whether a tracked path is one file or a directory of files.
public enum DataKind: String, Sendable {
  case file
  case dir
}

/// The hash and shape of a file or directory as it is in the workspace now.
public struct BuiltData: Sendable {
  public var path: RelativePath
  public var kind: DataKind
  /// The file's hash, or the directory manifest's hash.
  public var hash: ObjectID
  /// Total bytes.
  public var size: Int64
  /// Number of files (directories only).
  public var files: Int?
  /// The directory's manifest, when it had to be built (nil when the stat cache already knew
  /// the directory's hash).
  public var manifest: TreeManifest?
}

/// Hashes workspace data (for `status`) and puts it into the cache (for `add`), using the stat
/// cache so that unchanged files are never read again.
public final class DataBuilder: @unchecked Sendable {
  public let workspaceRoot: String
  public let scanner: DirectoryScanner
  public let state: StateCache
  public let cache: ObjectCache
  public let progress: ProgressReporter
  /// Whether `.inspect` results are remembered by path for this builder's lifetime, so data
  /// looked at twice (a pointer's data that is also a stage's dep) is scanned once. Only for
  /// read-only checks: nothing may change the workspace while such a builder is in use.
  public var remembersInspections = false
  private let inspected = Locked<[RelativePath: BuiltData]>([:])

  public init(
    workspaceRoot: String, ignore: IgnoreRules, state: StateCache, cache: ObjectCache, progress: ProgressReporter
  ) {
    self.workspaceRoot = workspaceRoot
    scanner = DirectoryScanner(workspaceRoot: workspaceRoot, ignore: ignore)
    self.state = state
    self.cache = cache
    self.progress = progress
  }

  /// What hashing should do with the content besides naming it.
  public enum Mode: Sendable {
    /// Only compute hashes (status).
    case inspect
    /// Also put content into the cache with these strategies (add).
    case ingest([LinkType])
  }

  /// Hashes `path` as it is now; nil when nothing is there. With `.ingest`, every object ends up
  /// in the cache (not yet synced: call `cache.sync()` before writing a pointer).
  ///
  /// The manifest of a directory is built only when `wantManifest`, or when the directory's hash
  /// turns out to differ from `manifestUnless` (status wants the file list only of changed data).
  public func build(
    _ path: RelativePath, mode: Mode, wantManifest: Bool = false, manifestUnless: ObjectID? = nil
  ) throws -> BuiltData? {
    let remembering: Bool
    if remembersInspections, case .inspect = mode { remembering = true } else { remembering = false }
    if remembering, !wantManifest, let known = inspected.withLock({ $0[path] }),
      manifestUnless == nil || manifestUnless == known.hash
    {
      return known
    }
    let absolute = path.absolute(under: workspaceRoot)
    guard let stat = try FileStat.of(absolute) else { return nil }
    var built: BuiltData
    switch stat.kind {
    case .file: built = try buildFile(path, absolute: absolute, stat: stat, mode: mode)
    case .directory:
      built = try buildDirectory(path, mode: mode, wantManifest: wantManifest, manifestUnless: manifestUnless)
    default: throw StorageError.unsupportedFileType(path.value)
    }
    if remembering {
      let result = built
      built.manifest = nil
      inspected.withLock { [built] in $0[path] = built }
      return result
    }
    return built
  }

  private func buildFile(_ path: RelativePath, absolute: String, stat: FileStat, mode: Mode) throws -> BuiltData {
    let known = try state.hash(for: stat)
    let readStart = FileClock.nowNs()
    let buffer = IOBuffer()
    let id: ObjectID
    var finalStat = stat
    switch mode {
    case .inspect:
      if let known {
        id = known
      } else {
        progress.begin("hashing", totalItems: 1, totalBytes: stat.size)
        defer { progress.end() }
        id = try SHA256Hasher.hashFile(absolute, buffer: buffer.bytes, progress: progress).0
        progress.advance(items: 1, bytes: 0)
      }
    case .ingest(let types):
      progress.begin("adding", totalItems: 1, totalBytes: stat.size)
      defer { progress.end() }
      let result = try cache.ingest(
        file: absolute, stat: stat, known: known, types: types, buffer: buffer, progress: progress)
      progress.advance(items: 1, bytes: 0)
      id = result.id
      if result.replacedWorkspaceFile, let restat = try FileStat.of(absolute) { finalStat = restat }
    }
    if known == nil || finalStat != stat {
      try state.record(files: [(finalStat, id)], readStartNs: known == nil ? readStart : .max)
    }
    return BuiltData(path: path, kind: .file, hash: id, size: stat.size, files: nil, manifest: nil)
  }

  /// The fingerprint of a directory's current stat data (see `TreeState.fingerprint`).
  func fingerprint(_ files: [ScannedFile]) -> ObjectID {
    var hasher = SHA256Hasher()
    hasher.update(scanner.ignore.digest.bytes)
    // One buffer, one digest update: per-file updates and allocations would dominate here.
    var buffer: [UInt8] = []
    buffer.reserveCapacity(files.count * 64)
    for f in files {
      buffer.append(contentsOf: f.path.utf8)
      buffer.append(0)
      withUnsafeBytes(of: f.stat.device.littleEndian) { buffer.append(contentsOf: $0) }
      withUnsafeBytes(of: f.stat.inode.littleEndian) { buffer.append(contentsOf: $0) }
      withUnsafeBytes(of: f.stat.size.littleEndian) { buffer.append(contentsOf: $0) }
      withUnsafeBytes(of: f.stat.mtimeNs.littleEndian) { buffer.append(contentsOf: $0) }
      buffer.append(f.stat.isExecutable ? 1 : 0)
    }
    hasher.update(buffer)
    return hasher.finalize()
  }

  private func buildDirectory(
    _ path: RelativePath, mode: Mode, wantManifest: Bool, manifestUnless: ObjectID?
  ) throws -> BuiltData {
    var files = try scanner.scan(path)
    let fp = fingerprint(files)
    let remembered = try state.tree(path)
    let ingesting: [LinkType]?
    if case .ingest(let types) = mode { ingesting = types } else { ingesting = nil }

    if !wantManifest, let remembered, remembered.fingerprint == fp, let hash = remembered.hash,
      manifestUnless == nil || manifestUnless == hash,
      ingesting == nil || (remembered.cached && cache.contains(hash))
    {
      let size = files.reduce(0) { $0 + $1.stat.size }
      return BuiltData(path: path, kind: .dir, hash: hash, size: size, files: files.count, manifest: nil)
    }

    // Reuse the hashes of files whose stat is unchanged (looked up by device and inode).
    let snapshot = try state.snapshot(path)
    let knownEntries = files.map { snapshot.entry(for: $0.stat) }
    let known = knownEntries.map { $0?.hash }
    let readStart = FileClock.nowNs()
    let base = path.absolute(under: workspaceRoot)
    var hashes = [ObjectID?](repeating: nil, count: files.count)
    var restats = [FileStat?](repeating: nil, count: files.count)
    // Status hashes what it does not know; add also caches what is not known to be cached.
    let todo = (0..<files.count).filter { i in
      known[i] == nil || (ingesting != nil && knownEntries[i]?.cached != true)
    }
    let todoBytes = todo.reduce(Int64(0)) { $0 + files[$1].stat.size }
    progress.begin(ingesting == nil ? "hashing" : "adding", totalItems: todo.count, totalBytes: todoBytes)
    try hashes.withUnsafeMutableBufferPointer { hashesOut in
      try restats.withUnsafeMutableBufferPointer { restatsOut in
        let hashesOut = UnsafeSendableBox(hashesOut)
        let restatsOut = UnsafeSendableBox(restatsOut)
        try parallelForEach(todo.count, makeState: { IOBuffer() }) { k, buffer in
          let i = todo[k]
          let file = files[i]
          let absolute = base + "/" + file.path
          if let types = ingesting {
            let result = try cache.ingest(
              file: absolute, stat: file.stat, known: known[i], types: types, buffer: buffer, progress: progress)
            hashesOut.value[i] = result.id
            if result.replacedWorkspaceFile { restatsOut.value[i] = try FileStat.of(absolute) }
          } else {
            hashesOut.value[i] = try SHA256Hasher.hashFile(absolute, buffer: buffer.bytes, progress: progress).0
          }
          progress.advance(items: 1, bytes: 0)
        }
      }
    }
    progress.end()

    var entries: [TreeEntry] = []
    entries.reserveCapacity(files.count)
    var snapshotEntries: [SnapshotEntry] = []
    snapshotEntries.reserveCapacity(files.count)
    var allSettled = true
    for i in 0..<files.count {
      let id = hashes[i] ?? known[i]!
      entries.append(
        TreeEntry(path: files[i].path, hash: id, size: files[i].stat.size, exec: files[i].stat.isExecutable))
      if let restat = restats[i] { files[i].stat = restat }
      // Entries reused from the snapshot were settled when recorded; new ones must be now.
      if known[i] != nil || FileClock.isSettled(mtimeNs: files[i].stat.mtimeNs, readStartNs: readStart) {
        let cached = ingesting != nil || knownEntries[i]?.cached == true
        snapshotEntries.append(SnapshotEntry(stat: files[i].stat, hash: id, cached: cached))
      } else {
        allSettled = false
      }
    }
    let manifest = TreeManifest(sortedEntries: entries)
    let json = manifest.canonicalJSON()
    let id: ObjectID
    if ingesting != nil {
      id = try cache.store(json)
    } else {
      id = SHA256Hasher.hash(json)
    }
    let newFingerprint = allSettled ? fingerprint(files) : nil
    try state.record(
      tree: path, fingerprint: newFingerprint, hash: id, entries: snapshotEntries, previous: snapshot)
    return BuiltData(
      path: path, kind: .dir, hash: id, size: manifest.totalSize, files: files.count, manifest: manifest)
  }
}
