/// Receives progress of long work (hashing, copying, checking) from the core.
///
/// The core never prints: it reports here, and the CLI decides whether to draw a progress line
/// (on a terminal) or stay quiet (in a pipe). Implementations must be thread-safe: workers on
/// every core call `advance` concurrently.
public protocol ProgressReporter: AnyObject, Sendable {
  /// A new phase starts, e.g. "hashing" over `totalItems` files and `totalBytes` bytes.
  func begin(_ phase: String, totalItems: Int?, totalBytes: Int64?)
  /// `items` more items and `bytes` more bytes of the current phase are done.
  func advance(items: Int, bytes: Int64)
  /// The current phase is over.
  func end()
}

/// A reporter that discards everything (library use and tests).
public final class SilentProgress: ProgressReporter {
  public init() {}
  public func begin(_ phase: String, totalItems: Int?, totalBytes: Int64?) {}
  public func advance(items: Int, bytes: Int64) {}
  public func end() {}
}
