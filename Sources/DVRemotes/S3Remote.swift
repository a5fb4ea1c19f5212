import DVBasics
import Foundation

/// An S3 (or S3-compatible) bucket prefix as a remote: requests signed with AWS Signature
/// Version 4 over the payload's SHA-256, path-style or virtual-hosted addressing, retries with
/// backoff on connection errors, timeouts, 5xx, 429 and `SlowDown`, and multipart upload above
/// `multipartThreshold`.
public final class S3Remote: Remote {
  /// The remote as users wrote it (`s3://bucket/prefix`).
  public let displayURL: String
  /// The bucket name.
  package let bucket: String
  /// The key prefix of the remote's root, without slashes at either end; empty for the bucket's root.
  package let root: String
  /// The region requests are signed for.
  package let region: String
  /// `http` or `https`.
  package let scheme: String
  /// The endpoint's `host[:port]`; the bucket is prepended with virtual-hosted addressing.
  package let endpointAuthority: String
  /// Path-style (`host/bucket/key`) rather than virtual-hosted (`bucket.host/key`) addressing.
  package let pathStyle: Bool
  /// Who signs, and where the key came from (for messages).
  package let signer: SigV4Signer
  package let retryPolicy: RetryPolicy
  /// Objects larger than this go through multipart upload.
  package let multipartThreshold: Int64
  /// The size of every part but the last.
  package let partSize: Int64
  /// How many parts of one object are sent at once.
  package let partConcurrency: Int
  /// `max-keys` of listings; nil: the server's default (1,000).
  package let listPageSize: Int?
  let transport: HTTPTransport
  /// The time requests are signed at.
  package let now: @Sendable () -> Date
  /// The remote's name, for the commands messages suggest.
  package let remoteName: String

  /// Reads `settings.url` (`s3://bucket[/prefix]`) and `settings.options` (`endpoint`, `region`,
  /// `profile`, `access_key_id`, `secret_access_key`, `session_token`, `addressing`), and finds
  /// credentials in them, then in `environment` and the AWS profile files. Throws
  /// `RemoteError.invalidURL`, `.invalidSetting` or `.missingCredentials`.
  public convenience init(
    settings: RemoteSettings, environment: [String: String], transport: HTTPTransport = CurlTransport.shared
  ) throws {
    try self.init(settings: settings, environment: environment, transport: transport, retryPolicy: RetryPolicy())
  }

