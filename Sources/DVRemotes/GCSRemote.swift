import DVBasics
import Foundation

/// A Google Cloud Storage bucket prefix, spoken to through the JSON API (DESIGN.md §8).
public final class GCSRemote: Remote {
  /// `gs://bucket[/prefix]`, as configured.
  public let displayURL: String
  /// The bucket name.
  public let bucket: String
  /// The object-name prefix every key lives under: empty, or ending in `/`.
  public let prefix: String
  private let transport: HTTPTransport

  /// settings.url is gs://bucket[/prefix]; settings.options may hold credentialpath (a service-account JSON file,
  /// DVC's setting name), token (an OAuth2 access token), endpoint. environment: GOOGLE_APPLICATION_CREDENTIALS,
  /// STORAGE_EMULATOR_HOST (as the official clients use it: host:port or http://host:port; no auth then),
  /// GOOGLE_OAUTH_ACCESS_TOKEN.
  public init(settings: RemoteSettings, environment: [String: String], transport: HTTPTransport = CurlTransport.shared)
    throws
  {
    let url = settings.url
    guard url.hasPrefix("gs://") else { throw RemoteError.invalidURL(url, reason: "expected gs://bucket[/prefix]") }
    let rest = url.dropFirst("gs://".count)
    let bucket = String(rest.prefix { $0 != "/" })
    guard !bucket.isEmpty else { throw RemoteError.invalidURL(url, reason: "the bucket name is missing") }
    var prefix = String(rest.dropFirst(bucket.count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    if !prefix.isEmpty { prefix += "/" }
    self.bucket = bucket
    self.prefix = prefix
    self.displayURL = "gs://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast())
    self.transport = transport
  }

  public func exists(_ key: String) throws -> Bool { throw unimplemented(key) }

  public func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws {
    throw unimplemented(prefix)
  }

  public func upload(
    from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void
  ) throws {
    throw unimplemented(key)
  }

  public func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws {
    throw unimplemented(key)
  }

  public func delete(_ key: String) throws { throw unimplemented(key) }

  private func unimplemented(_ key: String) -> RemoteError {
    .server(url: "gs://\(bucket)/\(prefix)\(key)", status: 501, message: "the GCS remote is not implemented yet")
  }
}
