import DVBasics
import DVLineage
import DVStorage

/// What `dv add` recorded for one target.
public struct AddedData: Sendable {
  public var path: RelativePath
  public var pointer: RelativePath
  public var kind: DataKind
  public var hash: ObjectID
  public var size: Int64
  public var files: Int?
  /// False when the pointer already recorded exactly this content.
  public var changed: Bool
  /// The .gitignore that gained an entry, if any.
  public var gitignore: RelativePath?
}

/// What `dv add` did.
public struct AddResult: Sendable {
  public var added: [AddedData]
  /// False in a `--no-scm` workspace, where there is nothing to `git add`.
  public var usesGit: Bool
}

extension Workspace {
  /// Hashes files or directories into the cache and writes their `.dv` pointers.
  ///
  /// Every target is validated before anything is written. Objects are made durable with one
  /// sync before any pointer that references them is written (atomically).
  public func add(_ userPaths: [String]) throws -> AddResult {
    let lock = try lockForWriting()
    defer { lock.release() }
    cache.clearTemporaryFiles()
    let targets = try validateAddTargets(userPaths)
    let builder = try builder()
    var results: [AddedData] = []
    for target in targets {
      guard let built = try builder.build(target, mode: .ingest(config.cacheTypes)) else {
        throw PathError.missing(target.value)
      }
      try cache.sync()
      let pointer = PointerFile(for: built)
      let previous = try? PointerFile.load(pointer.location, root: root)
      let changed = previous != pointer
      if changed {
        try FailPoint.hit("add:before-pointer")
        try FileSystem.writeAtomically(pointer.text, to: pointer.location.absolute(under: root))
      }
      let gitignore = config.noSCM ? nil : try GitIgnoreEntries.add(target, root: root)
      results.append(
        AddedData(
          path: target, pointer: pointer.location, kind: built.kind, hash: built.hash, size: built.size,
          files: built.files, changed: changed, gitignore: gitignore))
    }
    try recordAdd(try unrecorded(results))
    return AddResult(added: results, usesGit: !config.noSCM)
  }

  /// The added data the ledger must hear of: what changed, and what an earlier add killed
  /// between its pointer and its ledger row left unrecorded (its rerun finds the pointer
  /// already written, so "changed" alone would leave the data without a producer for good).
  private func unrecorded(_ results: [AddedData]) throws -> [AddedData] {
    // Without a ledger nothing was recorded yet.
    guard results.contains(where: { !$0.changed }), FileSystem.exists(pipelineDirectory + "/" + LineageLedger.fileName)
    else { return results }
    let ledger = try openLedger()
    return try results.filter {
      try $0.changed || ledger.producer(of: $0.hash.description, path: $0.path.value) == nil
    }
  }

  /// A `dv add` that changed something is a run in the ledger, with one stage run named
  /// `dv add` whose outs are the added data.
  private func recordAdd(_ added: [AddedData]) throws {
    if added.isEmpty { return }
    let ledger = try openLedger()
    let run = try beginLedgerRun(ledger, command: "add")
    let stageRun = try ledger.beginStageRun(
      run: run, stage: "dv add", action: "dv add " + added.map(\.path.value).joined(separator: " "), pluginKind: nil,
      pluginVersion: nil, key: nil)
    try ledger.finishStageRun(
      stageRun, outcome: .ran, exitCode: 0,
      outs: added.map {
        RecordedArtifact(path: $0.path.value, hash: $0.hash.description, size: $0.size, files: $0.files)
      })
    try ledger.finishRun(run, status: .succeeded)
  }

  private func validateAddTargets(_ userPaths: [String]) throws -> [RelativePath] {
    let tracked = try pointers()
    var targets: [RelativePath] = []
    for userPath in userPaths {
      let path = try resolver.resolve(userPath)
      if path == .root { throw WorkspaceError.cannotTrackRoot }
      // The pointer would be written, and the data read, through the link.
      try path.requireNoSymlinkedAncestor(under: root)
      let absolute = path.absolute(under: root)
      guard let lstat = try FileStat.of(absolute, followLinks: false) else { throw PathError.missing(userPath) }
      if lstat.kind == .symlink { throw WorkspaceError.targetIsSymlink(userPath) }
      if lstat.kind == .other { throw StorageError.unsupportedFileType(userPath) }
      if path.basename.hasSuffix(PointerFile.suffix) {
        throw WorkspaceError.targetIsPointer(userPath)
      }
      for pointer in tracked where pointer.path != path {
        if path.isInside(pointer.path) {
          throw WorkspaceError.insideTrackedDirectory(userPath, trackedBy: pointer.location.value)
        }
        if pointer.path.isInside(path) || pointer.location.isInside(path) {
          throw WorkspaceError.containsTrackedData(userPath, pointer: pointer.location.value)
        }
      }
      if try ignoreRules().isIgnored(path.value, isDirectory: lstat.kind == .directory) {
        throw WorkspaceError.ignoredTarget(userPath)
      }
      if !targets.contains(path) { targets.append(path) }
    }
    return targets
  }
}
