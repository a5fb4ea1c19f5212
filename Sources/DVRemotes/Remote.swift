import DVBasics

/// A place objects are pushed to and pulled from (docs/architecture.md §8): an S3 or GCS bucket prefix, or
/// a directory. Keys are `/`-separated and relative to the remote's root (the URL's prefix).
/// Every call may block; the transfer engine calls them from several threads at once.
public protocol Remote: Sendable {
  /// The remote as users wrote it (`s3://bucket/prefix`), without secrets.
  var displayURL: String { get }
  /// Whether an object exists at `key`.
  func exists(_ key: String) throws -> Bool
  /// Every object whose key starts with `prefix`, in pages; `each` gets the key (relative to the
  /// remote's root) and size. Stops early when `each` returns false.
  func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws
  /// Uploads the file at `path` (`size` bytes, whose SHA-256 is `sha256` when known, so signing
  /// needs no second read) to `key`, replacing nothing half-written: the object appears whole or
  /// not at all. `progress` gets byte counts as they go.
  func upload(from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void)
    throws
  /// Downloads `key` into the file at `path` (created or truncated; the caller verifies it and
  /// moves it into place). Throws `RemoteError.notFound` when it is absent.
  func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws
  /// Streams bytes `range` of `key` (the whole object when nil) into `sink`, retrying transient
  /// failures (each retry calls `sink.begin` again). Throws `RemoteError.notFound` when `key` is
  /// absent, and `RemoteError.server` when the range lies outside the object. `progress` gets
  /// byte counts as they arrive (a retry takes back what the failed attempt reported).
  func read(_ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void) throws
  /// Deletes `key` (absent is fine).
  func delete(_ key: String) throws
}

/// Receives an object's bytes as `Remote.read` streams them.
public protocol ObjectSink: AnyObject {
  /// The bytes that follow start at byte `offset` of the object. Called once before the first
  /// byte (also for an empty range), and again whenever a failed attempt starts over; a server
  /// that ignores a range request starts at 0 and the sink skips what it does not need.
  func begin(at offset: Int64) throws
  /// The next bytes.
  func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// A configured remote: its name, URL and settings from `.pipeline/config.yaml` merged with
/// `.pipeline/config.local.yaml` (where secrets live).
public struct RemoteSettings: Sendable, Equatable {
  public var name: String
  public var url: String
  /// Settings by key (`endpoint`, `region`, `profile`, `access_key_id`, `credentialpath`, …).
  public var options: [String: String]

  public init(name: String, url: String, options: [String: String] = [:]) {
    self.name = name
    self.url = url
    self.options = options
  }
}

/// What can go wrong talking to a remote; every message is one line naming the remote (never a
/// secret) and what to do.
public enum RemoteError: DVError {
  /// The URL is not `s3://bucket[/prefix]`, `gs://bucket[/prefix]`, a path or `file://`.
  case invalidURL(String, reason: String)
  /// A setting is unknown or has a bad value.
  case invalidSetting(remote: String, key: String, reason: String)
  /// No credentials were found; says where dv looked and how to provide them.
  case missingCredentials(remote: String, hint: String)
  /// The credentials were refused (wrong secret, expired token, no permission).
  case accessDenied(url: String, hint: String)
  /// The bucket does not exist.
  case noSuchBucket(url: String)
  /// An object is absent.
  case notFound(url: String)
  /// A downloaded object's bytes do not hash to its name.
  case integrity(url: String, expected: String, actual: String)
  /// The server answered with an error dv has no better words for.
  case server(url: String, status: Int, message: String)
  /// The transfer failed after retries (connection, timeout, TLS).
  case transport(url: String, message: String)

  public var kind: FailureKind {
    switch self {
    case .invalidURL, .invalidSetting, .missingCredentials: return .badInput
    default: return .failed
    }
  }

  public var description: String {
    switch self {
    case .invalidURL(let url, let reason): return "invalid remote URL '\(url)': \(reason)"
    case .invalidSetting(let remote, let key, let reason): return "remote '\(remote)': setting '\(key)' \(reason)"
    case .missingCredentials(let remote, let hint): return "no credentials for remote '\(remote)': \(hint)"
    case .accessDenied(let url, let hint): return "access denied to \(url): \(hint)"
    case .noSuchBucket(let url): return "the bucket of \(url) does not exist; create it or fix the remote's URL"
    case .notFound(let url): return "\(url) does not exist on the remote"
    case .integrity(let url, let expected, let actual):
      return "\(url) is corrupt on the remote (expected \(expected), got \(actual)); it was not used"
    case .server(let url, let status, let message): return "\(url): HTTP \(status): \(message)"
    case .transport(let url, let message): return "\(url): \(message)"
    }
  }
}
