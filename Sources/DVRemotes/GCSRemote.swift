import DVBasics
import Foundation

/// A Google Cloud Storage bucket prefix, spoken to through the JSON API (docs/architecture.md §8): media
/// uploads, resumable uploads above `GCSTuning.resumableThreshold`, `alt=media` downloads and
/// paginated listings, authorised by a service account, an access token, or nothing against
/// an emulator.
public final class GCSRemote: Remote {
  /// `gs://bucket[/prefix]`, as configured.
  public let displayURL: String
  /// The bucket name.
  public let bucket: String
  /// The object-name prefix every key lives under: empty, or ending in `/`.
  public let prefix: String
  /// The API's base URL without a trailing slash: `https://storage.googleapis.com`, the
  /// `endpoint` setting, or the emulator's.
  public let endpoint: String
  /// Supplies bearer tokens; nil against an emulator, which wants none.
  let tokens: GCSTokenProvider?
  let transport: HTTPTransport
  let tuning: GCSTuning
  /// Set once the bucket is known to exist, so that a 404 means "no such object" without asking.
  private let bucketSeen = Locked(false)

  /// settings.url is gs://bucket[/prefix]; settings.options may hold credentialpath (a service-account JSON file,
  /// DVC's setting name), token (an OAuth2 access token), endpoint. environment: GOOGLE_APPLICATION_CREDENTIALS,
  /// STORAGE_EMULATOR_HOST (as the official clients use it: host:port or http://host:port; no auth then),
  /// GOOGLE_OAUTH_ACCESS_TOKEN.
  public convenience init(
    settings: RemoteSettings, environment: [String: String], transport: HTTPTransport = CurlTransport.shared
  ) throws {
    try self.init(settings: settings, environment: environment, transport: transport, tuning: GCSTuning())
  }

  /// The same, with retries, page and chunk sizes and the clock chosen by the caller (tests).
  package init(
    settings: RemoteSettings, environment: [String: String], transport: HTTPTransport, tuning: GCSTuning
  ) throws {
    let url = settings.url
    let name = settings.name.isEmpty ? url : settings.name
    guard url.hasPrefix("gs://") else { throw RemoteError.invalidURL(url, reason: "expected gs://bucket[/prefix]") }
    let rest = url.dropFirst("gs://".count)
    let bucket = String(rest.prefix { $0 != "/" })
    if let problem = Self.bucketNameProblem(bucket) { throw RemoteError.invalidURL(url, reason: problem) }
    let path = rest.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: true)
    if path.contains(where: { $0 == "." || $0 == ".." }) {
      throw RemoteError.invalidURL(url, reason: "the prefix may not contain '.' or '..'")
    }
    let prefix = path.isEmpty ? "" : path.joined(separator: "/") + "/"
    self.bucket = bucket
    self.prefix = prefix
    self.displayURL = "gs://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast())
    self.transport = transport
    self.tuning = tuning

