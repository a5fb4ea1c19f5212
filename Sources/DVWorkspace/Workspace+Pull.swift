import DVBasics
import Foundation

/// What `dv pull` did.
public struct PullResult: Sendable {
  public var fetch: FetchResult
  public var checkout: CheckoutResult
}

extension Workspace {
  /// Fetches, then checks out: the workspace back as its pointers and stages.lock say, with
  /// checkout's safety (files whose content is not cached are not overwritten unless `force`).
  /// Nothing is checked out when objects failed to download.
  public func pull(
    _ targets: [String] = [], remote name: String? = nil, jobs: Int? = nil, force: Bool = false,
    runCache: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> PullResult {
    let fetched = try fetch(targets, remote: name, jobs: jobs, runCache: runCache, environment: environment)
    try fetched.summary.throwIfFailed()
    return PullResult(fetch: fetched, checkout: try checkout(targets, force: force))
  }
}
