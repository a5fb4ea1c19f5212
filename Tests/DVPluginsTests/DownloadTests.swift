import DVBasics
import DVPipeline
import DVRemotes
import DVStorage
import Foundation
import XCTest

@testable import DVPlugins

/// A server in memory: each request gets the next behaviour of its script (the last one
/// repeats), and `serve` honours Range and If-Range as a real server does.
final class FakeServer: HTTPTransport, @unchecked Sendable {
  enum Behaviour {
    case serve
    /// Answers 200 with the whole content even when a range was asked for.
    case serveIgnoringRange
    /// Sends this many bytes of the body, then loses the connection.
    case drop(after: Int)
    case status(Int, HTTPHeaders)
    case fail(HTTPError)
  }

  let state: Locked<(content: [UInt8], etag: String, script: [Behaviour], requests: [HTTPRequest])>

  init(content: [UInt8], etag: String = "\"v1\"", script: [Behaviour] = [.serve]) {
    state = Locked((content, etag, script, []))
  }

  var requests: [HTTPRequest] { state.withLock { $0.requests } }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    let (content, etag, behaviour) = state.withLock { s -> ([UInt8], String, Behaviour) in
      s.requests.append(request)
      let next = s.script.count > 1 ? s.script.removeFirst() : s.script[0]
      return (s.content, s.etag, next)
    }
    var headers: HTTPHeaders = ["ETag": etag, "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"]
    var body = content[...]
    var status = 200
    switch behaviour {
    case .fail(let error): throw error
    case .status(let code, let extra):
      return HTTPResponse(status: code, headers: extra, errorBody: Array("no\n".utf8))
    case .serve, .drop:
      if let range = request.headers["Range"], request.headers["If-Range"] == etag,
        let start = Int(range.dropFirst("bytes=".count).dropLast())
      {
        guard start < content.count else {
          return HTTPResponse(status: 416, headers: ["Content-Range": "bytes */\(content.count)"])
        }
        status = 206
        headers.add("Content-Range", "bytes \(start)-\(content.count - 1)/\(content.count)")
        body = content[start...]
      }
    case .serveIgnoringRange: break
    }
    let response = HTTPResponse(status: status, headers: headers)
    if request.method == .head { return response }
    try sink?.begin(response)
    if case .drop(let after) = behaviour {
      try Array(body.prefix(after)).withUnsafeBytes { try sink?.write($0) }
      throw HTTPError.connectionLost(url: HTTPURL.redacted(request.url), detail: "reset by peer")
    }
    try Array(body).withUnsafeBytes { try sink?.write($0) }
    return response
  }
}

final class DownloadTests: XCTestCase {
  var root: String!
  let content = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
  let lines = Locked<[String]>([])
  let sources = Locked<[String]>([])

  override func setUpWithError() throws {
    root = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-download-\(UUID().uuidString)"
    try FileSystem.createDirectory(root + "/.pipeline")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(root) }

  /// The stage `fetch` of a stages.yaml whose `with:` is `with` and whose outs are `outs`.
  func stage(_ with: String, outs: String = "[data/out.bin]") throws -> (Stage, PluginConfig) {
    let text = "stages:\n  fetch:\n    plugin: download\n    with: \(with)\n    outs: \(outs)\n"
    let pipeline = try PipelineLoader(workspaceRoot: root).load(text: text)
    let stage = pipeline.stages[0]
    return (stage, try BuiltInPlugins.registry(searchPath: []).resolve(stage).1)
  }

  func assertInvalid(
    _ with: String, outs: String = "[data/out.bin]", _ message: String, at place: String,
    file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertThrowsError(try DownloadPlugin().validate(config: try stage(with, outs: outs).1), file: file, line: line) {
      XCTAssertEqual("\($0)", "stages.yaml:\(place): \(message)", file: file, line: line)
    }
  }

