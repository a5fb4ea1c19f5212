import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// The libcurl transport against the real test server (`scripts/test-http-server`, which
/// `scripts/test` starts and announces in DV_TEST_HTTP_URL and DV_TEST_HTTP_ROOT).
final class HTTPTransportTests: XCTestCase {
  var server: String!
  var served: String!
  let transport = CurlTransport()
  /// A file name of this test's own, so that the server's per-path hooks start fresh.
  var file: String!

  override func setUpWithError() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let url = environment["DV_TEST_HTTP_URL"], let root = environment["DV_TEST_HTTP_ROOT"] else {
      throw XCTSkip("no test HTTP server: run scripts/test, which starts one and sets DV_TEST_HTTP_URL")
    }
    server = url
    served = root
    file = "transport-\(UUID().uuidString).bin"
  }

  override func tearDownWithError() throws {
    if let served, let file { try? FileSystem.removeFile(served + "/" + file) }
  }

  /// Places a file of `count` patterned bytes on the server.
  @discardableResult
  func serve(_ count: Int) throws -> [UInt8] {
    let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 251) }
    try FileSystem.writeAtomically(bytes, to: served + "/" + file)
    return bytes
  }

  func testGetIntoMemory() throws {
    let bytes = try serve(100_000)
    let (response, body) = try transport.data(HTTPRequest(url: "\(server!)/\(file!)"))
    XCTAssertEqual(response.status, 200)
    XCTAssertTrue(response.isSuccess)
    XCTAssertEqual(body, bytes)
    XCTAssertEqual(response.headers["content-length"], "100000")
    XCTAssertNotNil(response.headers["ETag"])
    XCTAssertNotNil(response.headers["Last-Modified"])
  }

  func testGetIntoAFile() throws {
    let bytes = try serve(300_000)
    let path = NSTemporaryDirectory() + "/dv-transport-\(UUID().uuidString)"
    defer { try? FileSystem.removeFile(path) }
    let sink = FileSink(path: path)
    let response = try transport.send(HTTPRequest(url: "\(server!)/\(file!)"), into: sink, progress: nil)
    try sink.finish()
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(sink.count, 300_000)
    XCTAssertEqual(try FileSystem.readFileIfPresent(path), bytes)
  }

  func testALargeBodyIsWrittenWholeThroughTheSinksBuffer() throws {
    // Larger than the sink's 1 MiB write buffer and not a multiple of it.
    let bytes = try serve(3_500_001)
    let path = NSTemporaryDirectory() + "/dv-transport-\(UUID().uuidString)"
    defer { try? FileSystem.removeFile(path) }
    let sink = FileSink(path: path)
    _ = try transport.send(HTTPRequest(url: "\(server!)/\(file!)"), into: sink, progress: nil)
    try sink.finish(sync: false)
    XCTAssertEqual(sink.count, 3_500_001)
    XCTAssertEqual(try FileSystem.readFileIfPresent(path), bytes)
  }

  func testHeadHasHeadersAndNoBody() throws {
    try serve(1234)
    let (response, body) = try transport.data(HTTPRequest(.head, url: "\(server!)/\(file!)"))
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(response.headers["Content-Length"], "1234")
    XCTAssertEqual(body, [])
  }

  func testRequestHeadersAreSent() throws {
    let bytes = try serve(1000)
    let request = HTTPRequest(url: "\(server!)/\(file!)", headers: ["Range": "bytes=900-"])
    let (response, body) = try transport.data(request)
    XCTAssertEqual(response.status, 206)
    XCTAssertEqual(response.headers["Content-Range"], "bytes 900-999/1000")
    XCTAssertEqual(body, Array(bytes[900...]))
  }

  func testAnUnsuccessfulResponseKeepsItsBodyOutOfTheSink() throws {
    let sink = MemorySink()
    let response = try transport.send(HTTPRequest(url: "\(server!)/missing-\(file!)"), into: sink, progress: nil)
    XCTAssertEqual(response.status, 404)
    XCTAssertEqual(response.statusText, "HTTP 404 Not Found")
    XCTAssertFalse(response.isSuccess)
    XCTAssertEqual(String(decoding: response.errorBody, as: UTF8.self), "not found\n")
    XCTAssertEqual(sink.bytes, [])
  }

  func testStatusCodesArriveAsResponses() throws {
    for status in [500, 503, 429, 403] {
      let response = try transport.send(HTTPRequest(url: "\(server!)/status/\(status)/\(file!)"))
      XCTAssertEqual(response.status, status)
    }
  }

  func testRedirectsAreFollowed() throws {
    let bytes = try serve(10)
    let (response, body) = try transport.data(HTTPRequest(url: "\(server!)/redirect/\(file!)"))
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(body, bytes)
    let unfollowed = try transport.send(HTTPRequest(url: "\(server!)/redirect/\(file!)", followRedirects: false))
    XCTAssertEqual(unfollowed.status, 302)
    XCTAssertEqual(unfollowed.headers["Location"], "/\(file!)")
  }

  func testUploadsFromMemoryAndFromAFileRange() throws {
    let (put, echoed) = try transport.data(HTTPRequest(.put, url: "\(server!)/echo", body: .bytes(Array("hello".utf8))))
    XCTAssertEqual(put.status, 200)
    XCTAssertEqual(put.headers["X-Method"], "PUT")
    XCTAssertEqual(echoed, Array("hello".utf8))

    let bytes = try serve(10_000)
    let range = HTTPBody.file(path: served + "/" + file, offset: 1000, length: 5000)
    let (post, part) = try transport.data(HTTPRequest(.post, url: "\(server!)/echo", body: range))
    XCTAssertEqual(post.headers["X-Method"], "POST")
    XCTAssertEqual(part, Array(bytes[1000..<6000]))
  }

  func testADroppedConnectionIsATransientError() throws {
    try serve(100_000)
    XCTAssertThrowsError(try transport.data(HTTPRequest(url: "\(server!)/drop/1/\(file!)"))) { error in
      guard case HTTPError.connectionLost(let url, _)? = error as? HTTPError else { return XCTFail("\(error)") }
      XCTAssertEqual(url, "\(server!)/drop/1/\(file!)")
      XCTAssertTrue((error as! HTTPError).isTransient)
    }
  }

  func testTheTotalTimeoutStopsASlowTransfer() throws {
    try serve(100_000)
    let request = HTTPRequest(url: "\(server!)/slow/\(file!)", timeouts: HTTPTimeouts(connect: 5, total: 0.5))
    XCTAssertThrowsError(try transport.data(request)) { error in
      guard case HTTPError.timedOut? = error as? HTTPError else { return XCTFail("\(error)") }
      XCTAssertTrue((error as! HTTPError).isTransient)
    }
  }

  func testTheProgressHandlerCanAbort() throws {
    try serve(1_000_000)
    XCTAssertThrowsError(
      try transport.send(HTTPRequest(url: "\(server!)/slow/\(file!)"), into: MemorySink(), progress: { _ in false })
    ) { error in
      guard case HTTPError.aborted? = error as? HTTPError else { return XCTFail("\(error)") }
    }
  }

  func testARefusedConnectionIsReadable() throws {
    let port = try Self.closedPort()
    XCTAssertThrowsError(try transport.send(HTTPRequest(url: "http://127.0.0.1:\(port)/x?token=secret"))) { error in
      guard case HTTPError.cannotConnect? = error as? HTTPError else { return XCTFail("\(error)") }
      XCTAssertTrue("\(error)".hasPrefix("http://127.0.0.1:\(port)/x: could not connect"), "\(error)")
      XCTAssertFalse("\(error)".contains("secret"))
    }
  }

  func testATLSFailureIsReadable() throws {
    let plain = server.replacingOccurrences(of: "http://", with: "https://")
    XCTAssertThrowsError(try transport.send(HTTPRequest(url: "\(plain)/\(file!)"))) { error in
      guard case HTTPError.tls? = error as? HTTPError else { return XCTFail("\(error)") }
      XCTAssertTrue("\(error)".contains("TLS failed"), "\(error)")
      XCTAssertFalse((error as! HTTPError).isTransient)
    }
  }

  func testOnlyHTTPAndHTTPSAreSent() {
    XCTAssertThrowsError(try transport.send(HTTPRequest(url: "file:///etc/passwd"))) { error in
      guard case HTTPError.invalidURL? = error as? HTTPError else { return XCTFail("\(error)") }
    }
  }

  func testConnectionsAreReusedAcrossThreads() throws {
    let bytes = try serve(5000)
    let failures = Locked(0)
    DispatchQueue.concurrentPerform(iterations: 16) { _ in
      let result = try? transport.data(HTTPRequest(url: "\(server!)/\(file!)"))
      if result?.1 != bytes { failures.withLock { $0 += 1 } }
    }
    XCTAssertEqual(failures.withLock { $0 }, 0)
  }

  /// A loopback port nothing listens on: bound, then released.
  static func closedPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard bound else { throw SystemError("binding a loopback port", errno: errno) }
    return UInt16(bigEndian: address.sin_port)
  }
}

final class HTTPURLTests: XCTestCase {
  func testRedactionDropsCredentialsQueryAndFragment() {
    XCTAssertEqual(
      HTTPURL.redacted("https://user:pw@host.example:8443/a/b?X-Amz-Signature=s#f"), "https://host.example:8443/a/b")
    XCTAssertEqual(HTTPURL.redacted("https://host/a@b"), "https://host/a@b")
    XCTAssertEqual(HTTPURL.redacted("http://host"), "http://host")
  }
}