  /// The same, with the knobs tests turn: the retry policy, the clock, the multipart threshold and
  /// part size, the listing page size.
  package init(
    settings: RemoteSettings, environment: [String: String], transport: HTTPTransport, retryPolicy: RetryPolicy,
    clock: @escaping @Sendable () -> Date = { Date() }, multipartThreshold: Int64 = 64 << 20,
    partSize: Int64 = 16 << 20, partConcurrency: Int = 4, listPageSize: Int? = nil
  ) throws {
    let url = settings.url
    guard url.hasPrefix("s3://") else {
      throw RemoteError.invalidURL(url, reason: "an S3 remote's URL is s3://bucket[/prefix]")
    }
    let path = url.dropFirst("s3://".count)
    let bucket = String(path.prefix { $0 != "/" })
    guard !bucket.isEmpty else { throw RemoteError.invalidURL(url, reason: "the bucket name is missing") }
    guard bucket.count <= 255, bucket.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) })
    else {
      throw RemoteError.invalidURL(
        url, reason: "'\(bucket)' is not a bucket name (letters, digits, '-', '.' and '_' only)")
    }
    let root = path.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: true)
      .joined(separator: "/")
    self.bucket = bucket
    self.root = root
    displayURL = root.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(root)"
    remoteName = settings.name

    let resolver = AWSCredentialResolver(settings: settings, environment: environment)
    let options = settings.options
    let endpoint =
      options["endpoint"].flatMap(Self.nonEmpty) ?? environment["AWS_ENDPOINT_URL_S3"].flatMap(Self.nonEmpty)
      ?? environment["AWS_ENDPOINT_URL"].flatMap(Self.nonEmpty)
    let region = try resolver.region()
    guard region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
      throw RemoteError.invalidSetting(
        remote: settings.name, key: "region", reason: "'\(region)' is not a region name (like us-east-1)")
    }
    self.region = region
    if let endpoint {
      (scheme, endpointAuthority) = try Self.parseEndpoint(endpoint, remote: settings.name)
    } else {
      scheme = "https"
      endpointAuthority = "s3.\(region).amazonaws.com"
    }
    switch options["addressing"].flatMap(Self.nonEmpty)?.lowercased() {
    case "path": pathStyle = true
    case "virtual": pathStyle = false
    case nil:
      // Custom endpoints (MinIO, moto, Ceph) rarely resolve bucket subdomains; dotted bucket names
      // would not match AWS's TLS certificate as subdomains.
      pathStyle = endpoint != nil || bucket.contains(".")
    case let other?:
      throw RemoteError.invalidSetting(
        remote: settings.name, key: "addressing", reason: "is '\(other)'; use 'path' or 'virtual'")
    }
    signer = SigV4Signer(credentials: try resolver.credentials(), region: region)
    self.transport = transport
    self.retryPolicy = retryPolicy
    now = clock
    self.multipartThreshold = multipartThreshold
    self.partSize = max(1, partSize)
    self.partConcurrency = max(1, partConcurrency)
    self.listPageSize = listPageSize
  }

  private static func nonEmpty(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    return trimmed.isEmpty ? nil : trimmed
  }

  /// `http(s)://host[:port][/]` → scheme and authority.
  private static func parseEndpoint(_ endpoint: String, remote: String) throws -> (String, String) {
    let lowered = endpoint.lowercased()
    let scheme: String
    if lowered.hasPrefix("https://") {
      scheme = "https"
    } else if lowered.hasPrefix("http://") {
      scheme = "http"
    } else {
      throw RemoteError.invalidSetting(
        remote: remote, key: "endpoint", reason: "is '\(endpoint)'; it must start with http:// or https://")
    }
    let rest = endpoint.dropFirst(scheme.count + 3)
    let authority = rest.prefix { $0 != "/" }
    let path = rest.dropFirst(authority.count)
    guard !authority.isEmpty, !authority.contains("@"), path.allSatisfy({ $0 == "/" }) else {
      throw RemoteError.invalidSetting(
        remote: remote, key: "endpoint",
        reason: "is '\(HTTPURL.redacted(endpoint))'; give only scheme, host and port (http://host:port)")
    }
    return (scheme, authority.lowercased())
  }

  // MARK: - Keys and URLs

  /// The bucket key of a key relative to the remote's root.
  package func objectKey(_ key: String) -> String { root.isEmpty ? key : root + "/" + key }

  /// `s3://bucket/root/key`, for messages.
  package func displayURL(_ key: String) -> String { "s3://\(bucket)/\(objectKey(key))" }

  // MARK: - Operations

  public func exists(_ key: String) throws -> Bool {
    let response = try perform(S3Request(.head, key: objectKey(key)), shownAs: displayURL(key))
    if response.isSuccess { return true }
    if response.status == 404 { return false }
    throw failure(response, shownAs: displayURL(key))
  }

  public func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws {
    let fullPrefix = objectKey(prefix)
    let rootPrefix = root.isEmpty ? "" : root + "/"
    var token: String?
    // Bounded: S3 returns at most 1,000 keys a page; a server that keeps answering IsTruncated
    // with the same token is caught below.
    while true {
      var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", fullPrefix)]
      if let token { query.append(("continuation-token", token)) }
      if let listPageSize { query.append(("max-keys", String(listPageSize))) }
      let (response, page) = try listingPage(query)
      let xml = S3XML(page)
      for entry in xml.elements("Contents") {
        guard let key = xml.text("Key", in: entry), key.hasPrefix(rootPrefix) else { continue }
        let sizeText = xml.text("Size", in: entry)
        guard let size = sizeText.map({ Int64($0) }) ?? 0, size >= 0 else {
          throw RemoteError.server(
            url: displayURL, status: response.status,
            message:
              "the listing gives \(key.debugDescription) the size \((sizeText ?? "").debugDescription), not a byte count"
          )
        }
        guard try each(String(key.dropFirst(rootPrefix.count)), size) else { return }
      }
      guard xml.text("IsTruncated") == "true" else { return }
      guard let next = xml.text("NextContinuationToken"), !next.isEmpty, next != token else {
        throw RemoteError.server(
          url: displayURL, status: response.status,
          message: "the listing is truncated but gives no new continuation token; the server is not S3-compatible")
      }
      token = next
    }
  }

  /// One page of a listing. A page that is not valid UTF-8 was damaged on the way (a wrong key
  /// in it would go unnoticed: an object would look absent) and is asked for again, per the
  /// retry policy.
  private func listingPage(_ query: [(name: String, value: String)]) throws -> (HTTPResponse, [UInt8]) {
    var attempt = 1
    while true {
      let sink = MemorySink(limit: 64 << 20)
      let response = try perform(S3Request(.get, key: nil, query: query), shownAs: displayURL, sink: sink)
      guard response.isSuccess else { throw failure(response, shownAs: displayURL) }
      if String(validating: sink.bytes, as: UTF8.self) != nil { return (response, sink.bytes) }
      guard attempt <= retryPolicy.retries else {
        throw RemoteError.server(
          url: displayURL, status: response.status, message: "the object listing arrived damaged (not UTF-8)")
      }
      retryPolicy.sleep(retryPolicy.delay(beforeRetry: attempt, retryAfter: nil))
      attempt += 1
    }
  }

  public func upload(
    from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void
  ) throws {
    if size > multipartThreshold {
      try uploadMultipart(from: path, size: size, to: key, progress: progress)
      return
    }
    let hash = try sha256 ?? S3Crypto.sha256(ofFile: path, offset: 0, length: size)
    let reporter = ProgressForwarder(progress)
    let response = try perform(
      S3Request(
        .put, key: objectKey(key), body: .file(path: path, offset: 0, length: size), payloadHash: S3Crypto.hex(hash)),
      shownAs: displayURL(key), progress: reporter)
    guard response.isSuccess else { throw failure(response, shownAs: displayURL(key)) }
  }

  public func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws {
    let sink = FileSink(path: path)
    let reporter = ProgressForwarder(progress)
    let response = try perform(
      S3Request(.get, key: objectKey(key)), shownAs: displayURL(key), sink: sink, progress: reporter)
    guard response.isSuccess else { throw failure(response, shownAs: displayURL(key)) }
    // No fsync: the caller hashes the file and decides whether and how it enters the cache.
    do { try sink.finish(sync: false) } catch { throw RemoteError.transport(url: displayURL(key), message: "\(error)") }
  }

  public func read(
    _ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void
  ) throws {
    if let range, range.isEmpty { return try sink.begin(at: range.lowerBound) }
    let url = displayURL(key)
    let body = RangedBodySink(sink, requestedStart: range?.lowerBound ?? 0, url: url)
    let headers = range.map { [(name: "Range", value: RangedBodySink.rangeHeader($0))] } ?? []
    let response = try perform(
      S3Request(.get, key: objectKey(key), headers: headers), shownAs: url, sink: body,
      progress: ProgressForwarder(progress))
    guard response.isSuccess else {
      if response.status == 416, let range {
        throw RemoteError.server(
          url: url, status: 416,
          message: "the range \(range.lowerBound)..<\(range.upperBound) lies outside the object")
      }
      throw failure(response, shownAs: url)
    }
    try body.requireEnd(of: range, status: response.status)
  }

  public func delete(_ key: String) throws {
    let response = try perform(S3Request(.delete, key: objectKey(key)), shownAs: displayURL(key))
    guard !response.isSuccess else { return }
    let error = failure(response, shownAs: displayURL(key))
    // Some S3-compatible stores answer NoSuchKey where S3 answers 204.
    if case .notFound = error { return }
    throw error
  }
}
