import DVBasics
import DVPipeline
import DVStorage

/// How tracked data differs from its record.
public struct DataStatus: Sendable {
  /// The overall state of one tracked path.
  public enum State: String, Sendable {
    /// The workspace content differs from the record.
    case modified
    /// The path is gone from the workspace.
    case deleted
    /// The workspace matches, but the cache lacks the recorded object (run `dv pull`).
    case notInCache = "not in cache"
  }

  public var path: RelativePath
  /// The pointer file, or stages.lock.
  public var recordedIn: String
  public var state: State
  /// Inside a directory: files added, modified and deleted, relative to the directory.
  public var added: [String] = []
  public var modified: [String] = []
  public var deleted: [String] = []
  /// True when the recorded manifest is not cached, so per-file changes cannot be listed.
  public var detailsUnavailable = false
}

/// What `dv status` found.
public struct StatusReport: Sendable {
  /// Tracked data that is not as recorded; empty when everything is up to date.
  public var changes: [DataStatus]
  /// How many tracked paths were checked.
  public var checked: Int
  /// Pipeline stages that `dv repro` would run, with the reasons, in dependency order.
  public var staleStages: [StageState] = []

  /// True when nothing needs attention.
  public var isClean: Bool { changes.isEmpty && staleStages.isEmpty }
}

extension Workspace {
  /// Compares tracked data (pointers) with the workspace. Takes no lock and writes nothing but
  /// the stat cache.
  public func status(_ userPaths: [String] = []) throws -> StatusReport {
    let filter = try userPaths.map { try resolver.resolve($0) }
    let items = try trackedData(includeLockFile: false).filter { item in
      filter.isEmpty || filter.contains { item.path.isInside($0) || $0.isInside(item.path) }
    }
    if !userPaths.isEmpty && items.isEmpty { throw WorkspaceError.notTracked(userPaths[0]) }
    let builder = try builder()
    var changes: [DataStatus] = []
    for item in items {
      if let change = try status(of: item, builder: builder) { changes.append(change) }
    }
    var report = StatusReport(changes: changes, checked: items.count)
    if userPaths.isEmpty, let pipeline = try pipeline() {
      let checker = StalenessChecker(
        pipeline: pipeline, lock: try LockFile.load(workspaceRoot: root), builder: builder, registry: plugins)
      report.staleStages = try checker.check().filter(\.isStale)
    }
    return report
  }

  /// How one tracked path differs from its record; nil when it is as recorded and cached.
  func status(of item: TrackedData, builder: DataBuilder) throws -> DataStatus? {
    var status = DataStatus(path: item.path, recordedIn: item.recordedIn, state: .modified)
    guard let current = try builder.build(item.path, mode: .inspect, manifestUnless: item.hash) else {
      status.state = .deleted
      return status
    }
    if current.hash == item.hash && current.kind == item.kind {
      if cache.contains(item.hash) { return nil }
      status.state = .notInCache
      return status
    }
    guard item.kind == .dir, current.kind == .dir else { return status }
    guard cache.contains(item.hash), let recorded = try? cache.manifest(item.hash), let now = current.manifest else {
      status.detailsUnavailable = true
      return status
    }
    // Both manifests are sorted by path bytes: one merge pass lists the differences.
    let old = recorded.entries
    let new = now.entries
    var i = 0
    var j = 0
    while i < old.count || j < new.count {
      if j == new.count || (i < old.count && utf8Precedes(old[i].path, new[j].path)) {
        status.deleted.append(old[i].path)
        i += 1
      } else if i == old.count || utf8Precedes(new[j].path, old[i].path) {
        status.added.append(new[j].path)
        j += 1
      } else {
        if old[i].hash != new[j].hash || old[i].exec != new[j].exec { status.modified.append(new[j].path) }
        i += 1
        j += 1
      }
    }
    return status
  }
}
