import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// Records every request on its way to a real transport, so that tests can see which S3 calls
/// were made (multipart or not).
final class RecordingTransport: HTTPTransport, @unchecked Sendable {
  let inner: HTTPTransport
  let requests = Locked<[HTTPRequest]>([])

  init(_ inner: HTTPTransport = CurlTransport.shared) { self.inner = inner }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    requests.withLock { $0.append(request) }
    return try inner.send(request, into: sink, progress: progress)
  }
}

/// The S3 remote against moto_server with signature checking on (`scripts/test` starts it,
/// creates an IAM user and a bucket, and exports DV_TEST_S3_*). Each test works under a prefix
/// of its own.
final class S3RemoteMotoTests: XCTestCase {
  var endpoint = ""
  var bucket = ""
  var accessKeyID = ""
  var secret = ""
  var prefix = ""
  var scratch = ""

  override func setUpWithError() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let accessKeyID = environment["DV_TEST_S3_ACCESS_KEY_ID"],
      let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    self.endpoint = endpoint
    self.bucket = bucket
    self.accessKeyID = accessKeyID
    self.secret = secret
    prefix = "tests/\(UUID().uuidString)"
    scratch = NSTemporaryDirectory() + "dv-s3-\(UUID().uuidString)"
    try FileSystem.createDirectory(scratch)
  }

  override func tearDownWithError() throws {
    if !scratch.isEmpty { try? FileSystem.removeTree(scratch) }
  }

  func remote(
    bucket: String? = nil, secret: String? = nil, transport: HTTPTransport = CurlTransport.shared,
    listPageSize: Int? = nil
  ) throws -> S3Remote {
    let settings = RemoteSettings(
      name: "storage", url: "s3://\(bucket ?? self.bucket)/\(prefix)",
      options: [
        "endpoint": endpoint, "access_key_id": accessKeyID, "secret_access_key": secret ?? self.secret,
      ])
    return try S3Remote(
      settings: settings, environment: [:], transport: transport,
      retryPolicy: RetryPolicy(retries: 2, baseDelay: 0.05), listPageSize: listPageSize)
  }

  /// Writes `bytes` to a scratch file and returns its path and SHA-256.
  func file(_ name: String, _ bytes: [UInt8]) throws -> (path: String, sha256: [UInt8]) {
    let path = scratch + "/" + name
    try FileSystem.writeAtomically(bytes, to: path)
    return (path, S3Crypto.sha256(bytes))
  }

  func upload(_ remote: S3Remote, _ bytes: [UInt8], to key: String) throws {
    let (path, hash) = try file(UUID().uuidString, bytes)
    try remote.upload(from: path, size: Int64(bytes.count), sha256: hash, to: key) { _ in }
  }

  func download(_ remote: S3Remote, _ key: String) throws -> [UInt8] {
    let path = scratch + "/" + UUID().uuidString
    try remote.download(key, to: path) { _ in }
    return try FileSystem.readFileIfPresent(path) ?? []
  }

  func listAll(_ remote: S3Remote, prefix: String = "") throws -> [String: Int64] {
    var found: [String: Int64] = [:]
    try remote.list(prefix: prefix) { key, size in
      found[key] = size
      return true
    }
    return found
  }

  func testUploadExistsListDownloadDelete() throws {
    let remote = try remote()
    let first = Array("hello, s3\n".utf8)
    let second = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    XCTAssertFalse(try remote.exists("files/sha256/aa/first"))
    try upload(remote, first, to: "files/sha256/aa/first")
    var progressed: Int64 = 0
    let (path, hash) = try file("second", second)
    try remote.upload(from: path, size: Int64(second.count), sha256: hash, to: "files/sha256/bb/second") {
      progressed += $0
    }
    XCTAssertEqual(progressed, Int64(second.count))
    try upload(remote, [], to: "runs/empty")

    XCTAssertTrue(try remote.exists("files/sha256/aa/first"))
    XCTAssertEqual(
      try listAll(remote), ["files/sha256/aa/first": 10, "files/sha256/bb/second": 100_000, "runs/empty": 0])
    XCTAssertEqual(
      try listAll(remote, prefix: "files/"), ["files/sha256/aa/first": 10, "files/sha256/bb/second": 100_000])
    XCTAssertEqual(try download(remote, "files/sha256/aa/first"), first)
    XCTAssertEqual(try download(remote, "files/sha256/bb/second"), second)
    XCTAssertEqual(try download(remote, "runs/empty"), [])

    try remote.delete("files/sha256/aa/first")
    XCTAssertFalse(try remote.exists("files/sha256/aa/first"))
    try remote.delete("files/sha256/aa/first")
    XCTAssertEqual(Set(try listAll(remote).keys), ["files/sha256/bb/second", "runs/empty"])
  }

  func testUploadWithoutAKnownHashHashesTheFile() throws {
    let remote = try remote()
    let bytes = Array("no hash given".utf8)
    let (path, _) = try file("nohash", bytes)
    try remote.upload(from: path, size: Int64(bytes.count), sha256: nil, to: "x") { _ in }
    XCTAssertEqual(try download(remote, "x"), bytes)
  }

  func testListingFollowsContinuationTokensAndStopsWhenAsked() throws {
    let remote = try remote(listPageSize: 7)
    let keys = (0..<23).map { String(format: "files/sha256/%02x/object", $0) }
    try parallelForEach(keys.count, workers: 4) { index in
      try upload(remote, Array(keys[index].utf8), to: keys[index])
    }
    let recorder = RecordingTransport()
    let listing = try self.remote(transport: recorder, listPageSize: 7)
    let found = try listAll(listing)
    XCTAssertEqual(found.keys.sorted(), keys)
    XCTAssertEqual(found[keys[3]], Int64(keys[3].utf8.count))
    XCTAssertEqual(recorder.requests.withLock { $0.count }, 4, "23 keys in pages of 7")
    XCTAssertTrue(recorder.requests.withLock { $0.last!.url.contains("continuation-token=") })

    var seen = 0
    try listing.list(prefix: "files/") { _, _ in
      seen += 1
      return seen < 9
    }
    XCTAssertEqual(seen, 9)
  }

  func testKeysThatNeedEncodingRoundTrip() throws {
    let remote = try remote()
    let key = "odd/a b+c&d=é<x>'q'.txt"
    try upload(remote, Array("odd".utf8), to: key)
    XCTAssertTrue(try remote.exists(key))
    XCTAssertEqual(try listAll(remote, prefix: "odd/"), [key: 3])
    XCTAssertEqual(try download(remote, key), Array("odd".utf8))
  }

  func testALargeFileGoesThroughMultipartAndComesBackByteForByte() throws {
    let size = (64 << 20) + (5 << 20) + 12_345
    var bytes = [UInt8](repeating: 0, count: size)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for i in stride(from: 0, to: size, by: 8) {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      withUnsafeBytes(of: state) { word in
        for j in 0..<min(8, size - i) { bytes[i + j] = word[j] }
      }
    }
    let (path, hash) = try file("large", bytes)
    let recorder = RecordingTransport()
    let remote = try remote(transport: recorder)
    var progressed: Int64 = 0
    try remote.upload(from: path, size: Int64(size), sha256: hash, to: "files/sha256/la/rge") { progressed += $0 }
    XCTAssertEqual(progressed, Int64(size))
    let urls = recorder.requests.withLock { $0.map(\.url) }
    XCTAssertEqual(urls.filter { $0.contains("partNumber=") }.count, 5, "16 MiB parts")
    XCTAssertTrue(urls.contains { $0.hasSuffix("?uploads=") })
    XCTAssertEqual(try listAll(remote), ["files/sha256/la/rge": Int64(size)])
    let downloaded = scratch + "/large.down"
    try remote.download("files/sha256/la/rge", to: downloaded) { _ in }
    XCTAssertEqual(try FileSystem.readFileIfPresent(downloaded).map(S3Crypto.sha256), hash)
  }

  func testAWrongSecretIsAccessDeniedWithoutTheSecret() throws {
    let wrong = "wrong-secret-\(UUID().uuidString)"
    let remote = try remote(secret: wrong)
    let (path, hash) = try file("denied", Array("x".utf8))
    for action in ["upload", "list", "download"] {
      do {
        switch action {
        case "upload": try remote.upload(from: path, size: 1, sha256: hash, to: "denied") { _ in }
        case "list": try remote.list(prefix: "") { _, _ in true }
        default: try remote.download("denied", to: scratch + "/denied.down") { _ in }
        }
        XCTFail("\(action) with a wrong secret succeeded")
      } catch let error as RemoteError {
        guard case .accessDenied = error else { return XCTFail("\(action): \(error)") }
        let message = error.description
        XCTAssertFalse(message.contains(wrong), message)
        XCTAssertFalse(message.contains(secret), message)
        XCTAssertTrue(message.contains("check the credentials of remote 'storage'"), message)
        XCTAssertTrue(message.contains("s3://\(bucket)/\(prefix)"), message)
        XCTAssertFalse(message.contains("\n"), message)
      }
    }
  }

  func testAMissingBucketIsNoSuchBucket() throws {
    let remote = try remote(bucket: "no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())")
    XCTAssertThrowsError(try upload(remote, Array("x".utf8), to: "k")) { error in
      guard case RemoteError.noSuchBucket(let url) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(url.hasPrefix("s3://no-such-bucket-"), url)
    }
    XCTAssertThrowsError(try remote.list(prefix: "") { _, _ in true }) { error in
      guard case RemoteError.noSuchBucket = error else { return XCTFail("\(error)") }
    }
  }

  func testRangedReadsComeBackByteForByte() throws {
    let remote = try remote()
    let bytes = (0..<3_000_000).map { _ in UInt8.random(in: 0...255) }
    try upload(remote, bytes, to: "packs/p1")

    let middle = CollectingObjectSink()
    var reported: Int64 = 0
    try remote.read("packs/p1", range: 1_234_567..<2_345_678, into: middle) { reported += $0 }
    XCTAssertEqual(middle.offsets, [1_234_567])
    XCTAssertTrue(middle.bytes == Array(bytes[1_234_567..<2_345_678]), "the middle range differs")
    XCTAssertEqual(reported, 2_345_678 - 1_234_567)

    let whole = CollectingObjectSink()
    try remote.read("packs/p1", range: nil, into: whole) { _ in }
    XCTAssertEqual(whole.offsets, [0])
    XCTAssertTrue(whole.bytes == bytes, "the whole object differs")

    let last = CollectingObjectSink()
    try remote.read("packs/p1", range: 2_999_999..<3_000_000, into: last) { _ in }
    XCTAssertEqual(last.slice(2_999_999..<3_000_000), [bytes[2_999_999]])

    XCTAssertThrowsError(
      try remote.read("packs/p1", range: 3_000_000..<3_000_010, into: CollectingObjectSink()) { _ in }
    ) {
      error in
      guard case RemoteError.server(_, 416, let message) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(message.contains("lies outside the object"), message)
    }
    XCTAssertThrowsError(
      try remote.read("packs/p1", range: 2_999_990..<3_000_010, into: CollectingObjectSink()) { _ in }
    ) {
      error in
      guard case RemoteError.server(_, 206, let message) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(message.contains("lies outside the object, which has 3000000 bytes"), message)
    }
  }

  func testReadingARangeOfAMissingKeyIsNotFound() throws {
    let remote = try remote()
    XCTAssertThrowsError(try remote.read("packs/missing", range: 10..<20, into: CollectingObjectSink()) { _ in }) {
      error in
      guard case RemoteError.notFound(let url) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, "s3://\(bucket)/\(prefix)/packs/missing")
    }
  }

  func testDownloadingAMissingKeyIsNotFound() throws {
    let remote = try remote()
    XCTAssertThrowsError(try remote.download("files/sha256/00/missing", to: scratch + "/missing") { _ in }) { error in
      guard case RemoteError.notFound(let url) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, "s3://\(bucket)/\(prefix)/files/sha256/00/missing")
    }
  }
}
