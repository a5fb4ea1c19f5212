import DVBasics
import DVPipeline
import DVRemotes
import DVStorage
import Foundation

/// What `dv gc --remote` deleted (or, with `--dry-run`, would delete).
public struct RemoteGCResult: Sendable {
  /// The remote's name.
  public var remote: String
  /// Object ids (hex) with their sizes, sorted.
  public var removed: [(id: String, size: Int64)]
  public var kept: Int
  public var dryRun: Bool
  public var removedBytes: Int64 { removed.reduce(0) { $0 + $1.size } }
}

extension Workspace {
  /// Deletes the objects on a remote that nothing in the working tree references (pointers,
  /// stages.lock deps and outs, and the files of their directory manifests). Destructive and
  /// shared: it needs `confirmed` unless `dryRun`.
  public func collectRemoteGarbage(
    remote name: String, dryRun: Bool, confirmed: Bool,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> RemoteGCResult {
    let engine = try transferEngine(remote: name, jobs: nil, environment: environment)
    if !dryRun && !confirmed {
      throw RemoteConfigError.confirmationNeeded(
        "`dv gc --remote` deletes objects from '\(name)' that other branches or teammates may still need")
    }
    let lock = try lockForWriting()
    defer { lock.release() }
    let items = try trackedData()
    var keep = Set<ObjectID>(items.map(\.hash))
    for (_, record) in try LockFile.load(workspaceRoot: root).stages {
      keep.formUnion(record.deps.map(\.hash))
      keep.formUnion(record.outs.map(\.hash))
    }
    // A directory's files are known from its manifest: fetch manifests the cache lacks.
    let manifests = Set(items.filter { $0.kind == .dir }.map(\.hash))
    let missingManifests = manifests.filter { !cache.contains($0) }
    if !missingManifests.isEmpty {
      let present = Set(missingManifests.map(\.hex)).subtracting(
        try engine.missingOnRemote(missingManifests.map(\.hex)))
      try engine.download(Array(present), into: pipelineDirectory + "/tmp", commit: commitDownload).throwIfFailed()
    }
    for manifest in manifests where cache.contains(manifest) {
      keep.formUnion(try cache.manifest(manifest).entries.map(\.hash))
    }
    let keepHex = Set(keep.map(\.hex))
    let all = try engine.remoteObjects()
    let remove = all.filter { !keepHex.contains($0.key) }.map { (id: $0.key, size: $0.value) }.sorted { $0.id < $1.id }
    if !dryRun {
      let failures = Locked<[Error]>([])
      try parallelForEach(remove.count, workers: engine.jobs) { i in
        do {
          try engine.retrying { try engine.remote.delete(TransferEngine.key(ofObject: remove[i].id)) }
        } catch {
          failures.withLock { $0.append(error) }
        }
      }
      if let first = failures.withLock({ $0.first }) {
        throw RemoteConfigError.transferFailed(count: failures.withLock { $0.count }, first: "\(first)")
      }
    }
    return RemoteGCResult(
      remote: try remoteSettings(named: name).name, removed: remove, kept: all.count - remove.count, dryRun: dryRun)
  }
}
