import DVBasics
import DVLineage
import DVPipeline
import DVRemotes
import DVStorage
import Foundation

/// What `dv exp push` or `dv exp pull` moved.
public struct ExperimentTransfer: Sendable {
  public var remote: String
  /// Experiments sent or received (those the other side had already are not counted).
  public var experiments: [String]
  /// Their outputs' objects.
  public var objects: TransferSummary
}

extension Workspace {
  /// Where experiments live on a remote: `experiments/<name>.json`.
  static let experimentsPrefix = "experiments/"

  /// Uploads finished experiments (all, or `names`) as `experiments/<name>.json`, with the
  /// objects of the outputs their stages.lock names, so another workspace's `exp pull` lists and
  /// applies them. Objects go up before the records that name them, manifests after their files.
  public func pushExperiments(
    _ names: [String], remote name: String? = nil, jobs: Int? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> ExperimentTransfer {
    let engine = try transferEngine(remote: name, jobs: jobs, environment: environment)
    let remoteName = try remoteSettings(named: name).name
    let records = try chosenExperiments(names).filter { $0.status == .succeeded }
    var files: [ObjectID] = []
    var manifests: [ObjectID] = []
    for record in records {
      for entry in try Self.outputs(of: record) {
        if entry.files == nil {
          files.append(entry.hash)
        } else {
          manifests.append(entry.hash)
          if cache.contains(entry.hash) { files += try cache.manifest(entry.hash).entries.map(\.hash) }
        }
      }
    }
    let missing = try engine.missingOnRemote((files + manifests).map(\.hex))
    func items(_ ids: [ObjectID]) throws -> [UploadItem] {
      try Array(Set(ids)).filter { missing.contains($0.hex) }.compactMap { id in
        try cache.looseFile(for: id).map { UploadItem(id: id.hex, path: $0.path, size: $0.size) }
      }
    }
    var summary = try engine.upload(try items(files), missing: missing)
    if summary.failed.isEmpty { summary.merge(try engine.upload(try items(manifests), missing: missing)) }
    guard summary.failed.isEmpty else {
      throw RemoteConfigError.transferFailed(count: summary.failed.count, first: "\(summary.failed[0].error)")
    }
    let present = try remoteExperimentNames(engine)
    let temporary = pipelineDirectory + "/tmp"
    try FileSystem.createDirectory(temporary)
    var sent: [String] = []
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    for record in records where !present.contains(record.name) {
      let bytes = Array(try encoder.encode(record))
      let file = temporary + "/run.\(getpid()).exp-\(record.name).json"
      defer { try? FileSystem.removeFile(file) }
      try FileSystem.writeAtomically(bytes, to: file)
      try engine.retrying {
        try engine.remote.upload(
          from: file, size: Int64(bytes.count), sha256: nil, to: Self.experimentsPrefix + record.name + ".json",
          progress: { _ in })
      }
      sent.append(record.name)
    }
    return ExperimentTransfer(remote: remoteName, experiments: sent, objects: summary)
  }

  /// Downloads the remote's experiments (all, or `names`) that this workspace lacks, and the
  /// objects of their outputs, so `exp show` lists them and `exp apply` restores them.
  public func pullExperiments(
    _ names: [String], remote name: String? = nil, jobs: Int? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> ExperimentTransfer {
    let engine = try transferEngine(remote: name, jobs: jobs, environment: environment)
    let remoteName = try remoteSettings(named: name).name
    let lock = try lockForWriting()
    defer { lock.release() }
    let available = try remoteExperimentNames(engine)
    for wanted in names where !available.contains(wanted) { throw ExperimentError.unknown(wanted) }
    let ledger = try openLedger()
    let local = Set(try ledger.experiments().map(\.name))
    let todo = available.filter { (names.isEmpty || names.contains($0)) && !local.contains($0) }.sorted()
    let temporary = pipelineDirectory + "/tmp"
    try FileSystem.createDirectory(temporary)
    var received: [ExperimentRecord] = []
    for experiment in todo {
      let key = Self.experimentsPrefix + experiment + ".json"
      let file = temporary + "/" + TransferEngine.downloadPrefix + "exp.\(getpid()).\(experiment)"
      defer { try? FileSystem.removeFile(file) }
      let record: ExperimentRecord = try engine.retrying {
        try engine.remote.download(key, to: file) { _ in }
        guard let bytes = try FileSystem.readFileIfPresent(file),
          let record = try? JSONDecoder().decode(ExperimentRecord.self, from: Data(bytes)), record.name == experiment
        else {
          throw RemoteError.integrity(
            url: engine.remote.displayURL + "/" + key, expected: "an experiment record", actual: "bytes that do not parse")
        }
        return record
      }
      received.append(record)
    }
    var ids: [ObjectID] = []
    var manifests = Set<ObjectID>()
    for record in received {
      for entry in try Self.outputs(of: record) {
        ids.append(entry.hash)
        if entry.files != nil { manifests.insert(entry.hash) }
      }
    }
    let summary = try download(ids, manifests: manifests, engine: engine)
    if summary.transferred > 0 { try cache.sync() }
    // Records are saved once their objects are in the cache: a pulled experiment can be applied.
    for record in received { try ledger.saveExperiment(record) }
    return ExperimentTransfer(remote: remoteName, experiments: received.map(\.name), objects: summary)
  }

  private func chosenExperiments(_ names: [String]) throws -> [ExperimentRecord] {
    let all = try experiments()
    for name in names where !all.contains(where: { $0.name == name }) { throw ExperimentError.unknown(name) }
    return names.isEmpty ? all : all.filter { names.contains($0.name) }
  }

  /// The cached outputs an experiment's stages.lock names.
  private static func outputs(of record: ExperimentRecord) throws -> [LockFile.Entry] {
    guard let text = record.files["stages.lock"] else { return [] }
    return try LockFile.parse(text).stages.flatMap { $0.record.outs }
  }

  private func remoteExperimentNames(_ engine: TransferEngine) throws -> Set<String> {
    var names = Set<String>()
    try engine.remote.list(prefix: Self.experimentsPrefix) { key, _ in
      let name = key.dropFirst(Self.experimentsPrefix.count)
      if name.hasSuffix(".json") { names.insert(String(name.dropLast(".json".count))) }
      return true
    }
    return names
  }
}
