import CCurl
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The HTTP transport over libcurl: TLS verified against the system CA store (or `caBundle`),
/// HTTP/2 where the server offers it, connections kept alive between requests. Safe to use from
/// several threads at once: each request takes an idle easy handle (whose connection cache
/// survives `curl_easy_reset`) or makes one.
public final class CurlTransport: HTTPTransport, @unchecked Sendable {
  /// A PEM file of trusted certificates instead of the system store; nil: the system store.
  public let caBundle: String?
  public let userAgent: String
  private let idle = Locked<[UnsafeMutableRawPointer]>([])
  private static let maxIdleHandles = 8

  /// The process-wide transport: every request through it may reuse its open connections.
  public static let shared = CurlTransport()

  /// libcurl's global state, set up once before the first handle (curl_global_init is not
  /// thread-safe on its own; a static let is initialised exactly once).
  private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

  /// `caBundle` defaults to `SSL_CERT_FILE`, as OpenSSL tools read it.
  public init(
    caBundle: String? = ProcessInfo.processInfo.environment["SSL_CERT_FILE"], userAgent: String = "dv/1"
  ) {
    self.caBundle = caBundle
    self.userAgent = userAgent
  }

  deinit {
    for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle) }
  }

  public func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    let shownURL = HTTPURL.redacted(request.url)
    let lowered = request.url.lowercased()
    guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else {
      throw HTTPError.invalidURL(shownURL)
    }
    guard Self.globalInit == CURLE_OK, let handle = takeHandle() else {
      throw HTTPError.other(url: shownURL, detail: "libcurl could not be initialised")
    }
    defer { giveBack(handle) }

    let transfer = CurlTransfer(sink: sink, progress: progress, body: request.body)
    defer { transfer.close() }
    var headerList: UnsafeMutablePointer<curl_slist>?
    defer { curl_slist_free_all(headerList) }
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    defer { errorBuffer.deallocate() }

    try transfer.openBody()
    for (name, value) in request.headers {
      // "Name;" is how libcurl is told to send a header with an empty value.
      headerList = curl_slist_append(headerList, value.isEmpty ? "\(name);" : "\(name): \(value)")
    }
    // libcurl asks "Expect: 100-continue" before larger uploads and waits a round trip for the
    // answer; S3 and GCS need no such handshake ("Expect:" with no value removes the header).
    headerList = curl_slist_append(headerList, "Expect:")
    let context = Unmanaged.passUnretained(transfer).toOpaque()
    dv_curl_setopt_string(handle, CURLOPT_URL, request.url)
    // Signals would interrupt other threads' work; timeouts are enforced without them.
    dv_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
    dv_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
    dv_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
    dv_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1 : 0)
    dv_curl_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
    dv_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1)
    dv_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2)
    if let caBundle { dv_curl_setopt_string(handle, CURLOPT_CAINFO, caBundle) }
    dv_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
    dv_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
    dv_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.timeouts.connect))
    dv_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeouts.total.map(Self.milliseconds) ?? 0)
    dv_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
    dv_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Int(request.timeouts.stall.rounded(.up))))
    dv_curl_setopt_string(handle, CURLOPT_USERAGENT, userAgent)
    dv_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
    dv_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
    // Large writes keep a fast download from costing a system call per 16 KiB.
    dv_curl_setopt_long(handle, CURLOPT_BUFFERSIZE, 512 * 1024)
    dv_curl_setopt_write_function(handle, CURLOPT_HEADERFUNCTION, CurlTransfer.headerCallback)
    dv_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
    dv_curl_setopt_write_function(handle, CURLOPT_WRITEFUNCTION, CurlTransfer.writeCallback)
    dv_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
    if progress != nil {
      dv_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
      dv_curl_setopt_xferinfo_function(handle, CurlTransfer.progressCallback)
      dv_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
    }
    configureMethod(handle, request, context: context)

    let code = curl_easy_perform(handle)
    if let error = transfer.sinkError { throw HTTPError.sink(url: shownURL, error: error) }
    guard code == CURLE_OK else {
      let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
      throw Self.error(code, url: shownURL, detail: detail)
    }
    var status = 0
    dv_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
    let response = transfer.response(status: status)
    if !transfer.began, response.isSuccess {
      // An empty body (or a HEAD): the sink still learns the response.
      do { try sink?.begin(response) } catch { throw HTTPError.sink(url: shownURL, error: error) }
    }
    return response
  }

  private func configureMethod(
    _ handle: UnsafeMutableRawPointer, _ request: HTTPRequest, context: UnsafeMutableRawPointer
  ) {
    switch request.method {
    case .get where request.body == .none:
      dv_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
    case .head:
      dv_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
    case .delete where request.body == .none:
      dv_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, "DELETE")
    case .post:
      dv_curl_setopt_long(handle, CURLOPT_POST, 1)
      dv_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.length))
      setUploadCallbacks(handle, context: context)
    default:
      // PUT, and any other method with a body: an upload of a known length.
      dv_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
      dv_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.length))
      if request.method != .put { dv_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method.rawValue) }
      setUploadCallbacks(handle, context: context)
    }
  }

  private func setUploadCallbacks(_ handle: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) {
    dv_curl_setopt_read_function(handle, CurlTransfer.readCallback)
    dv_curl_setopt_pointer(handle, CURLOPT_READDATA, context)
    // A redirect or an authentication round trip sends the body again from the start.
    dv_curl_setopt_seek_function(handle, CurlTransfer.seekCallback)
    dv_curl_setopt_pointer(handle, CURLOPT_SEEKDATA, context)
  }

  private func takeHandle() -> UnsafeMutableRawPointer? {
    if let handle = idle.withLock({ $0.popLast() }) { return handle }
    return curl_easy_init()
  }

  private func giveBack(_ handle: UnsafeMutableRawPointer) {
    // reset clears the options but keeps live connections and the DNS cache for the next request.
    curl_easy_reset(handle)
    let kept = idle.withLock { handles -> Bool in
      guard handles.count < Self.maxIdleHandles else { return false }
      handles.append(handle)
      return true
    }
    if !kept { curl_easy_cleanup(handle) }
  }

  private static func milliseconds(_ seconds: Double) -> Int { max(1, Int((seconds * 1000).rounded(.up))) }

  /// Maps a libcurl result to what a user can act on.
  static func error(_ code: CURLcode, url: String, detail: String) -> HTTPError {
    switch code {
    case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT: return .invalidURL(url)
    case CURLE_COULDNT_RESOLVE_HOST:
      return .cannotResolve(url: url, detail: URL(string: url)?.host.map { "could not resolve host '\($0)'" } ?? detail)
    case CURLE_COULDNT_RESOLVE_PROXY: return .cannotResolve(url: url, detail: detail)
    case CURLE_COULDNT_CONNECT: return .cannotConnect(url: url, detail: detail)
    case CURLE_OPERATION_TIMEDOUT: return .timedOut(url: url, detail: detail)
    case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2, CURLE_HTTP2_STREAM:
      return .connectionLost(url: url, detail: detail)
    case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
      CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
      CURLE_USE_SSL_FAILED, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
      CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED:
      return .tls(url: url, detail: detail)
    case CURLE_ABORTED_BY_CALLBACK: return .aborted(url: url)
    case CURLE_TOO_MANY_REDIRECTS: return .other(url: url, detail: "too many redirects")
    default: return .other(url: url, detail: detail)
    }
  }
}

