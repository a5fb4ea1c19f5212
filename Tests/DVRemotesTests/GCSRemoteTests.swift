import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// The GCS remote's requests and error handling against a scripted server.
final class GCSRemoteRequestTests: XCTestCase {
  func remote(_ transport: HTTPTransport, url: String = "gs://bucket/data", pageSize: Int = 1000) throws -> GCSRemote {
    try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: url, options: ["token": "ya29.secret-token"]), environment: [:],
      transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry, pageSize: pageSize))
  }

  func testListFollowsPageTokensAndStripsThePrefix() throws {
    let transport = GCSHandlerTransport { request in
      if request.url.contains("pageToken=next%2F1") {
        return (200, [:], Array(#"{"items":[{"name":"data/ab/3","size":"30"}]}"#.utf8))
      }
      return (
        200, [:],
        Array(
          #"{"items":[{"name":"data/ab/1","size":"10"},{"name":"data/ab/2","size":"20"}],"nextPageToken":"next/1"}"#
            .utf8)
      )
    }
    let gcs = try remote(transport, pageSize: 2)
    var seen: [String: Int64] = [:]
    try gcs.list(prefix: "ab/") { key, size in
      seen[key] = size
      return true
    }
    XCTAssertEqual(seen, ["ab/1": 10, "ab/2": 20, "ab/3": 30])
    let urls = transport.requests.withLock { $0.map(\.url) }
    XCTAssertEqual(urls.count, 2)
    XCTAssertTrue(
      urls[0].hasPrefix("https://storage.googleapis.com/storage/v1/b/bucket/o?prefix=data%2Fab%2F&maxResults=2"))
    XCTAssertFalse(urls[0].contains("pageToken"))

    var first: [String] = []
    try gcs.list(prefix: "") { key, _ in
      first.append(key)
      return false
    }
    XCTAssertEqual(first, ["ab/1"])
  }

  func testARepeatedPageTokenEndsTheListing() throws {
    let transport = GCSHandlerTransport { _ in (200, [:], Array(#"{"items":[],"nextPageToken":"same"}"#.utf8)) }
    XCTAssertThrowsError(try remote(transport).list(prefix: "") { _, _ in true }) { error in
      XCTAssertTrue("\(error)".contains("repeated a page token"), "\(error)")
    }
  }

  func testJSONErrorsBecomeOneLineNamingTheObjectAndNotTheToken() throws {
    let transport = GCSHandlerTransport { request in
      if request.url.contains("/o/data%2Fdenied") {
        return (
          403, [:],
          Array(
            #"{"error":{"code":403,"message":"svc@p.iam.gserviceaccount.com does not have\n storage.objects.get access.","errors":[{"reason":"forbidden"}]}}"#
              .utf8)
        )
      }
      if request.url.contains("/o/data%2Fbroken") { return (400, [:], Array("<html>\n bad\n</html>".utf8)) }
      return (500, [:], [])
    }
    let gcs = try remote(transport)
    XCTAssertThrowsError(try gcs.exists("denied")) { error in
      guard case RemoteError.accessDenied(let url, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, "gs://bucket/data/denied")
      let message = "\(error)"
      XCTAssertTrue(message.contains("does not have storage.objects.get access."), message)
      XCTAssertTrue(message.contains("setting 'token'"), message)
      XCTAssertFalse(message.contains("\n") || message.contains("ya29"), message)
    }
    XCTAssertThrowsError(try gcs.exists("broken")) { error in
      XCTAssertEqual("\(error)", "gs://bucket/data/broken: HTTP 400: <html> bad </html>")
    }
    XCTAssertThrowsError(try gcs.delete("other")) { error in
      guard case RemoteError.server(_, 500, _) = error else { return XCTFail("\(error)") }
    }
    // 500 is retried (3 retries), 400 and 403 are not.
    XCTAssertEqual(transport.requests(to: "https://storage.googleapis.com/storage/v1/b/bucket/o/data%2Fother").count, 4)
  }

  func testA404OnAnObjectAsksWhetherTheBucketExistsOnce() throws {
    let transport = GCSHandlerTransport { request in
      if request.url.hasPrefix("https://storage.googleapis.com/storage/v1/b/bucket?") { return (200, [:], []) }
      return (404, [:], Array(#"{"error":{"code":404,"message":"No such object: bucket/data/k"}}"#.utf8))
    }
    let gcs = try remote(transport)
    XCTAssertFalse(try gcs.exists("k1"))
    XCTAssertFalse(try gcs.exists("k2"))
    try gcs.delete("k3")
    XCTAssertEqual(transport.requests(to: "https://storage.googleapis.com/storage/v1/b/bucket?").count, 1)
  }

  func testARangedReadTakes206Or200AndChecksWhereTheBodyStarts() throws {
    let object = Array("0123456789".utf8)
    let answers = Locked<[(status: Int, headers: HTTPHeaders, body: [UInt8])]>([
      (206, ["Content-Range": "bytes 3-6/10"], Array(object[3..<7])),
      (200, [:], object),
      (206, ["Content-Range": "bytes 0-3/10"], Array(object[0..<4])),
      (416, [:], Array(#"{"error":{"code":416,"message":"Requested range not satisfiable"}}"#.utf8)),
    ])
    let transport = GCSHandlerTransport { _ in answers.withLock { $0.removeFirst() } }
    let gcs = try remote(transport)
    let partial = CollectingObjectSink()
    var reported: Int64 = 0
    try gcs.read("packs/p", range: 3..<7, into: partial) { reported += $0 }
    XCTAssertEqual(partial.offsets, [3])
    XCTAssertEqual(partial.bytes, Array(object[3..<7]))
    let request = try XCTUnwrap(transport.requests.withLock { $0.first })
    XCTAssertEqual(request.url, "https://storage.googleapis.com/storage/v1/b/bucket/o/data%2Fpacks%2Fp?alt=media")
    XCTAssertEqual(request.headers["Range"], "bytes=3-6")

    let whole = CollectingObjectSink()
    try gcs.read("packs/p", range: 3..<7, into: whole) { _ in }
    XCTAssertEqual(whole.offsets, [0], "the server ignored the range")
    XCTAssertEqual(whole.slice(3..<7), Array(object[3..<7]))

    XCTAssertThrowsError(try gcs.read("packs/p", range: 3..<7, into: CollectingObjectSink()) { _ in }) { error in
      XCTAssertEqual(
        "\(error)", "gs://bucket/data/packs/p: HTTP 206: asked for bytes from 3 but the server sent bytes from 0")
    }
    XCTAssertThrowsError(try gcs.read("packs/p", range: 30..<40, into: CollectingObjectSink()) { _ in }) { error in
      XCTAssertEqual("\(error)", "gs://bucket/data/packs/p: HTTP 416: the range 30..<40 lies outside the object")
    }
    let empty = CollectingObjectSink()
    try gcs.read("packs/p", range: 5..<5, into: empty) { _ in }
    XCTAssertEqual(empty.offsets, [5])
    XCTAssertEqual(transport.requests.withLock { $0.count }, 4, "an empty range sends no request")
  }

  func testAResumableUploadGoesOnFromWhatTheSessionHolds() throws {
    let directory = try GCSTestSupport.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/big"
    let size = 1 << 20
    try GCSTestSupport.writeRandomFile(file, size: size)
    let session = "https://storage.googleapis.com/upload/storage/v1/b/bucket/o?uploadType=resumable&upload_id=abc"
    // The session stores chunks as they come, except that the second chunk's connection drops
    // after only half of it arrived.
    let stored = Locked(0)
    let chunks = Locked(0)
    let transport = GCSHandlerTransport { request in
      if request.method == .post {
        XCTAssertEqual(request.headers["X-Upload-Content-Length"], String(size))
        return (200, ["Location": session], [])
      }
      XCTAssertEqual(request.url, session)
      XCTAssertNil(request.headers["Authorization"], "the session URI authorises the chunks")
      let range = request.headers["Content-Range"] ?? ""
      if range == "bytes */\(size)" {
        let have = stored.withLock { $0 }
        return have == size ? (200, [:], []) : (308, have > 0 ? ["Range": "bytes=0-\(have - 1)"] : [:], [])
      }
      guard case .file(_, let offset, let length) = request.body else {
        throw HTTPError.other(url: "", detail: "no body")
      }
      XCTAssertEqual(range, "bytes \(offset)-\(offset + length - 1)/\(size)")
      XCTAssertEqual(Int(offset), stored.withLock { $0 }, "each chunk starts where the session stands")
      let number = chunks.withLock { n -> Int in
        n += 1
        return n
      }
      if number == 2 {
        stored.withLock { $0 += 256 << 10 }
        throw HTTPError.connectionLost(url: session, detail: "reset by peer")
      }
      stored.withLock { $0 = Int(offset + length) }
      return stored.withLock { $0 } == size ? (200, [:], []) : (308, ["Range": "bytes=0-\(offset + length - 1)"], [])
    }
    let gcs = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["token": "t"]), environment: [:],
      transport: transport,
      tuning: GCSTuning(retry: GCSTestSupport.quickRetry, resumableThreshold: 100_000, chunkSize: 512 << 10))
    var reported: Int64 = 0
    try gcs.upload(from: file, size: Int64(size), sha256: nil, to: "big") { reported += $0 }
    XCTAssertEqual(reported, Int64(size))
    let ranges = transport.requests.withLock { $0.compactMap { $0.headers["Content-Range"] } }
    XCTAssertEqual(
      ranges,
      [
        "bytes 0-524287/1048576", "bytes 524288-1048575/1048576", "bytes */1048576", "bytes 786432-1048575/1048576",
      ])
  }
}

extension GCSRemoteRequestTests {
  func testAnExpiredSessionStartsTheUploadOverAndA503IsAskedAbout() throws {
    let directory = try GCSTestSupport.temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let file = directory + "/big"
    let size = 768 << 10
    try GCSTestSupport.writeRandomFile(file, size: size)
    let sessions = Locked(0)
    let log = Locked<[String]>([])
    let transport = GCSHandlerTransport { request in
      if request.method == .post {
        let n = sessions.withLock { n -> Int in
          n += 1
          return n
        }
        return (200, ["Location": "https://upload.example/session-\(n)"], [])
      }
      let range = request.headers["Content-Range"] ?? ""
      log.withLock { $0.append(request.url.suffix(9) + " " + range) }
      switch (request.url.hasSuffix("session-1"), range) {
      case (true, _): return (410, [:], Array(#"{"error":{"code":410,"message":"session expired"}}"#.utf8))
      case (false, "bytes 0-524287/786432"): return (308, ["Range": "bytes=0-524287"], [])
      case (false, "bytes 524288-786431/786432"):
        let attempts = log.withLock { $0.filter { $0.hasSuffix(range) }.count }
        return attempts == 1 ? (503, ["Retry-After": "0"], []) : (201, [:], [])
      case (false, "bytes */786432"): return (308, ["Range": "bytes=0-524287"], [])
      default: return (400, [:], Array("unexpected \(range)".utf8))
      }
    }
    let gcs = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["token": "t"]), environment: [:],
      transport: transport,
      tuning: GCSTuning(retry: GCSTestSupport.quickRetry, resumableThreshold: 100_000, chunkSize: 512 << 10))
    var reported: Int64 = 0
    try gcs.upload(from: file, size: Int64(size), sha256: nil, to: "big") { reported += $0 }
    XCTAssertEqual(reported, Int64(size))
    XCTAssertEqual(
      log.withLock { $0 },
      [
        "session-1 bytes 0-524287/786432", "session-2 bytes 0-524287/786432", "session-2 bytes 524288-786431/786432",
        "session-2 bytes */786432", "session-2 bytes 524288-786431/786432",
      ])
  }
}

/// Round trips against `gcp-storage-emulator`, which `scripts/test` starts and names in
/// `DV_TEST_GCS_EMULATOR` (its bucket in `DV_TEST_GCS_BUCKET`).
final class GCSEmulatorTests: XCTestCase {
  var emulator = ""
  var bucket = ""
  var directory = ""
  /// Each test works under its own prefix, so tests do not see each other's objects.
  var root = ""

  override func setUpWithError() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let emulator = environment["DV_TEST_GCS_EMULATOR"], let bucket = environment["DV_TEST_GCS_BUCKET"] else {
      throw XCTSkip("DV_TEST_GCS_EMULATOR and DV_TEST_GCS_BUCKET are not set; scripts/test starts the GCS emulator")
    }
    self.emulator = emulator
    self.bucket = bucket
    directory = try GCSTestSupport.temporaryDirectory()
    root = "gs://\(bucket)/test-\(UUID().uuidString.prefix(8).lowercased())"
  }

  override func tearDownWithError() throws {
    if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
  }

  func remote(
    url: String? = nil, transport: HTTPTransport = CurlTransport.shared,
    tuning: GCSTuning = GCSTuning(retry: GCSTestSupport.quickRetry)
  ) throws -> GCSRemote {
    try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: url ?? root), environment: ["STORAGE_EMULATOR_HOST": emulator],
      transport: transport, tuning: tuning)
  }

  func write(_ text: String, _ name: String) throws -> String {
    let path = directory + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  func testUploadExistsListDownloadDeleteRoundTrip() throws {
    let gcs = try remote(tuning: GCSTuning(retry: GCSTestSupport.quickRetry, pageSize: 2))
    let objects = [
      "files/md5/ab/cdef01": "first object\n", "files/md5/ab/cdef02": "",
      "files/md5/cd/0123": String(repeating: "x", count: 100_000),
      "runs/run one+two.json": "{\"id\": 1}",
    ]
    for (key, text) in objects {
      let path = try write(text, UUID().uuidString)
      var reported: Int64 = 0
      try gcs.upload(from: path, size: Int64(text.utf8.count), sha256: nil, to: key) { reported += $0 }
      XCTAssertEqual(reported, Int64(text.utf8.count), key)
    }
    XCTAssertTrue(try gcs.exists("files/md5/ab/cdef01"))
    XCTAssertTrue(try gcs.exists("runs/run one+two.json"))
    XCTAssertFalse(try gcs.exists("files/md5/ab/cdef03"))

    var listed: [String: Int64] = [:]
    try gcs.list(prefix: "files/") { key, size in
      XCTAssertNil(listed.updateValue(size, forKey: key), "listed twice: \(key)")
      return true
    }
    XCTAssertEqual(listed, ["files/md5/ab/cdef01": 13, "files/md5/ab/cdef02": 0, "files/md5/cd/0123": 100_000])
    var all = 0
    try gcs.list(prefix: "") { _, _ in
      all += 1
      return true
    }
    XCTAssertEqual(all, 4)

    for (key, text) in objects {
      let target = directory + "/downloaded"
      var reported: Int64 = 0
      try gcs.download(key, to: target) { reported += $0 }
      XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), text, key)
      XCTAssertEqual(reported, Int64(text.utf8.count), key)
    }

    try gcs.delete("files/md5/ab/cdef01")
    XCTAssertFalse(try gcs.exists("files/md5/ab/cdef01"))
    try gcs.delete("files/md5/ab/cdef01")  // absent is fine
    XCTAssertThrowsError(try gcs.download("files/md5/ab/cdef01", to: directory + "/gone") { _ in }) { error in
      guard case RemoteError.notFound(let url) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, root + "/files/md5/ab/cdef01")
    }
  }

  func testAnObjectOver64MiBGoesUpInAResumableUploadByteForByte() throws {
    let size = (64 << 20) + 123_457
    let source = directory + "/large"
    try GCSTestSupport.writeRandomFile(source, size: size, seed: 7)
    let requests = Locked<[String]>([])
    let transport = GCSFaultyTransport(CurlTransport.shared) { _, request in
      requests.withLock { $0.append(request.method.rawValue + " " + (request.headers["Content-Range"] ?? request.url)) }
      return nil
    }
    let gcs = try remote(transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry))
    var reported: Int64 = 0
    try gcs.upload(from: source, size: Int64(size), sha256: nil, to: "files/md5/la/rge") { reported += $0 }
    XCTAssertEqual(reported, Int64(size))
    let sent = requests.withLock { $0 }
    XCTAssertTrue(sent.first?.contains("uploadType=resumable") == true, "\(sent)")
    XCTAssertEqual(sent.filter { $0.hasPrefix("PUT bytes ") }.count, 5, "\(sent)")  // 4 x 16 MiB and the rest

    var listed: Int64 = -1
    try gcs.list(prefix: "files/md5/la/") { _, size in
      listed = size
      return true
    }
    XCTAssertEqual(listed, Int64(size))
    let target = directory + "/large.downloaded"
    try gcs.download("files/md5/la/rge", to: target) { _ in }
    XCTAssertTrue(FileManager.default.contentsEqual(atPath: source, andPath: target))
  }

  func testAResumableUploadResumesAfterDroppedChunks() throws {
    let size = (1 << 20) + 1000
    let source = directory + "/medium"
    try GCSTestSupport.writeRandomFile(source, size: size, seed: 9)
    // The second chunk is lost on the way; the fourth arrives but its answer is lost.
    let chunkNumber = Locked(0)
    let transport = GCSFaultyTransport(CurlTransport.shared) { _, request in
      guard let range = request.headers["Content-Range"], !range.hasPrefix("bytes */") else { return nil }
      let n = chunkNumber.withLock { n -> Int in
        n += 1
        return n
      }
      return n == 2 ? .dropBeforeSending : n == 4 ? .dropResponse : nil
    }
    let gcs = try remote(
      transport: transport,
      tuning: GCSTuning(retry: GCSTestSupport.quickRetry, resumableThreshold: 512 << 10, chunkSize: 256 << 10))
    var reported: Int64 = 0
    try gcs.upload(from: source, size: Int64(size), sha256: nil, to: "resumed") { reported += $0 }
    XCTAssertEqual(reported, Int64(size))
    let statusQueries = transport.requests.withLock { $0.filter { $0.headers["Content-Range"] == "bytes */\(size)" } }
    XCTAssertEqual(statusQueries.count, 2)
    let target = directory + "/medium.downloaded"
    try gcs.download("resumed", to: target) { _ in }
    XCTAssertTrue(FileManager.default.contentsEqual(atPath: source, andPath: target))
  }

  func testManyThreadsShareOneRemote() throws {
    let gcs = try remote()
    let failures = Locked<[String]>([])
    let directory = self.directory
    DispatchQueue.concurrentPerform(iterations: 24) { i in
      do {
        let path = directory + "/parallel-\(i)"
        try Data("object \(i)\n".utf8).write(to: URL(fileURLWithPath: path))
        try gcs.upload(from: path, size: Int64("object \(i)\n".utf8.count), sha256: nil, to: "p/\(i)") { _ in }
        guard try gcs.exists("p/\(i)") else { throw RemoteError.notFound(url: "p/\(i)") }
        try gcs.download("p/\(i)", to: path + ".back") { _ in }
        guard try String(contentsOfFile: path + ".back", encoding: .utf8) == "object \(i)\n" else {
          throw RemoteError.integrity(url: "p/\(i)", expected: "", actual: "")
        }
      } catch {
        failures.withLock { $0.append("\(i): \(error)") }
      }
    }
    XCTAssertEqual(failures.withLock { $0 }, [])
    var count = 0
    try gcs.list(prefix: "p/") { _, _ in
      count += 1
      return true
    }
    XCTAssertEqual(count, 24)
  }

  func testRangedReadsComeBackByteForByte() throws {
    let gcs = try remote()
    let source = directory + "/packed"
    try GCSTestSupport.writeRandomFile(source, size: 3_000_000, seed: 11)
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
    try gcs.upload(from: source, size: Int64(bytes.count), sha256: nil, to: "packs/p1") { _ in }

    // The emulator may ignore the range (200, the whole object) or honour it (206).
    let middle = CollectingObjectSink()
    try gcs.read("packs/p1", range: 1_234_567..<2_345_678, into: middle) { _ in }
    XCTAssertEqual(middle.offsets.count, 1)
    XCTAssertTrue(middle.slice(1_234_567..<2_345_678) == Array(bytes[1_234_567..<2_345_678]), "the range differs")

    let whole = CollectingObjectSink()
    var reported: Int64 = 0
    try gcs.read("packs/p1", range: nil, into: whole) { reported += $0 }
    XCTAssertEqual(whole.offsets, [0])
    XCTAssertTrue(whole.bytes == bytes, "the whole object differs")
    XCTAssertEqual(reported, Int64(bytes.count))

    // Past the end: the emulator answers a 206 whose Content-Range ends before it starts.
    for range: Range<Int64> in [2_999_990..<3_000_010, 3_000_000..<3_000_010] {
      XCTAssertThrowsError(try gcs.read("packs/p1", range: range, into: CollectingObjectSink()) { _ in }) { error in
        guard case RemoteError.server(_, _, let message) = error else { return XCTFail("\(error)") }
        XCTAssertTrue(message.contains("lies outside the object, which has 3000000 bytes"), message)
      }
    }
    XCTAssertThrowsError(try gcs.read("packs/missing", range: 10..<20, into: CollectingObjectSink()) { _ in }) {
      error in
      guard case RemoteError.notFound(let url) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, root + "/packs/missing")
    }
  }

  func testAMissingBucketIsAClearError() throws {
    let gcs = try remote(url: "gs://dv-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/data")
    let file = try write("content", "file")
    let operations: [(String, () throws -> Void)] = [
      ("exists", { _ = try gcs.exists("k") }),
      ("list", { try gcs.list(prefix: "") { _, _ in true } }),
      ("upload", { try gcs.upload(from: file, size: 7, sha256: nil, to: "k") { _ in } }),
      ("download", { try gcs.download("k", to: self.directory + "/k") { _ in } }),
      ("delete", { try gcs.delete("k") }),
    ]
    for (name, operation) in operations {
      XCTAssertThrowsError(try operation(), name) { error in
        guard case RemoteError.noSuchBucket = error else { return XCTFail("\(name): \(error)") }
        XCTAssertTrue("\(error)".contains(gcs.displayURL), "\(error)")
      }
    }
  }

  func testAnUnreachableEmulatorIsATransportErrorNamingTheRemote() throws {
    let gcs = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: root), environment: ["STORAGE_EMULATOR_HOST": "127.0.0.1:1"],
      transport: CurlTransport.shared, tuning: GCSTuning(retry: .none))
    XCTAssertThrowsError(try gcs.exists("k")) { error in
      guard case RemoteError.transport(let url, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, root + "/k")
    }
  }
}
