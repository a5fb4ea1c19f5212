import DVBasics

#if canImport(Glibc)
  import Glibc
#endif

/// What making one tracked path match its recorded hash involves.
public struct CheckoutPlan: Sendable {
  public var path: RelativePath
  /// Files to (re)write: path relative to the workspace, object, executable bit.
  public var writes: [(path: RelativePath, id: ObjectID, exec: Bool)] = []
  /// Files to delete (their content is in the cache, or `force` allows it).
  public var deletes: [RelativePath] = []
  /// Workspace files that would be overwritten or deleted although their content is not cached.
  public var unsafe: [RelativePath] = []
  /// Files whose objects are missing from the cache (they are left as they are).
  public var missing: [(path: RelativePath, id: ObjectID)] = []
  /// True when a tracked directory with no files is missing and must be created.
  public var createsEmptyDirectory = false
  /// True when the workspace already matches.
  public var isUpToDate: Bool {
    writes.isEmpty && deletes.isEmpty && unsafe.isEmpty && missing.isEmpty && !createsEmptyDirectory
  }
}

/// Places cached data in the workspace, refusing to destroy anything the cache does not hold.
public struct DataCheckout: Sendable {
  public let builder: DataBuilder

  public init(builder: DataBuilder) { self.builder = builder }

  private var cache: ObjectCache { builder.cache }

  /// Compares the workspace at `path` with the recorded `hash` of `kind`.
  public func plan(_ path: RelativePath, kind: DataKind, hash: ObjectID) throws -> CheckoutPlan {
    var plan = CheckoutPlan(path: path)
    // Writing through a symlinked directory could reach outside the workspace.
    try path.requireNoSymlinkedAncestor(under: builder.workspaceRoot)
    let absolute = path.absolute(under: builder.workspaceRoot)
    let existing = try FileStat.of(absolute)

    switch kind {
    case .file:
      if let existing {
        if existing.kind == .directory {
          try planRemovalOfDirectory(path, into: &plan)
        } else if let current = try builder.build(path, mode: .inspect) {
          if current.hash == hash { return plan }
          if !cache.contains(current.hash) { plan.unsafe.append(path) }
        }
      }
      if cache.contains(hash) {
        plan.writes.append((path, hash, false))
      } else {
        plan.missing.append((path, hash))
      }
      return plan

    case .dir:
      guard cache.contains(hash) else {
        plan.missing.append((path, hash))
        return plan
      }
      let manifest = try cache.manifest(hash)
      if manifest.entries.isEmpty && existing?.kind != .directory { plan.createsEmptyDirectory = true }
      var current: [String: TreeEntry] = [:]
      if let existing {
        if existing.kind != .directory {
          if let built = try builder.build(path, mode: .inspect), !cache.contains(built.hash) {
            plan.unsafe.append(path)
          } else {
            plan.deletes.append(path)
          }
        } else {
          // The manifest of what is there is built only when it differs from the record.
          let built = try builder.build(path, mode: .inspect, manifestUnless: hash)
          if built?.hash == hash { return plan }
          for entry in built?.manifest?.entries ?? [] { current[entry.path] = entry }
        }
      }
      for entry in manifest.entries {
        let target = path.appending(entry.path)
        let here = current.removeValue(forKey: entry.path)
        if let here, here.hash == entry.hash, here.exec == entry.exec { continue }
        if let here, here.hash != entry.hash, !cache.contains(here.hash) { plan.unsafe.append(target) }
        if cache.contains(entry.hash) {
          plan.writes.append((target, entry.hash, entry.exec))
        } else {
          plan.missing.append((target, entry.hash))
        }
      }
      for (rel, entry) in current.sorted(by: { utf8Precedes($0.key, $1.key) }) {
        let target = path.appending(rel)
        if cache.contains(entry.hash) { plan.deletes.append(target) } else { plan.unsafe.append(target) }
      }
      return plan
    }
  }

  private func planRemovalOfDirectory(_ path: RelativePath, into plan: inout CheckoutPlan) throws {
    guard let built = try builder.build(path, mode: .inspect, wantManifest: true) else { return }
    for entry in built.manifest?.entries ?? [] {
      let target = path.appending(entry.path)
      if cache.contains(entry.hash) { plan.deletes.append(target) } else { plan.unsafe.append(target) }
    }
  }

  /// Carries out a plan. Unsafe paths are deleted or overwritten only with `force` (the caller
  /// refuses otherwise). Returns how many files were written.
  @discardableResult
  public func apply(_ plan: CheckoutPlan, types: [LinkType], force: Bool) throws -> Int {
    let root = builder.workspaceRoot
    var deletes = plan.deletes
    if force {
      // Unsafe files that are not rewritten below are removed.
      let written = Set(plan.writes.map(\.path))
      deletes += plan.unsafe.filter { !written.contains($0) }
    }
    for path in deletes {
      let absolute = path.absolute(under: root)
      try FileSystem.removeTree(absolute)
      FileSystem.removeEmptyDirectories(
        from: path.parent.absolute(under: root), upTo: plan.path.parent.absolute(under: root))
    }
    if plan.createsEmptyDirectory { try FileSystem.createDirectory(plan.path.absolute(under: root)) }
    var parents = Set<RelativePath>()
    for w in plan.writes { parents.insert(w.path.parent) }
    for dir in parents.sorted() {
      let absolute = dir.absolute(under: root)
      // A file standing where a directory must go was planned for deletion above, or is unsafe.
      try FileSystem.createDirectory(absolute)
    }
    let writes = plan.writes
    let totalBytes = writes.reduce(Int64(0)) { acc, w in acc + (cache.size(of: w.id) ?? 0) }
    let progress = builder.progress
    progress.begin("checking out", totalItems: writes.count, totalBytes: totalBytes)
    defer { progress.end() }
    // Workers take whole directories (large ones in pieces): creating files in one directory
    // from two threads serialises on its lock, and on ext4 each creation may hold it a while.
    var batches: [Range<Int>] = []
    var start = 0
    for i in stride(from: 1, through: writes.count, by: 1)
    where i == writes.count || writes[i].path.parent != writes[start].path.parent
      || i - start == 256
    {
      batches.append(start..<i)
      start = i
    }
    try parallelForEach(batches.count, makeState: { IOBuffer() }) { b, buffer in
      for w in writes[batches[b]] {
        let absolute = w.path.absolute(under: root)
        if let existing = try FileStat.of(absolute, followLinks: false), existing.kind == .directory {
          try FileSystem.removeTree(absolute)
        }
        try cache.materialize(
          w.id, at: absolute, executable: w.exec, types: types, buffer: buffer, progress: progress)
        progress.advance(items: 1, bytes: 0)
      }
    }
    return writes.count
  }
}
