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
    // Push takes no writer lock: only the leftovers of dead processes (a killed push's pack) go.
    removeAbandonedWorkFiles()
    var ids: [ObjectID] = []
    var owner: [ObjectID: String] = [:]
    var notCached: [String] = []
    var manifests = Set<ObjectID>()
    let selected = try objects(of: trackedData(selecting: targets))
    // A directory's manifest goes up only after all its files did (below), so a manifest on the
    // remote means its files are there: such directories need one existence check, not a
    // listing of every object (what makes a no-op push of many files cheap).
    let directories = selected.filter { $0.data.kind == .dir && $0.complete }.map(\.data.hash)
    let manifestsMissing = directories.isEmpty ? [] : try engine.missingOnRemote(directories.map(\.hex))
    for tracked in selected {
      if !tracked.complete { notCached.append(tracked.data.path.value) }
      if tracked.data.kind == .dir && tracked.complete {
        manifests.insert(tracked.data.hash)
        if !manifestsMissing.contains(tracked.data.hash.hex) {
          ids.append(tracked.data.hash)
          continue
        }
      }
      ids += tracked.ids
      for id in tracked.ids where owner[id] == nil { owner[id] = tracked.data.path.value }
    }
    if runCache && FileSystem.exists(pipelineDirectory + "/" + LineageLedger.fileName) {
      // Only what is cached: run-cache outputs that were since collected are skipped quietly.
      for out in try openLedger().runCacheOutputs() {
        guard let id = out.hash.flatMap(ObjectID.init), cache.contains(id) else { continue }
        ids.append(id)
        if out.files != nil {
          manifests.insert(id)
          ids += try cache.manifest(id).entries.map(\.hash).filter { cache.contains($0) }
        }
      }
    }
    // Plan first, so that only the objects the remote lacks are looked at on disk.
    let missing = try engine.missingOnRemote(ids.map(\.hex))
    var files: [UploadItem] = []
    var manifestItems: [UploadItem] = []
    var seen = Set<ObjectID>()
    for id in ids where missing.contains(id.hex) && seen.insert(id).inserted {
      guard let (path, size) = try cache.looseFile(for: id) else {
        if let path = owner[id], !notCached.contains(path) { notCached.append(path) }
        continue
      }
      let item = UploadItem(id: id.hex, path: path, size: size)
      if manifests.contains(id) { manifestItems.append(item) } else { files.append(item) }
    }
    var summary = try engine.upload(files, missing: missing)
    if summary.failed.isEmpty {
      summary.merge(try engine.upload(manifestItems, missing: missing))
    } else {
      // A manifest without all its files would make later pushes skip them.
      for item in manifestItems { summary.failed.append((item.id, PushError.filesFailed)) }
    }
    summary.alreadyThere = Set(ids).count - files.count - manifestItems.count
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

/// Why a directory manifest was not pushed.
enum PushError: DVError {
  /// Some of the directory's files failed to upload; the manifest waits for the next push.
  case filesFailed

  var kind: FailureKind { .failed }
  var description: String { "not uploaded because some of the directory's files failed; run `dv push` again" }
}
