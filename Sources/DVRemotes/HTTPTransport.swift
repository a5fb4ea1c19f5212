import DVBasics

#if canImport(Glibc)
  import Glibc
#endif

/// Sends HTTP requests. `CurlTransport` is the real one; tests substitute doubles that inject
/// faults, so that the retry policy and its callers can be checked without a network.
public protocol HTTPTransport: Sendable {
  /// Performs one request and waits for it. A successful (2xx) response's body goes to `sink`
  /// (discarded when nil); any other response's body is kept, bounded, in `errorBody`.
  /// `progress` is called now and then during the transfer; returning false aborts it.
  /// Throws `HTTPError` when no response arrives (DNS, connection, TLS, timeout, abort) or when
  /// the sink fails.
  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
}

extension HTTPTransport {
  /// Performs a request without a body sink or progress handler (HEAD, DELETE, small PUTs).
  public func send(_ request: HTTPRequest) throws -> HTTPResponse {
    try send(request, into: nil, progress: nil)
  }

  /// Performs a request and returns a successful response's body from memory; fails when the
  /// body exceeds `limit` bytes.
  public func data(_ request: HTTPRequest, limit: Int = 16 << 20) throws -> (HTTPResponse, [UInt8]) {
    let sink = MemorySink(limit: limit)
    let response = try send(request, into: sink, progress: nil)
    return (response, sink.bytes)
  }
}

/// An HTTP method.
public enum HTTPMethod: String, Sendable {
  case get = "GET"
  case head = "HEAD"
  case put = "PUT"
  case post = "POST"
  case delete = "DELETE"
}

/// What a request sends after its headers.
public enum HTTPBody: Sendable, Equatable {
  case none
  case bytes([UInt8])
  /// `length` bytes of the file at `path` from `offset`: multipart uploads send ranges of one
  /// file without reading it into memory.
  case file(path: String, offset: Int64, length: Int64)

  /// The number of bytes sent.
  public var length: Int64 {
    switch self {
    case .none: return 0
    case .bytes(let bytes): return Int64(bytes.count)
    case .file(_, _, let length): return length
    }
  }
}

/// How long a request may take.
public struct HTTPTimeouts: Sendable, Equatable {
  /// Seconds to establish the connection (DNS, TCP, TLS).
  public var connect: Double
  /// Seconds for the whole transfer; nil: no limit (only `stall` applies).
  public var total: Double?
  /// Seconds without any progress (below one byte per second) before giving up, so that a hung
  /// server cannot hang dv when there is no total limit.
  public var stall: Double

  public init(connect: Double = 30, total: Double? = nil, stall: Double = 60) {
    self.connect = connect
    self.total = total
    self.stall = stall
  }
}

/// One HTTP request.
public struct HTTPRequest: Sendable {
  public var method: HTTPMethod
  /// The absolute http(s) URL, percent-encoded.
  public var url: String
  public var headers: HTTPHeaders
  public var body: HTTPBody
  public var timeouts: HTTPTimeouts
  /// Follow 3xx redirects (to http and https only). Signed requests turn this off: a redirect
  /// would need a new signature.
  public var followRedirects: Bool

  public init(
    _ method: HTTPMethod = .get, url: String, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .none,
    timeouts: HTTPTimeouts = HTTPTimeouts(), followRedirects: Bool = true
  ) {
    self.method = method
    self.url = url
    self.headers = headers
    self.body = body
    self.timeouts = timeouts
    self.followRedirects = followRedirects
  }
}

/// Header fields in order; names compare case-insensitively.
public struct HTTPHeaders: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
  public private(set) var fields: [(name: String, value: String)]

  public init() { fields = [] }

  public init(dictionaryLiteral elements: (String, String)...) {
    fields = elements.map { (name: $0.0, value: $0.1) }
  }

  /// The first value of a header; nil when absent.
  public subscript(_ name: String) -> String? {
    fields.first { $0.name.lowercased() == name.lowercased() }?.value
  }

  /// Adds a field (a header may occur more than once).
  public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

  /// Replaces every field of that name with one.
  public mutating func set(_ name: String, _ value: String) {
    remove(name)
    add(name, value)
  }

  /// Removes every field of that name.
  public mutating func remove(_ name: String) { fields.removeAll { $0.name.lowercased() == name.lowercased() } }

  public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

  public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
    a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0 == $1 }
  }
}

/// The status and headers of the final response (after redirects).
public struct HTTPResponse: Sendable {
  public var status: Int
  /// The reason phrase of the status line ("Not Found"); empty for HTTP/2.
  public var reason: String
  public var headers: HTTPHeaders
  /// The first 64 KiB of an unsuccessful response's body (S3 and GCS explain errors there).
  public var errorBody: [UInt8]

  public init(status: Int, reason: String = "", headers: HTTPHeaders = HTTPHeaders(), errorBody: [UInt8] = []) {
    self.status = status
    self.reason = reason
    self.headers = headers
    self.errorBody = errorBody
  }

  /// True for 2xx.
  public var isSuccess: Bool { (200..<300).contains(status) }

  /// "HTTP 404 Not Found", for messages.
  public var statusText: String { reason.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(reason)" }
}

/// Transfer progress: bytes so far and, when the server said, in total.
public struct HTTPProgress: Sendable {
  public var received: Int64
  public var expected: Int64?
  public var sent: Int64
}

/// Called during a transfer; return false to abort it (`HTTPError.aborted`).
public typealias HTTPProgressHandler = (HTTPProgress) -> Bool

/// Receives the body of a successful response as it streams in.
public protocol HTTPResponseSink: AnyObject {
  /// The final response is successful; called once, before any body byte (also for an empty
  /// body). A sink that resumes decides here whether to append (206) or start over (200).
  func begin(_ response: HTTPResponse) throws
  /// The next bytes of the body.
  func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Collects a body in memory, up to a limit.
public final class MemorySink: HTTPResponseSink {
  public private(set) var bytes: [UInt8] = []
  public let limit: Int

