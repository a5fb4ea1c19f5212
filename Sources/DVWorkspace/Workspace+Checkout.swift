import DVBasics
import DVStorage

/// What `dv checkout` did for one tracked path.
public struct CheckedOutData: Sendable {
  public var path: RelativePath
  /// Files written.
  public var written: Int
  /// Files deleted (their content is in the cache).
  public var deleted: Int
}

/// What `dv checkout` did.
public struct CheckoutResult: Sendable {
  /// Tracked paths that were changed; the others were already up to date.
  public var changed: [CheckedOutData]
  /// How many tracked paths were looked at.
  public var checked: Int
}

extension Workspace {
  /// Makes the workspace match the pointers and stages.lock, for all data or the given paths.
  ///
  /// Plans everything first; if any workspace file would be overwritten or deleted while its
  /// content is not in the cache, nothing is changed and the files are named (unless `force`).
  /// Files whose objects are missing are left alone and reported after the rest is done.
  public func checkout(_ userPaths: [String] = [], force: Bool = false) throws -> CheckoutResult {
    let lock = try lockForWriting()
    defer { lock.release() }
    cache.clearTemporaryFiles()
    let filter = try userPaths.map { try resolver.resolve($0) }
    let all = try trackedData()
    var items: [TrackedData] = []
    for target in filter where !all.contains(where: { $0.path.isInside(target) || target.isInside($0.path) }) {
      throw WorkspaceError.notTracked(target.value)
    }
    for item in all where filter.isEmpty || filter.contains(where: { item.path.isInside($0) || $0.isInside(item.path) })
    {
      items.append(item)
    }
    let checkout = DataCheckout(builder: try builder())
    let plans = try items.map { try checkout.plan($0.path, kind: $0.kind, hash: $0.hash) }
    let unsafe = plans.flatMap(\.unsafe)
    if !unsafe.isEmpty && !force { throw WorkspaceError.wouldLoseData(unsafe.map(\.value)) }
    var changed: [CheckedOutData] = []
    for plan in plans
    where !plan.writes.isEmpty || !plan.deletes.isEmpty || plan.createsEmptyDirectory || (force && !plan.unsafe.isEmpty)
    {
      try FailPoint.hit("checkout:before-apply")
      let written = try checkout.apply(plan, types: config.cacheTypes, force: force)
      changed.append(CheckedOutData(path: plan.path, written: written, deleted: plan.deletes.count))
    }
    let missing = plans.flatMap(\.missing)
    if !missing.isEmpty { throw WorkspaceError.missingFromCache(missing.map(\.path.value)) }
    return CheckoutResult(changed: changed, checked: items.count)
  }
}