  func run(_ server: FakeServer, _ with: String = "{url: https://data.example/q.jsonl}") async throws {
    let (stage, config) = try stage(with)
    try DownloadPlugin(transport: server, retryDelay: 0).validate(config: config)
    let context = StageContext(
      stage: stage, config: config, workspaceRoot: root, output: { [lines] line in lines.withLock { $0.append(line) } },
      recordSource: { [sources] version in sources.withLock { $0.append(version) } })
    try await DownloadPlugin(transport: server, retryDelay: 0).run(context)
  }

  var output: [UInt8]? { try? FileSystem.readFileIfPresent(root + "/data/out.bin") }

  var leftovers: [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: root + "/.pipeline/tmp/downloads")) ?? []
  }

  func digest(_ bytes: [UInt8]) -> String {
    var hasher = SHA256Hasher()
    hasher.update(bytes)
    return hasher.finalize().hex
  }

  // MARK: - Configuration

  func testTheOutputDefaultsToTheSingleOut() throws {
    try DownloadPlugin().validate(config: try stage("{url: https://data.example/q.jsonl}").1)
    let settings = try DownloadSettings(try stage("{url: https://data.example/q.jsonl}").1)
    XCTAssertEqual(settings.output.value, "data/out.bin")
    XCTAssertEqual(settings.retries, 3)
    XCTAssertNil(settings.timeout)
    let chosen = try DownloadSettings(
      try stage(
        "{url: 'file:///tmp/x', output: data/b.bin, timeout: 2.5, retries: 0}", outs: "[data/a.bin, data/b.bin]"
      )
      .1)
    XCTAssertEqual(chosen.output.value, "data/b.bin")
    XCTAssertEqual(chosen.timeout, 2.5)
    XCTAssertEqual(chosen.retries, 0)
  }

  func testBadConfigurationsNameTheirPlace() {
    assertInvalid("{sha256: abc}", "plugin 'download' needs option 'url' (a string)", at: "4:11")
    assertInvalid(
      "{url: ftp://host/x}", "the url 'ftp://host/x' of plugin 'download' must start with http://, https:// or file://",
      at: "4:17")
    assertInvalid(
      "{url: 'https://u:secret@host/x?sig=1', sha256: nothex}",
      "option 'sha256' of plugin 'download' must be 64 hexadecimal digits", at: "4:58")
    assertInvalid(
      "{url: 'https://'}", "'https://' is not a valid url; write it like https://example.org/data.csv", at: "4:17")
    assertInvalid(
      "{url: 'file:relative'}", "'file:relative' is not a valid file url; write it like file:///absolute/path",
      at: "4:17")
    assertInvalid(
      "{url: 'https://h/x'}", outs: "[]",
      "plugin 'download' needs an output: declare it in outs (or give option 'output')",
      at: "4:11")
    assertInvalid(
      "{url: 'https://h/x'}", outs: "[a, b]",
      "the stage has 2 outs; say which one the download writes with option 'output'", at: "4:11")
    assertInvalid(
      "{url: 'https://h/x', output: elsewhere.bin}",
      "the output 'elsewhere.bin' is not among the stage's outs; add it to outs", at: "4:40")
    assertInvalid(
      "{url: 'https://h/x', timeout: 0}", "option 'timeout' of plugin 'download' must be a positive number of seconds",
      at: "4:41")
    assertInvalid(
      "{url: 'https://h/x', retries: -1}", "option 'retries' of plugin 'download' must be 0 or more", at: "4:41")
    assertInvalid(
      "{url: 'https://h/x', retries: many}", "option 'retries' of plugin 'download' must be an integer", at: "4:41")
  }

  func testTheSecretsOfAURLNeverAppearInMessages() {
    assertInvalid(
      "{url: 'gopher://user:pw@h/x?token=t'}",
      "the url 'gopher://h/x' of plugin 'download' must start with http://, https:// or file://", at: "4:17")
  }

  // MARK: - Running

  func testADownloadWritesTheOutputAndRecordsTheETag() async throws {
    let server = FakeServer(content: content)
    try await run(server, "{url: 'https://data.example/q.jsonl', sha256: \(digest(content))}")
    XCTAssertEqual(output, content)
    XCTAssertEqual(sources.withLock { $0 }, ["etag \"v1\""])
    XCTAssertEqual(leftovers, [])
    XCTAssertEqual(server.requests.map(\.method), [.get])
    XCTAssertNil(server.requests[0].headers["Range"])
  }

  func testA503IsRetriedAndLogged() async throws {
    let server = FakeServer(content: content, script: [.status(503, ["Retry-After": "0"]), .serve])
    try await run(server)
    XCTAssertEqual(output, content)
    XCTAssertEqual(server.requests.count, 2)
    XCTAssertTrue(
      lines.withLock { $0 }.contains("HTTP 503; retrying in 0.0 s (attempt 2 of 4)"), "\(lines.withLock { $0 })")
  }

  func testAnInterruptedDownloadResumesWithRangeAndIfRange() async throws {
    let server = FakeServer(content: content, script: [.drop(after: 20_000), .serve])
    try await run(server)
    XCTAssertEqual(output, content)
    let second = server.requests[1]
    XCTAssertEqual(second.headers["Range"], "bytes=20000-")
    XCTAssertEqual(second.headers["If-Range"], "\"v1\"")
    XCTAssertTrue(lines.withLock { $0 }.contains("resuming at 19.5 KiB"))
    XCTAssertEqual(leftovers, [])
  }

  func testAResumeAcrossRunsContinuesThePartialFile() async throws {
    let failing = FakeServer(content: content, script: [.drop(after: 30_000)])
    do {
      try await run(failing, "{url: 'https://data.example/q.jsonl', retries: 0}")
      XCTFail("the download should fail")
    } catch let error as StageRunError {
      XCTAssertEqual(
        "\(error)",
        "https://data.example/q.jsonl: the connection was lost (reset by peer); rerun `dv repro` to resume")
    }
    XCTAssertNil(output)
    XCTAssertEqual(leftovers.count, 2, "the partial file and its validator stay: \(leftovers)")

    let server = FakeServer(content: content)
    try await run(server, "{url: 'https://data.example/q.jsonl', retries: 0}")
    XCTAssertEqual(output, content)
    XCTAssertEqual(server.requests[0].headers["Range"], "bytes=30000-")
  }

  func testAServerIgnoringTheRangeStartsOver() async throws {
    let server = FakeServer(content: content, script: [.drop(after: 10_000), .serveIgnoringRange])
    try await run(server)
    XCTAssertEqual(output, content)
    XCTAssertEqual(server.requests[1].headers["Range"], "bytes=10000-")
  }

  func testAChangedResourceStartsOver() async throws {
    let server = FakeServer(content: content, script: [.drop(after: 10_000), .serve])
    let changed = Array(content.reversed())
    // The server's resource changes between the attempts: If-Range no longer matches.
    let stage = try stage("{url: https://data.example/q.jsonl}")
    let context = StageContext(
      stage: stage.0, config: stage.1, workspaceRoot: root,
      recordSource: { [sources] version in sources.withLock { $0.append(version) } })
    let swapping = SwappingTransport(server: server) {
      $0.state.withLock {
        $0.content = changed; $0.etag = "\"v2\""
      }
    }
    try await DownloadPlugin(transport: swapping, retryDelay: 0).run(context)
    XCTAssertEqual(output, changed)
    XCTAssertEqual(sources.withLock { $0 }, ["etag \"v2\""])
  }

  func testARangeTheServerCannotSatisfyStartsOver() async throws {
    // A partial file as long as the resource: the server answers 416 to the range.
    try FileSystem.createDirectory(root + "/.pipeline/tmp/downloads")
    let key = SHA256Hasher.hash(Array("https://data.example/q.jsonl".utf8)).hex
    try FileSystem.writeAtomically(content + [1, 2, 3], to: root + "/.pipeline/tmp/downloads/\(key).part")
    try FileSystem.writeAtomically("\"v1\"", to: root + "/.pipeline/tmp/downloads/\(key).part.validator")
    let server = FakeServer(content: content)
    try await run(server)
    XCTAssertEqual(output, content)
    XCTAssertEqual(server.requests.map { $0.headers["Range"] }, ["bytes=50003-", nil])
  }

  func testASHA256MismatchWritesNothing() async throws {
    let server = FakeServer(content: content)
    let wrong = String(repeating: "ab", count: 32)
    do {
      try await run(server, "{url: 'https://data.example/q.jsonl', sha256: \(wrong)}")
      XCTFail("the download should fail")
    } catch let error as StageRunError {
      XCTAssertEqual(
        "\(error)",
        "https://data.example/q.jsonl: sha256 mismatch: expected \(wrong), got \(digest(content)); "
          + "the file changed at its source or the sha256 option is wrong")
    }
    XCTAssertNil(output)
    XCTAssertEqual(leftovers, [])
  }

  func testNotFoundIsNotRetried() async throws {
    let server = FakeServer(content: content, script: [.status(404, [:])])
    do {
      try await run(server, "{url: 'https://data.example/q.jsonl?token=secret'}")
      XCTFail("the download should fail")
    } catch let error as StageRunError {
      XCTAssertEqual("\(error)", "https://data.example/q.jsonl: not found (HTTP 404); check the url")
    }
    XCTAssertEqual(server.requests.count, 1)
    XCTAssertNil(output)
  }

  func testRetriesRunOut() async throws {
    let server = FakeServer(content: content, script: [.status(500, [:])])
    do {
      try await run(server, "{url: 'https://data.example/q.jsonl', retries: 2}")
      XCTFail("the download should fail")
    } catch let error as StageRunError {
      XCTAssertEqual(
        "\(error)", "https://data.example/q.jsonl: the server answered HTTP 500 after 3 attempts; try again later")
    }
    XCTAssertEqual(server.requests.count, 3)
  }

  func testAFileURLIsCopied() async throws {
    try FileSystem.writeAtomically(content, to: root + "/source.bin")
    try await run(FakeServer(content: []), "{url: 'file://\(root!)/source.bin', sha256: \(digest(content))}")
    XCTAssertEqual(output, content)
    let stat = try FileStat.of(root + "/source.bin")!
    XCTAssertEqual(sources.withLock { $0 }, ["file size 50000 mtime-ns \(stat.mtimeNs)"])
    do {
      try await run(FakeServer(content: []), "{url: 'file://\(root!)/missing.bin'}")
      XCTFail("the download should fail")
    } catch let error as StageRunError {
      XCTAssertEqual("\(error)", "file://\(root!)/missing.bin: not found; check the url")
    }
  }

  // MARK: - Source version

  func testTheSourceVersionIsTheETagOfAHEAD() throws {
    let server = FakeServer(content: content)
    let config = try stage("{url: https://data.example/q.jsonl}").1
    XCTAssertEqual(DownloadPlugin(transport: server).sourceVersion(config: config, workspaceRoot: root), "etag \"v1\"")
    XCTAssertEqual(server.requests.map(\.method), [.head])
    XCTAssertEqual(server.requests[0].timeouts.connect, 5)
  }

  func testNoSourceVersionWhenOffline() throws {
    let offline = FakeServer(
      content: content, script: [.fail(.cannotResolve(url: "https://data.example/q.jsonl", detail: "no network"))])
    let config = try stage("{url: https://data.example/q.jsonl}").1
    XCTAssertNil(DownloadPlugin(transport: offline).sourceVersion(config: config, workspaceRoot: root))
    let missing = FakeServer(content: content, script: [.status(404, [:])])
    XCTAssertNil(DownloadPlugin(transport: missing).sourceVersion(config: config, workspaceRoot: root))
  }
}

/// Passes requests to a server and changes it after the first one.
final class SwappingTransport: HTTPTransport, @unchecked Sendable {
  let server: FakeServer
  let change: (FakeServer) -> Void
  let sent = Locked(0)

  init(server: FakeServer, change: @escaping (FakeServer) -> Void) {
    self.server = server
    self.change = change
  }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    if sent.withLock({
      $0 += 1; return $0
    }) == 2 {
      change(server)
    }
    return try server.send(request, into: sink, progress: progress)
  }
}