  public init(limit: Int = 16 << 20) { self.limit = limit }

  public func begin(_ response: HTTPResponse) throws { bytes.removeAll() }

  public func write(_ chunk: UnsafeRawBufferPointer) throws {
    guard bytes.count + chunk.count <= limit else { throw HTTPSinkError.tooLarge(limit: limit) }
    bytes.append(contentsOf: chunk)
  }
}

/// Writes a body to a file, created (or emptied) when the response begins. Bytes are gathered
/// into 1 MiB writes (a plain-HTTP body arrives in 16 KiB pieces); `finish` writes the rest.
public final class FileSink: HTTPResponseSink {
  public let path: String
  /// Bytes received so far.
  public private(set) var count: Int64 = 0
  private var fd: Int32 = -1
  private var pending: [UInt8] = []
  private static let chunk = 1 << 20

  public init(path: String) { self.path = path }

  deinit { if fd >= 0 { Glibc.close(fd) } }

  public func begin(_ response: HTTPResponse) throws {
    if fd >= 0 { Glibc.close(fd) }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if fd < 0 { throw SystemError("creating '\(path)'", errno: errno) }
    count = 0
    pending.removeAll(keepingCapacity: true)
    pending.reserveCapacity(Self.chunk)
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    count += Int64(bytes.count)
    if pending.isEmpty && bytes.count >= Self.chunk {
      try FileSystem.writeAll(fd, bytes, path: path)
      return
    }
    pending.append(contentsOf: bytes)
    if pending.count >= Self.chunk { try flush() }
  }

  private func flush() throws {
    guard !pending.isEmpty else { return }
    try pending.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
    pending.removeAll(keepingCapacity: true)
  }

  /// Writes what is buffered and closes the file; with `sync`, makes it durable first. A body
  /// that never began leaves no file to finish.
  public func finish(sync: Bool = true) throws {
    guard fd >= 0 else { return }
    defer {
      Glibc.close(fd)
      fd = -1
    }
    try flush()
    if sync && fsync(fd) != 0 { throw SystemError("syncing '\(path)'", errno: errno) }
  }
}

/// Why a sink refused a body.
public enum HTTPSinkError: DVError {
  /// A body kept in memory exceeded its limit.
  case tooLarge(limit: Int)

  public var kind: FailureKind { .failed }
  public var description: String {
    switch self {
    case .tooLarge(let limit): return "the response is larger than the \(limit) bytes expected"
    }
  }
}

/// A request that got no usable response. Messages name the URL without credentials or query.
public enum HTTPError: DVError {
  /// The URL is malformed or its scheme is not http or https.
  case invalidURL(String)
  /// The host name did not resolve.
  case cannotResolve(url: String, detail: String)
  /// No connection could be made (refused, unreachable).
  case cannotConnect(url: String, detail: String)
  /// The connection was lost or the response was cut short.
  case connectionLost(url: String, detail: String)
  /// The connect timeout, the total timeout or the stall timeout expired.
  case timedOut(url: String, detail: String)
  /// The TLS handshake or certificate verification failed.
  case tls(url: String, detail: String)
  /// The progress handler asked to stop.
  case aborted(url: String)
  /// Writing the body (or reading the upload) failed.
  case sink(url: String, error: Error)
  /// Anything else libcurl reported.
  case other(url: String, detail: String)

  public var kind: FailureKind { .failed }

  /// Worth another attempt: the same request may succeed in a moment.
  public var isTransient: Bool {
    switch self {
    case .cannotConnect, .connectionLost, .timedOut: return true
    default: return false
    }
  }

  public var description: String {
    switch self {
    case .invalidURL(let url): return "'\(url)' is not a valid http or https url"
    case .cannotResolve(let url, let detail):
      return "\(url): \(detail); check the host name and the network"
    case .cannotConnect(let url, let detail): return "\(url): could not connect (\(detail)); check the network"
    case .connectionLost(let url, let detail): return "\(url): the connection was lost (\(detail))"
    case .timedOut(let url, let detail): return "\(url): timed out (\(detail))"
    case .tls(let url, let detail):
      return "\(url): TLS failed (\(detail)); check the server's certificate or the system CA store"
    case .aborted(let url): return "\(url): aborted"
    case .sink(let url, let error): return "\(url): \(error)"
    case .other(let url, let detail): return "\(url): \(detail)"
    }
  }
}

/// URL text helpers.
public enum HTTPURL {
  /// The URL as it may appear in messages and logs: no user or password, no query string (it may
  /// hold a signature or a token), no fragment.
  public static func redacted(_ url: String) -> String {
    var rest = Substring(url)
    if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
    guard let schemeEnd = rest.range(of: "://") else { return String(rest) }
    let authorityStart = schemeEnd.upperBound
    let authorityEnd = rest[authorityStart...].firstIndex(of: "/") ?? rest.endIndex
    let authority = rest[authorityStart..<authorityEnd]
    guard let at = authority.lastIndex(of: "@") else { return String(rest) }
    return String(rest[..<authorityStart]) + authority[authority.index(after: at)...] + rest[authorityEnd...]
  }
}
