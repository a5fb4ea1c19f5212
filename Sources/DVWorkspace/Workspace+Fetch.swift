import DVBasics
import DVLineage
import DVRemotes
import DVStorage
import Foundation

/// What `dv fetch` did.
public struct FetchResult: Sendable {
  /// The remote's name.
  public var remote: String
  public var summary: TransferSummary
  /// Run records imported into the local ledger.
  public var runRecords: Int
}

extension Workspace {
  /// Downloads into the cache what the working tree references (with `targets` only those) and
  /// is not cached, verifying every object; imports the remote's run records into the ledger.
  /// With `runCache`, also downloads the outputs those records name, so the run cache can
  /// restore them.
  public func fetch(
    _ targets: [String] = [], remote name: String? = nil, jobs: Int? = nil, runCache: Bool = false,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> FetchResult {
    let engine = try transferEngine(remote: name, jobs: jobs, environment: environment)
    let remoteName = try remoteSettings(named: name).name
    let lock = try lockForWriting()
    defer { lock.release() }
    let temporary = pipelineDirectory + "/tmp"
    TransferEngine.removePartialDownloads(in: temporary)
    cache.clearTemporaryFiles()
    let items = try trackedData(selecting: targets)
    var summary = try download(
      items.map(\.hash), manifests: Set(items.filter { $0.kind == .dir }.map(\.hash)), engine: engine)
    let imported = try importRunRecords(engine)
    if runCache {
      let outs = try openLedger().runCacheOutputs().compactMap { out -> (ObjectID, Bool)? in
        guard let id = out.hash.flatMap(ObjectID.init) else { return nil }
        return (id, out.files != nil)
      }
      // Run-cache outputs may never have been pushed: take what the remote has, quietly.
      var extra = try downloadAvailable(outs.map(\.0), engine: engine)
      var files = Set<ObjectID>()
      for (id, isDirectory) in outs where isDirectory && cache.contains(id) {
        files.formUnion(try cache.manifest(id).entries.map(\.hash))
      }
      extra.merge(try downloadAvailable(Array(files), engine: engine))
      summary.merge(extra)
    }
    if summary.transferred > 0 { try cache.sync() }
    return FetchResult(remote: remoteName, summary: summary, runRecords: imported)
  }

  /// Downloads those of `ids` that are not cached and that the remote has.
  private func downloadAvailable(_ ids: [ObjectID], engine: TransferEngine) throws -> TransferSummary {
    let wanted = Array(Set(ids.filter { !cache.contains($0) }))
    guard !wanted.isEmpty else { return TransferSummary() }
    let absent = try engine.missingOnRemote(wanted.map(\.hex))
    let available = wanted.map(\.hex).filter { !absent.contains($0) }
    return try engine.download(
      available, into: pipelineDirectory + "/tmp", commit: commitDownload, store: storeDownload)
  }

  /// Imports the remote's run records the ledger lacks; returns how many.
  private func importRunRecords(_ engine: TransferEngine) throws -> Int {
    let remoteIDs = try remoteRunIDs(engine)
    guard !remoteIDs.isEmpty else { return 0 }
    let ledger = try openLedger()
    let todo = remoteIDs.subtracting(try ledger.allRunIDs()).sorted()
    let temporary = pipelineDirectory + "/tmp"
    try FileSystem.createDirectory(temporary)
    // Records are small and many: download in parallel, import in one writer, in id order.
    var imported = 0
    let batch = 256
    for start in stride(from: 0, to: todo.count, by: batch) {
      let ids = Array(todo[start..<min(todo.count, start + batch)])
      let records = Locked<[String: [UInt8]]>([:])
      try parallelForEach(ids.count, workers: engine.jobs) { i in
        let file = temporary + "/" + TransferEngine.downloadPrefix + "run.\(getpid()).\(ids[i])"
        defer { try? FileSystem.removeFile(file) }
        let key = TransferEngine.runsPrefix + ids[i] + ".json"
        let bytes: [UInt8] = try engine.retrying {
          try engine.remote.download(key, to: file) { _ in }
          // Records are not named by their hash: one damaged on the way shows as bytes that do
          // not parse (a flipped byte is not valid UTF-8), and is read again.
          let bytes = try FileSystem.readFileIfPresent(file) ?? []
          guard String(validating: bytes, as: UTF8.self) != nil,
            (try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any]
          else {
            throw RemoteError.integrity(
              url: engine.remote.displayURL + "/" + key, expected: "a JSON run record",
              actual: "bytes that do not parse")
          }
          return bytes
        }
        records.withLock { $0[ids[i]] = bytes }
      }
      for id in ids {
        guard let bytes = records.withLock({ $0[id] }) else { continue }
        if try ledger.importRun(bytes, name: TransferEngine.runsPrefix + id + ".json") { imported += 1 }
      }
    }
    return imported
  }
}
