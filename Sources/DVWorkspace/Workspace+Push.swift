import DVBasics
import DVLineage
import DVRemotes
import DVStorage
import Foundation

/// What `dv push` did.
public struct PushResult: Sendable {
  /// The remote's name.
  public var remote: String
  public var summary: TransferSummary
  /// Run records uploaded.
  public var runRecords: Int
  /// Tracked paths whose data is not (fully) in the local cache, so it could not be pushed.
  public var notCached: [String]
}

extension Workspace {
  /// Uploads what the working tree references (pointers and stages.lock outs; with `targets`
  /// only those), directory manifests with their files, and the run records the remote lacks.
  /// With `runCache`, also the cached outputs those records name, so that other workspaces can
  /// restore them instead of running.
  public func push(
    _ targets: [String] = [], remote name: String? = nil, jobs: Int? = nil, runCache: Bool = false,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> PushResult {
    let engine = try transferEngine(remote: name, jobs: jobs, environment: environment)
    let remoteName = try remoteSettings(named: name).name
    var ids: [ObjectID] = []
    var owner: [ObjectID: String] = [:]
    var notCached: [String] = []
    for tracked in try objects(of: trackedData(selecting: targets)) {
      if !tracked.complete { notCached.append(tracked.data.path.value) }
      ids += tracked.ids
      for id in tracked.ids where owner[id] == nil { owner[id] = tracked.data.path.value }
    }
    if runCache && FileSystem.exists(pipelineDirectory + "/" + LineageLedger.fileName) {
      // Only what is cached: run-cache outputs that were since collected are skipped quietly.
      for out in try openLedger().runCacheOutputs() {
        guard let id = out.hash.flatMap(ObjectID.init), cache.contains(id) else { continue }
        ids.append(id)
        if out.files != nil {
          ids += try cache.manifest(id).entries.map(\.hash).filter { cache.contains($0) }
        }
      }
    }
    // Plan first, so that only the objects the remote lacks are looked at on disk.
    let missing = try engine.missingOnRemote(ids.map(\.hex))
    var items: [UploadItem] = []
    var seen = Set<ObjectID>()
    for id in ids where missing.contains(id.hex) && seen.insert(id).inserted {
      let path = cache.path(for: id)
      guard let stat = try FileStat.of(path) else {
        if let path = owner[id], !notCached.contains(path) { notCached.append(path) }
        continue
      }
      items.append(UploadItem(id: id.hex, path: path, size: stat.size))
    }
    var summary = try engine.upload(items, missing: missing)
    summary.alreadyThere = Set(ids).count - items.count
    let runs = try pushRunRecords(engine, failures: &summary.failed)
    return PushResult(remote: remoteName, summary: summary, runRecords: runs, notCached: notCached)
  }

  /// Uploads finished runs the remote lacks as `runs/<id>.json`; returns how many went up and
  /// adds the ones that failed to `failures`.
  private func pushRunRecords(_ engine: TransferEngine, failures: inout [(id: String, error: Error)]) throws -> Int {
    guard FileSystem.exists(pipelineDirectory + "/" + LineageLedger.fileName) else { return 0 }
    let ledger = try openLedger()
    let present = try remoteRunIDs(engine)
    let todo = try ledger.finishedRunIDs().filter { !present.contains($0) }
    guard !todo.isEmpty else { return 0 }
    let temporary = pipelineDirectory + "/tmp"
    try FileSystem.createDirectory(temporary)
    let failed = Locked<[(id: String, error: Error)]>([])
    try parallelForEach(todo.count, workers: engine.jobs) { i in
      let key = TransferEngine.runsPrefix + todo[i] + ".json"
      let file = temporary + "/run.\(getpid()).\(todo[i]).json"
      defer { try? FileSystem.removeFile(file) }
      do {
        let bytes = try ledger.exportRun(todo[i])
        try FileSystem.writeAtomically(bytes, to: file)
        try engine.retrying {
          try engine.remote.upload(from: file, size: Int64(bytes.count), sha256: nil, to: key, progress: { _ in })
        }
      } catch {
        failed.withLock { $0.append((key, error)) }
      }
    }
    let runFailures = failed.withLock { $0 }
    failures += runFailures
    return todo.count - runFailures.count
  }
}