/// The state of one transfer that libcurl's callbacks reach through their context pointer.
final class CurlTransfer {
  let sink: HTTPResponseSink?
  let progress: HTTPProgressHandler?
  let body: HTTPBody
  /// Set when the sink (or the upload file) failed; the transfer is aborted and this is thrown.
  var sinkError: Error?
  /// True once the final response's body began.
  var began = false
  private var status = 0
  private var reason = ""
  private var headers = HTTPHeaders()
  private var errorBody: [UInt8] = []
  private var uploadFD: Int32 = -1
  private var uploadPosition: Int64 = 0
  private static let errorBodyLimit = 64 * 1024

  init(sink: HTTPResponseSink?, progress: HTTPProgressHandler?, body: HTTPBody) {
    self.sink = sink
    self.progress = progress
    self.body = body
  }

  func openBody() throws {
    guard case .file(let path, _, _) = body else { return }
    uploadFD = open(path, O_RDONLY | O_CLOEXEC)
    if uploadFD < 0 { throw SystemError("opening '\(path)' to upload it", errno: errno) }
  }

  func close() {
    if uploadFD >= 0 { Glibc.close(uploadFD) }
    uploadFD = -1
  }

  func response(status finalStatus: Int) -> HTTPResponse {
    HTTPResponse(
      status: finalStatus != 0 ? finalStatus : status, reason: reason, headers: headers, errorBody: errorBody)
  }