    if let emulator = environment["STORAGE_EMULATOR_HOST"].flatMap(Self.nonEmpty) {
      // As the official clients do: the emulator's address, plain http unless a scheme is given, no auth.
      var base = emulator.contains("://") ? emulator : "http://" + emulator
      while base.hasSuffix("/") { base.removeLast() }
      guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
        throw RemoteError.invalidSetting(
          remote: name, key: "STORAGE_EMULATOR_HOST", reason: "is '\(emulator)'; expected host:port or http://host:port"
        )
      }
      self.endpoint = base
      self.tokens = nil
      return
    }

    var base = "https://storage.googleapis.com"
    if let value = settings.options["endpoint"] ?? settings.options["endpointurl"] {
      let key = settings.options["endpoint"] != nil ? "endpoint" : "endpointurl"
      base = value.trimmingCharacters(in: .whitespaces)
      while base.hasSuffix("/") { base.removeLast() }
      guard base.hasPrefix("http://") || base.hasPrefix("https://"), base.count > "https://".count,
        !base.contains("?")
      else {
        throw RemoteError.invalidSetting(
          remote: name, key: key,
          reason: "is '\(value)'; expected an http(s) URL such as https://storage.googleapis.com")
      }
      // A bearer token is a password: over plain http it could be read on the way. Only a
      // server on this machine (a test server) may be reached without TLS.
      if base.lowercased().hasPrefix("http://") && !Self.isLoopback(base) {
        throw RemoteError.invalidSetting(
          remote: name, key: key,
          reason:
            "is '\(value)', plain http to another machine: dv would send your Google access token unencrypted; use https://"
        )
      }
    }
    self.endpoint = base
    self.tokens = try Self.tokenProvider(
      remote: name, displayURL: displayURL, options: settings.options, environment: environment,
      transport: transport, tuning: tuning)
  }

  /// True when an http(s) URL's host is this machine (localhost, 127.0.0.0/8, ::1).
  static func isLoopback(_ url: String) -> Bool {
    guard let host = URLComponents(string: url)?.host?.lowercased() else { return false }
    return host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
  }

  /// The credentials, first found first: the `token` setting, the `credentialpath` setting,
  /// `GOOGLE_OAUTH_ACCESS_TOKEN`, `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default
  /// file (in `CLOUDSDK_CONFIG` or `~/.config/gcloud`).
  private static func tokenProvider(
    remote name: String, displayURL: String, options: [String: String], environment: [String: String],
    transport: HTTPTransport, tuning: GCSTuning
  ) throws -> GCSTokenProvider {
    func fromFile(path: String, setting: String, source: String) throws -> GCSTokenProvider {
      let credentials: GCSCredentialFile
      do { credentials = try GCSCredentialFile.load(path: path) } catch {
        throw RemoteError.invalidSetting(remote: name, key: setting, reason: "names '\(path)', which \(error)")
      }
      return GCSOAuthTokens(
        credentials: credentials, source: source, remote: displayURL, transport: transport, retry: tuning.retry,
        now: tuning.now)
    }
    if let token = options["token"] {
      guard let token = nonEmpty(token) else {
        throw RemoteError.invalidSetting(remote: name, key: "token", reason: "is empty")
      }
      return GCSStaticToken(token, origin: "the access token of setting 'token'")
    }
    if let path = options["credentialpath"] {
      guard let path = nonEmpty(path) else {
        throw RemoteError.invalidSetting(remote: name, key: "credentialpath", reason: "is empty")
      }
      return try fromFile(path: path, setting: "credentialpath", source: "setting 'credentialpath'")
    }
    if let token = environment["GOOGLE_OAUTH_ACCESS_TOKEN"].flatMap(nonEmpty) {
      return GCSStaticToken(token, origin: "the access token in GOOGLE_OAUTH_ACCESS_TOKEN")
    }
    if let path = environment["GOOGLE_APPLICATION_CREDENTIALS"].flatMap(nonEmpty) {
      return try fromFile(
        path: path, setting: "GOOGLE_APPLICATION_CREDENTIALS", source: "GOOGLE_APPLICATION_CREDENTIALS")
    }
    // gcloud's application-default credentials ('gcloud auth application-default login').
    let gcloudConfig =
      environment["CLOUDSDK_CONFIG"].flatMap(nonEmpty)
      ?? environment["HOME"].flatMap(nonEmpty).map { $0 + "/.config/gcloud" }
    let wellKnown = gcloudConfig.map { $0 + "/application_default_credentials.json" }
    if let wellKnown, FileSystem.exists(wellKnown) {
      return try fromFile(
        path: wellKnown, setting: "application_default_credentials.json", source: "gcloud's application default")
    }
    throw RemoteError.missingCredentials(
      remote: name,
      hint: "dv looked at the remote's settings 'credentialpath' and 'token', at GOOGLE_APPLICATION_CREDENTIALS and "
        + "GOOGLE_OAUTH_ACCESS_TOKEN, and at \(wellKnown ?? "gcloud's application_default_credentials.json"); "
        + "point GOOGLE_APPLICATION_CREDENTIALS or 'dv remote modify \(name) credentialpath' at a service-account key "
        + "file, or run 'gcloud auth application-default login'")
  }

  /// Why `name` cannot be a bucket (Google's naming rules, loosely); nil when it can.
  private static func bucketNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "the bucket name is missing; expected gs://bucket[/prefix]" }
    let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    guard name.allSatisfy({ allowed.contains($0) }) else {
      return "bucket '\(name)' may hold only lowercase letters, digits, '-', '_' and '.'"
    }
    guard (3...222).contains(name.count), name.first!.isLetter || name.first!.isNumber,
      name.last!.isLetter || name.last!.isNumber
    else { return "bucket '\(name)' must be 3 to 222 characters and begin and end with a letter or digit" }
    return nil
  }

  private static func nonEmpty(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    return trimmed.isEmpty ? nil : trimmed
  }

  // MARK: - Operations

  public func exists(_ key: String) throws -> Bool {
    let request = HTTPRequest(.get, url: objectURL(key) + "?fields=name&prettyPrint=false")
    let response = try perform(request, key: key)
    if response.isSuccess { return true }
    if response.status == 404 {
      try requireBucket(key: key)
      return false
    }
    throw failure(response, key: key)
  }

  public func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws {
    let base =
      "\(endpoint)/storage/v1/b/\(GCSURL.encode(bucket))/o?prefix=\(GCSURL.encode(self.prefix + prefix))"
      + "&maxResults=\(tuning.pageSize)&fields=\(GCSURL.encode("items(name,size),nextPageToken"))&prettyPrint=false"
    var pageToken: String?
    var seenTokens = Set<String>()
    repeat {
      let url = base + (pageToken.map { "&pageToken=" + GCSURL.encode($0) } ?? "")
      let (response, page) = try listingPage(url, prefix: prefix)
      bucketSeen.withLock { $0 = true }
      for item in page["items"] as? [[String: Any]] ?? [] {
        guard let name = item["name"] as? String, name.hasPrefix(self.prefix) else { continue }
        // GCS gives sizes as decimal strings; a number is taken too. Anything else, or a
        // negative size, is a listing dv cannot trust.
        let given = item["size"]
        let size: Int64? =
          given == nil ? 0 : (given as? String).flatMap { Int64($0) } ?? (given as? NSNumber)?.int64Value
        guard let size, size >= 0 else {
          throw RemoteError.server(
            url: remoteURL(prefix), status: response.status,
            message:
              "the listing gives \(name.debugDescription) the size \((given.map { "\($0)" } ?? "").debugDescription), not a byte count"
          )
        }
        if try !each(String(name.dropFirst(self.prefix.count)), size) { return }
      }
      pageToken = (page["nextPageToken"] as? String).flatMap { $0.isEmpty ? nil : $0 }
      // A server repeating a page token would otherwise keep dv listing forever.
      if let token = pageToken, !seenTokens.insert(token).inserted {
        throw RemoteError.server(
          url: remoteURL(prefix), status: response.status, message: "the listing repeated a page token")
      }
    } while pageToken != nil
  }

  /// One page of a listing, parsed. A page that is not UTF-8 JSON was damaged on the way (or the
  /// server is broken) and is asked for again, per the retry policy.
  private func listingPage(_ url: String, prefix: String) throws -> (HTTPResponse, [String: Any]) {
    var attempt = 1
    while true {
      let sink = MemorySink(limit: 64 << 20)
      let response = try perform(HTTPRequest(.get, url: url), key: prefix, into: sink)
      guard response.isSuccess else {
        if response.status == 404 { throw RemoteError.noSuchBucket(url: displayURL) }
        throw failure(response, key: prefix)
      }
      if String(validating: sink.bytes, as: UTF8.self) != nil,
        let page = try? JSONSerialization.jsonObject(with: Data(sink.bytes)) as? [String: Any]
      {
        return (response, page)
      }
      guard attempt <= tuning.retry.retries else {
        throw RemoteError.server(
          url: remoteURL(prefix), status: response.status, message: "the object listing is not JSON")
      }
      tuning.retry.sleep(tuning.retry.delay(beforeRetry: attempt, retryAfter: nil))
      attempt += 1
    }
  }

  public func upload(
    from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void
  ) throws {
    // An empty object goes up as a resumable upload finalised by "bytes */0": valid for GCS, and
    // gcp-storage-emulator fails on an empty media upload.
    if size > tuning.resumableThreshold || size == 0 {
      try resumableUpload(from: path, size: size, to: key, progress: progress)
      return
    }
    let url =
      "\(endpoint)/upload/storage/v1/b/\(GCSURL.encode(bucket))/o?uploadType=media&name=\(GCSURL.encode(prefix + key))"
      + "&fields=name&prettyPrint=false"
    let request = HTTPRequest(
      .post, url: url, headers: ["Content-Type": "application/octet-stream", "Expect": ""],
      body: .file(path: path, offset: 0, length: size))
    let reporter = GCSProgressDeltas(progress)
    let response = try perform(request, key: key, progress: { reporter.at($0.sent) })
    guard response.isSuccess else {
      reporter.at(0)
      if response.status == 404 { throw RemoteError.noSuchBucket(url: displayURL) }
      throw failure(response, key: key)
    }
    reporter.at(size)
  }

  public func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws {
    let sink = FileSink(path: path)
    let reporter = GCSProgressDeltas(progress)
    let response = try perform(
      HTTPRequest(.get, url: objectURL(key) + "?alt=media"), key: key, into: sink,
      progress: { reporter.at($0.received) }
    )
    guard response.isSuccess else {
      reporter.at(0)
      if response.status == 404 {
        try requireBucket(key: key)
        throw RemoteError.notFound(url: remoteURL(key))
      }
      throw failure(response, key: key)
    }
    // No fsync: the caller hashes the file and decides whether and how it enters the cache.
    do { try sink.finish(sync: false) } catch { throw RemoteError.transport(url: remoteURL(key), message: "\(error)") }
  }

  public func read(
    _ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void
  ) throws {
    if let range, range.isEmpty { return try sink.begin(at: range.lowerBound) }
    var request = HTTPRequest(.get, url: objectURL(key) + "?alt=media")
    if let range { request.headers.set("Range", RangedBodySink.rangeHeader(range)) }
    let body = RangedBodySink(sink, requestedStart: range?.lowerBound ?? 0, url: remoteURL(key))
    let reporter = GCSProgressDeltas(progress)
    let response = try perform(request, key: key, into: body, progress: { reporter.at($0.received) })
    guard response.isSuccess else {
      reporter.at(0)
      if response.status == 404 {
        try requireBucket(key: key)
        throw RemoteError.notFound(url: remoteURL(key))
      }
      if response.status == 416, let range {
        throw RemoteError.server(
          url: remoteURL(key), status: 416,
          message: "the range \(range.lowerBound)..<\(range.upperBound) lies outside the object")
      }
      throw failure(response, key: key)
    }
    try body.requireEnd(of: range, status: response.status)
  }

  public func delete(_ key: String) throws {
    let response = try perform(HTTPRequest(.delete, url: objectURL(key)), key: key)
    if response.isSuccess { return }
    if response.status == 404 {
      try requireBucket(key: key)
      return
    }
    throw failure(response, key: key)
  }

  // MARK: - Requests

  /// The JSON API URL of the object at `key`.
  func objectURL(_ key: String) -> String {
    "\(endpoint)/storage/v1/b/\(GCSURL.encode(bucket))/o/\(GCSURL.encode(prefix + key))"
  }

  /// `gs://bucket/prefix/key`, for messages.
  func remoteURL(_ key: String) -> String { "gs://\(bucket)/\(prefix)\(key)" }

  /// Sends `request` with a bearer token, retrying per the tuning's policy; a 401 is retried
  /// once with a renewed token. Failures without a response become `RemoteError.transport`.
  func perform(
    _ request: HTTPRequest, key: String, into sink: HTTPResponseSink? = nil, progress: HTTPProgressHandler? = nil
  ) throws -> HTTPResponse {
    var refused: String?
    for _ in 0..<2 {
      var authorised = request
      var token: String?
      if let tokens {
        token = try tokens.token(replacing: refused)
        authorised.headers.set("Authorization", "Bearer " + token!)
      }
      let response: HTTPResponse
      do {
        response = try tuning.retry.run { _ in try transport.send(authorised, into: sink, progress: progress) }
      } catch HTTPError.sink(_, let error as RemoteError) {
        // A sink that judged the response (a ranged read's) already names the object.
        throw error
      } catch HTTPError.sink(_, let error as SystemError) where error.isOutOfSpace {
        // The local disk is full: not the remote's failure, and no retry will help.
        throw error
      } catch let error as HTTPError {
        throw RemoteError.transport(url: remoteURL(key), message: Self.detail(of: error))
      }
      guard response.status == 401, let token, refused == nil, tokens is GCSOAuthTokens else {
        return response
      }
      refused = token
    }
    preconditionFailure("unreachable: the second attempt returns")
  }

  /// What went wrong with a request, without its URL (the message names the gs:// URL instead).
  static func detail(of error: HTTPError) -> String {
    switch error {
    case .invalidURL(let url): return "'\(url)' is not a valid http or https url; check the endpoint"
    case .cannotResolve(_, let detail): return "\(detail); check the endpoint and the network"
    case .cannotConnect(let url, let detail): return "could not connect to \(url) (\(detail)); check the network"
    case .connectionLost(_, let detail): return "the connection was lost (\(detail))"
    case .timedOut(_, let detail): return "timed out (\(detail))"
    case .tls(_, let detail): return "TLS failed (\(detail)); check the server's certificate or the system CA store"
    case .aborted: return "aborted"
    case .sink(_, let error): return "\(error)"
    case .other(_, let detail): return detail
    }
  }

  /// Throws `noSuchBucket` when the bucket is absent; used after a 404 on an object, which GCS
  /// also answers when the whole bucket is missing.
  private func requireBucket(key: String) throws {
    if bucketSeen.withLock({ $0 }) { return }
    let url = "\(endpoint)/storage/v1/b/\(GCSURL.encode(bucket))?fields=name&prettyPrint=false"
    let response = try perform(HTTPRequest(.get, url: url), key: key)
    switch response.status {
    case 404: throw RemoteError.noSuchBucket(url: displayURL)
    // A key allowed to touch objects may still not read bucket metadata: the bucket exists then.
    case 200..<300, 401, 403: bucketSeen.withLock { $0 = true }
    default: throw failure(response, key: key)
    }
  }

  /// The error for an unsuccessful response to a request about `key`.
  func failure(_ response: HTTPResponse, key: String) -> RemoteError {
    let url = remoteURL(key)
    let message = Self.errorMessage(response.errorBody)
    let said = message.map { " (the server said: \($0))" } ?? ""
    switch response.status {
    case 401:
      return .accessDenied(
        url: url, hint: "\(tokens?.origin ?? "the request") was not accepted\(said); renew or replace the credentials")
    case 403:
      return .accessDenied(
        url: url,
        hint: "\(tokens?.origin ?? "the request") may not do this\(said); grant it a role on bucket '\(bucket)' "
          + "such as Storage Object Admin")
    case 404: return .notFound(url: url)
    default: return .server(url: url, status: response.status, message: message ?? response.statusText)
    }
  }

  /// The message of a JSON API error body (`{"error": {"code": 403, "message": "…"}}`) on one
  /// line; nil when there is none.
  static func errorMessage(_ body: [UInt8]) -> String? {
    guard !body.isEmpty else { return nil }
    if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
      if let error = object["error"] as? [String: Any] {
        let message =
          (error["message"] as? String) ?? ((error["errors"] as? [[String: Any]])?.first?["message"] as? String)
        if let message, !GCSURL.oneLine(message).isEmpty { return GCSURL.oneLine(message) }
      }
      if let oauth = GCSOAuthTokens.oauthError(body) { return oauth }
    }
    let text = GCSURL.oneLine(String(decoding: body.prefix(300), as: UTF8.self))
    return text.isEmpty ? nil : text
  }
}

