import DVBasics

/// An S3 (or S3-compatible) bucket prefix as a remote, signed with AWS Signature Version 4.
public final class S3Remote: Remote {
  /// The remote as users wrote it (`s3://bucket/prefix`).
  public let displayURL: String
  private let transport: HTTPTransport

  /// Reads `settings.url` (`s3://bucket[/prefix]`) and `settings.options` (`endpoint`, `region`,
  /// `profile`, `access_key_id`, `secret_access_key`, `session_token`, `addressing`), and finds
  /// credentials in them, then in `environment` and the AWS profile files.
  public init(
    settings: RemoteSettings, environment: [String: String], transport: HTTPTransport = CurlTransport.shared
  ) throws {
    guard settings.url.hasPrefix("s3://") else {
      throw RemoteError.invalidURL(settings.url, reason: "an S3 remote's URL starts with s3://")
    }
    displayURL = settings.url
    self.transport = transport
  }

  public func exists(_ key: String) throws -> Bool { throw notYet() }

  public func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws { throw notYet() }

  public func upload(
    from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void
  ) throws { throw notYet() }

  public func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws { throw notYet() }

  public func delete(_ key: String) throws { throw notYet() }

  private func notYet() -> RemoteError {
    .server(url: displayURL, status: 0, message: "the S3 remote is not implemented yet")
  }
}