  /// One header line. A status line starts a new response (a redirect, or 100 Continue, was
  /// followed by another), so only the final response's headers remain.
  func header(_ line: Substring) {
    let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
      let parts = trimmed.split(separator: " ", maxSplits: 2)
      status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
      reason = parts.count > 2 ? String(parts[2]) : ""
      headers = HTTPHeaders()
    } else if let first = line.first, first == " " || first == "\t", let last = headers.fields.last {
      // An obsolete folded continuation of the previous header.
      headers.set(last.name, last.value + " " + trimmed)
    } else if let colon = trimmed.firstIndex(of: ":") {
      headers.add(
        String(trimmed[..<colon]),
        trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
  }

  /// Body bytes of the final response: to the sink when it succeeded, else kept for messages.
  func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
    if !began {
      began = true
      if (200..<300).contains(status) {
        do { try sink?.begin(response(status: status)) } catch {
          sinkError = error
          return false
        }
      }
    }
    if (200..<300).contains(status) {
      do { try sink?.write(bytes) } catch {
        sinkError = error
        return false
      }
    } else if errorBody.count < Self.errorBodyLimit {
      errorBody.append(contentsOf: bytes.prefix(Self.errorBodyLimit - errorBody.count))
    }
    return true
  }

  /// Fills `buffer` with the next upload bytes; 0 at the end, nil on a read error.
  func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int? {
    switch body {
    case .none: return 0
    case .bytes(let bytes):
      let n = min(buffer.count, bytes.count - Int(uploadPosition))
      guard n > 0 else { return 0 }
      bytes.withUnsafeBytes { source in
        buffer.baseAddress!.copyMemory(from: source.baseAddress! + Int(uploadPosition), byteCount: n)
      }
      uploadPosition += Int64(n)
      return n
    case .file(let path, let offset, let length):
      let want = Int(min(Int64(buffer.count), length - uploadPosition))
      guard want > 0 else { return 0 }
      while true {
        let n = pread(uploadFD, buffer.baseAddress, want, off_t(offset + uploadPosition))
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
          // A file that shrank while being sent would otherwise hang the upload.
          sinkError =
            n < 0 ? SystemError("reading '\(path)'", errno: errno) : SystemError("reading '\(path)'", errno: EIO)
          return nil
        }
        uploadPosition += Int64(n)
        return n
      }
    }
  }

  func rewind(to position: Int64) -> Bool {
    guard position >= 0, position <= body.length else { return false }
    uploadPosition = position
    return true
  }

  static let headerCallback: curl_write_callback = { data, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    transfer.header(Substring(line))
    return length
  }

  static let writeCallback: curl_write_callback = { data, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    return transfer.receive(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
  }

  static let readCallback: curl_read_callback = { buffer, size, count, context in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.fill(UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) ?? Int(CURL_READFUNC_ABORT)
  }

  static let seekCallback: curl_seek_callback = { context, offset, origin in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    guard origin == SEEK_SET, transfer.rewind(to: Int64(offset)) else { return CURL_SEEKFUNC_CANTSEEK }
    return CURL_SEEKFUNC_OK
  }

  static let progressCallback: curl_xferinfo_callback = { context, downloadTotal, downloaded, _, uploaded in
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
    let progress = HTTPProgress(
      received: Int64(downloaded), expected: downloadTotal > 0 ? Int64(downloadTotal) : nil, sent: Int64(uploaded))
    return transfer.progress?(progress) == false ? 1 : 0
  }
}