/// Sizes, retries and the clock of a GCS remote; the defaults are for real use, tests shrink them.
package struct GCSTuning: Sendable {
  /// Retries of each request (and of each resumable chunk).
  package var retry: RetryPolicy
  /// Objects per listing page (GCS returns at most 1,000).
  package var pageSize: Int
  /// Files larger than this go up in a resumable upload.
  package var resumableThreshold: Int64
  /// The bytes of one resumable chunk: a multiple of 256 KiB.
  package var chunkSize: Int64
  /// The time, for token expiry.
  package var now: @Sendable () -> Date

  package init(
    retry: RetryPolicy = RetryPolicy(), pageSize: Int = 1000, resumableThreshold: Int64 = 64 << 20,
    chunkSize: Int64 = 16 << 20, now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.retry = retry
    self.pageSize = max(1, pageSize)
    self.resumableThreshold = resumableThreshold
    self.chunkSize = max(256 << 10, chunkSize / (256 << 10) * (256 << 10))
    self.now = now
  }
}

/// Turns positions ("this many bytes are done") into the deltas `Remote` progress handlers get,
/// taking bytes back when a retried attempt starts over.
final class GCSProgressDeltas {
  private let report: (Int64) -> Void
  private var reported: Int64 = 0

  init(_ report: @escaping (Int64) -> Void) { self.report = report }

  /// The transfer is at `position`; returns true so that it can serve as an `HTTPProgressHandler`.
  @discardableResult
  func at(_ position: Int64) -> Bool {
    if position != reported {
      report(position - reported)
      reported = position
    }
    return true
  }
}
