import DVBasics
import Foundation

/// The kind of store a remote URL names.
public enum RemoteScheme: String, Sendable, CaseIterable {
  case s3
  case gcs = "gs"
  case local = "file"

  /// The scheme of `url`: `s3://`, `gs://`, or a path / `file://`; other `x://` URLs are errors.
  public init(url: String) throws {
    if url.hasPrefix("s3://") {
      self = .s3
    } else if url.hasPrefix("gs://") {
      self = .gcs
    } else if url.hasPrefix("file://") || !url.contains("://") {
      guard !url.isEmpty else { throw RemoteError.invalidURL(url, reason: "it is empty") }
      self = .local
    } else {
      throw RemoteError.invalidURL(url, reason: "use s3://bucket/prefix, gs://bucket/prefix, a path or file://")
    }
  }

  /// The settings `dv remote modify` accepts besides `url`.
  public var settingKeys: Set<String> {
    switch self {
    case .s3:
      let keys: Set<String> = [
        "endpoint", "region", "profile", "addressing", "access_key_id", "secret_access_key", "session_token",
        "jobs",
      ]
      return keys.union(RemoteTimeouts.settingKeys)
    case .gcs:
      let keys: Set<String> = ["endpoint", "endpointurl", "credentialpath", "token", "jobs"]
      return keys.union(RemoteTimeouts.settingKeys)
    case .local: return ["jobs"]
    }
  }

  /// Settings that are secrets: only `.pipeline/config.local.yaml` (or the environment) may hold
  /// them, and `dv remote list` masks them.
  public static let secretKeys: Set<String> = ["access_key_id", "secret_access_key", "session_token", "token"]

  /// True for object stores reached over the network, which want more parallel transfers.
  public var isNetwork: Bool { self != .local }
}

/// Makes the `Remote` a configured URL names.
public enum RemoteFactory {
  /// The remote for `settings`: `s3://` and `gs://` buckets, or a directory (a path relative to
  /// `root`, absolute, or `file://`). Throws `RemoteError` (bad URL, bad settings, missing
  /// credentials: bad input).
  /// `retry` nil keeps each remote's own policy; `RetryPolicy.none` asks once (`dv doctor`).
  public static func make(
    _ settings: RemoteSettings, environment: [String: String], relativeTo root: String? = nil,
    retry: RetryPolicy? = nil
  ) throws -> Remote {
    let scheme = try RemoteScheme(url: settings.url)
    if let key = settings.options.keys.sorted().first(where: { !scheme.settingKeys.contains($0) }) {
      throw RemoteError.invalidSetting(
        remote: settings.name, key: key,
        reason:
          "is not a setting of \(scheme.rawValue) remotes (known: \(scheme.settingKeys.sorted().joined(separator: ", ")))"
      )
    }
    switch scheme {
    case .s3, .gcs:
      return try makeNetworkRemote(scheme, settings, environment: environment, retry: retry)
    case .local:
      return LocalRemote(root: try localPath(settings.url, relativeTo: root), displayURL: settings.url)
    }
  }

  /// The directory of a local remote URL.
  public static func localPath(_ url: String, relativeTo root: String?) throws -> String {
    var path = url
    if path.hasPrefix("file://") {
      path = String(path.dropFirst("file://".count))
      guard path.hasPrefix("/") else {
        throw RemoteError.invalidURL(url, reason: "file:// URLs need an absolute path (file:///srv/dv)")
      }
      path = path.removingPercentEncoding ?? path
    }
    if !path.hasPrefix("/") {
      let base = root ?? FileManager.default.currentDirectoryPath
      path = base + "/" + path
    }
    return (path as NSString).standardizingPath
  }

  private static func makeNetworkRemote(
    _ scheme: RemoteScheme, _ settings: RemoteSettings, environment: [String: String], retry: RetryPolicy?
  ) throws -> Remote {
    let transport = try RemoteTimeouts.transport(CurlTransport.shared, settings: settings)
    switch scheme {
    case .s3:
      return try S3Remote(
        settings: settings, environment: environment, transport: transport, retryPolicy: retry ?? RetryPolicy())
    default:
      var tuning = GCSTuning()
      if let retry { tuning.retry = retry }
      return try GCSRemote(settings: settings, environment: environment, transport: transport, tuning: tuning)
    }
  }
}
