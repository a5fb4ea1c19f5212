import DVBasics
import DVRemotes
import DVStorage
import Foundation

/// Where one tracked path's objects are.
public struct RemoteDataStatus: Sendable {
  public var path: RelativePath
  /// The pointer or stages.lock that records it.
  public var recordedIn: String
  /// Objects the path needs (as far as known).
  public var objects: Int
  /// Of those, how many the remote lacks.
  public var missingOnRemote: Int
  /// Of those, how many the local cache lacks.
  public var missingLocally: Int
  /// False for a directory whose manifest is in neither place: its files are unknown.
  public var complete: Bool
}

/// What `dv status --remote` found.
public struct RemoteStatusReport: Sendable {
  /// The remote's name.
  public var remote: String
  public var data: [RemoteDataStatus]
  /// True when every object is both on the remote and in the cache.
  public var inSync: Bool { data.allSatisfy { $0.missingOnRemote == 0 && $0.missingLocally == 0 && $0.complete } }
}

extension Workspace {
  /// For each tracked path (or the given ones): which of its objects the remote lacks, and
  /// which the local cache lacks.
  public func remoteStatus(
    _ targets: [String] = [], remote name: String? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> RemoteStatusReport {
    let engine = try transferEngine(remote: name, jobs: nil, environment: environment)
    let remoteName = try remoteSettings(named: name).name
    let tracked = try objects(of: trackedData(selecting: targets))
    let missing = try engine.missingOnRemote(tracked.flatMap { $0.ids.map(\.hex) })
    let data = tracked.map { item in
      RemoteDataStatus(
        path: item.data.path, recordedIn: item.data.recordedIn, objects: item.ids.count,
        missingOnRemote: item.ids.filter { missing.contains($0.hex) }.count,
        missingLocally: item.ids.filter { !cache.contains($0) }.count, complete: item.complete)
    }
    return RemoteStatusReport(remote: remoteName, data: data)
  }
}
