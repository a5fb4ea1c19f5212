import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// The S3 remote's requests, retries and error messages, through a scripted transport.
final class S3RemoteTests: XCTestCase {
  let secret = "sEcReT/never+shown"
  let token = "session-token-never-shown"
  let waits = Locked<[Double]>([])
  var scratch = ""

  override func setUpWithError() throws {
    scratch = NSTemporaryDirectory() + "dv-s3unit-\(UUID().uuidString)"
    try FileSystem.createDirectory(scratch)
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(scratch) }

  func remote(
    _ url: String = "s3://bucket/team/data", options: [String: String] = [:], environment: [String: String]? = nil,
    transport: HTTPTransport, multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20,
    partConcurrency: Int = 4
  ) throws -> S3Remote {
    try S3Remote(
      settings: RemoteSettings(name: "storage", url: url, options: options),
      environment: environment ?? ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": secret],
      transport: transport,
      retryPolicy: RetryPolicy(retries: 3, sleep: { [waits] seconds in waits.withLock { $0.append(seconds) } }),
      clock: { Date(timeIntervalSince1970: 1_369_353_600) }, multipartThreshold: multipartThreshold,
      partSize: partSize, partConcurrency: partConcurrency)
  }

  func errorXML(_ code: String, _ message: String = "details") -> [UInt8] {
    Array("<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>".utf8)
  }

  func file(_ bytes: [UInt8]) throws -> String {
    let path = scratch + "/" + UUID().uuidString
    try FileSystem.writeAtomically(bytes, to: path)
    return path
  }

  // MARK: Addressing and signing

  func testVirtualHostedRequestsToAWS() throws {
    let transport = ScriptedTransport([.respond(200, [:], [])])
    let remote = try remote(options: ["region": "eu-west-1"], transport: transport)
    XCTAssertTrue(try remote.exists("files/sha256/ab/cd ef"))
    let request = try XCTUnwrap(transport.requests.withLock { $0.first })
    XCTAssertEqual(request.method, .head)
    XCTAssertEqual(request.url, "https://bucket.s3.eu-west-1.amazonaws.com/team/data/files/sha256/ab/cd%20ef")
    XCTAssertEqual(request.headers["Host"], "bucket.s3.eu-west-1.amazonaws.com")
    XCTAssertEqual(request.headers["x-amz-date"], "20130524T000000Z")
    XCTAssertEqual(request.headers["x-amz-content-sha256"], S3Crypto.emptyPayloadHash)
    XCTAssertNil(request.headers["x-amz-security-token"])
    XCTAssertFalse(request.followRedirects)
    let authorization = try XCTUnwrap(request.headers["Authorization"])
    XCTAssertTrue(
      authorization.hasPrefix(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20130524/eu-west-1/s3/aws4_request,"
          + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="), authorization)
    XCTAssertFalse(authorization.contains(secret))
  }

  func testPathStyleWithAnEndpointAndASessionToken() throws {
    let transport = ScriptedTransport([.respond(200, [:], [])])
    let remote = try remote(
      "s3://bucket", options: ["endpoint": "http://127.0.0.1:9000/"],
      environment: ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token],
      transport: transport)
    XCTAssertEqual(remote.region, "us-east-1")
    XCTAssertTrue(try remote.exists("k"))
    let request = try XCTUnwrap(transport.requests.withLock { $0.first })
    XCTAssertEqual(request.url, "http://127.0.0.1:9000/bucket/k")
    XCTAssertEqual(request.headers["Host"], "127.0.0.1:9000")
    XCTAssertEqual(request.headers["x-amz-security-token"], token)
    XCTAssertTrue(
      request.headers["Authorization"]!.contains(
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
  }

  func testAddressingCanBeForcedEitherWay() throws {
    let virtual = ScriptedTransport([.respond(200, [:], [])])
    _ = try remote(options: ["endpoint": "https://minio.test", "addressing": "virtual"], transport: virtual)
      .exists("k")
    XCTAssertEqual(virtual.requests.withLock { $0[0].url }, "https://bucket.minio.test/team/data/k")
    let path = ScriptedTransport([.respond(200, [:], [])])
    _ = try remote(options: ["addressing": "path"], transport: path).exists("k")
    XCTAssertEqual(path.requests.withLock { $0[0].url }, "https://s3.us-east-1.amazonaws.com/bucket/team/data/k")
  }

  func testUploadsSignTheGivenSHA256() throws {
    let transport = ScriptedTransport([.respond(200, [:], [])])
    let bytes = Array("content".utf8)
    let path = try file(bytes)
    let hash = S3Crypto.sha256(bytes)
    try remote(transport: transport).upload(from: path, size: 7, sha256: hash, to: "files/x") { _ in }
    let request = try XCTUnwrap(transport.requests.withLock { $0.first })
    XCTAssertEqual(request.method, .put)
    XCTAssertEqual(request.headers["x-amz-content-sha256"], S3Crypto.hex(hash))
    XCTAssertEqual(request.body, .file(path: path, offset: 0, length: 7))
  }

  func testListingUnescapesKeysAndStripsTheRoot() throws {
    let page1 = """
      <?xml version="1.0" encoding="UTF-8"?>
      <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name>
      <Prefix>team/data/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
      <NextContinuationToken>1/tok+en=</NextContinuationToken>
      <Contents><Key>team/data/a&amp;b &lt;1&gt;</Key><Size>5</Size></Contents>
      <Contents><Key>team/data/files/c</Key><LastModified>x</LastModified><Size>12</Size></Contents>
      </ListBucketResult>
      """
    let page2 = """
      <ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>team/data/&#x64;</Key><Size>0</Size>\
      </Contents></ListBucketResult>
      """
    let transport = ScriptedTransport([.respond(200, [:], Array(page1.utf8)), .respond(200, [:], Array(page2.utf8))])
    var found: [String] = []
    try remote(transport: transport).list(prefix: "") { key, size in
      found.append("\(key)=\(size)")
      return true
    }
    XCTAssertEqual(found, ["a&b <1>=5", "files/c=12", "d=0"])
    let urls = transport.requests.withLock { $0.map(\.url) }
    XCTAssertEqual(urls[0], "https://bucket.s3.us-east-1.amazonaws.com/?list-type=2&prefix=team%2Fdata%2F")
    XCTAssertEqual(
      urls[1],
      "https://bucket.s3.us-east-1.amazonaws.com/?continuation-token=1%2Ftok%2Ben%3D&list-type=2&prefix=team%2Fdata%2F")
  }

  // MARK: Retries and errors

  func testSlowDownIsRetriedUntilTheUploadSucceeds() throws {
    let transport = ScriptedTransport([
      .respond(503, [:], errorXML("SlowDown", "Please reduce your request rate.")),
      .fail(.connectionLost(url: "http://x", detail: "reset")),
      .respond(503, ["Retry-After": "2"], errorXML("SlowDown")),
      .respond(200, [:], []),
    ])
    let path = try file([1, 2, 3])
    try remote(transport: transport).upload(from: path, size: 3, sha256: nil, to: "k") { _ in }
    XCTAssertEqual(transport.requests.withLock { $0.count }, 4)
    XCTAssertEqual(waits.withLock { $0 }.count, 3)
    XCTAssertEqual(waits.withLock { $0 }.last, 2, "Retry-After is honoured")
    // Each attempt is signed on its own and carries the payload hash.
    XCTAssertTrue(
      transport.requests.withLock { $0 }.allSatisfy {
        $0.headers["Authorization"] != nil
          && $0.headers["x-amz-content-sha256"] == S3Crypto.hex(S3Crypto.sha256([1, 2, 3]))
      })
  }

  func testRetriesRunOutIntoAServerError() throws {
    let transport = ScriptedTransport(Array(repeating: .respond(503, [:], errorXML("SlowDown", "reduce")), count: 4))
    XCTAssertThrowsError(try remote(transport: transport).download("k", to: scratch + "/k") { _ in }) { error in
      XCTAssertEqual("\(error)", "s3://bucket/team/data/k: HTTP 503: SlowDown: reduce")
    }
  }

  func testConnectionFailuresNameTheObject() throws {
    let transport = ScriptedTransport(
      Array(repeating: .fail(.cannotConnect(url: "https://h/x", detail: "refused")), count: 4))
    XCTAssertThrowsError(try remote(transport: transport).exists("k")) { error in
      guard case RemoteError.transport(let url, let message) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(url, "s3://bucket/team/data/k")
      XCTAssertTrue(message.contains("could not connect"), message)
    }
  }

  func testAuthenticationErrorsSayWhichCredentialsToCheckAndNeverTheSecret() throws {
    for (code, status) in [("SignatureDoesNotMatch", 403), ("InvalidAccessKeyId", 403), ("AccessDenied", 403)] {
      let transport = ScriptedTransport([.respond(status, [:], errorXML(code))])
      XCTAssertThrowsError(try remote(transport: transport).list(prefix: "") { _, _ in true }) { error in
        guard case RemoteError.accessDenied = error else { return XCTFail("\(error)") }
        let message = "\(error)"
        XCTAssertTrue(message.hasPrefix("access denied to s3://bucket/team/data: \(code): "), message)
        XCTAssertTrue(message.contains("AWS_ACCESS_KEY_ID in the environment"), message)
        XCTAssertFalse(message.contains(secret))
      }
    }
    // HEAD answers carry no body.
    let transport = ScriptedTransport([.respond(403, [:], [])])
    let home = scratch + "/home"
    try FileSystem.createDirectory(home + "/.aws")
    try FileSystem.writeAtomically(
      "[ci]\naws_access_key_id = AKCI\naws_secret_access_key = \(secret)\n", to: home + "/.aws/credentials")
    let remote = try remote(environment: ["HOME": home, "AWS_PROFILE": "ci"], transport: transport)
    XCTAssertThrowsError(try remote.exists("k")) { error in
      XCTAssertEqual(
        "\(error)",
        "access denied to s3://bucket/team/data/k: check the credentials of profile 'ci' in \(home)/.aws/credentials")
    }
  }

  func testMissingBucketKeyWrongRegionAndSkewedClock() throws {
    let transport = ScriptedTransport([
      .respond(404, [:], errorXML("NoSuchBucket")), .respond(404, [:], errorXML("NoSuchKey")),
      .respond(404, [:], []), .respond(301, ["x-amz-bucket-region": "eu-west-2"], errorXML("PermanentRedirect")),
      .respond(403, [:], errorXML("RequestTimeTooSkewed")),
    ])
    let remote = try remote(transport: transport)
    XCTAssertThrowsError(try remote.list(prefix: "") { _, _ in true }) { error in
      XCTAssertEqual("\(error)", "the bucket of s3://bucket does not exist; create it or fix the remote's URL")
    }
    XCTAssertThrowsError(try remote.download("k", to: scratch + "/k") { _ in }) { error in
      XCTAssertEqual("\(error)", "s3://bucket/team/data/k does not exist on the remote")
    }
    XCTAssertFalse(try remote.exists("k"))
    XCTAssertThrowsError(try remote.exists("k")) { error in
      XCTAssertTrue("\(error)".contains("dv remote modify storage region eu-west-2"), "\(error)")
    }
    XCTAssertThrowsError(try remote.delete("k")) { error in
      XCTAssertTrue("\(error)".contains("set the clock right"), "\(error)")
    }
  }

  // MARK: Multipart

  func testMultipartSignsEachPartAndCompletesInOrder() throws {
    let bytes = (0..<25).map { UInt8($0) }
    let path = try file(bytes)
    let created = "<InitiateMultipartUploadResult><UploadId>up/1</UploadId></InitiateMultipartUploadResult>"
    let transport = ScriptedTransport(
      [.respond(200, [:], Array(created.utf8))]
        + (1...3).map { .respond(200, ["ETag": "\"etag\($0)\""], []) }
        + [.respond(200, [:], Array("<CompleteMultipartUploadResult/>".utf8))])
    // One part at a time, so that the script's ETags go to parts 1, 2, 3 in turn.
    let remote = try remote(transport: transport, multipartThreshold: 20, partSize: 10, partConcurrency: 1)
    try remote.upload(from: path, size: 25, sha256: nil, to: "big") { _ in }
    let requests = transport.requests.withLock { $0 }
    XCTAssertEqual(requests.count, 5)
    XCTAssertEqual(requests[0].method, .post)
    XCTAssertTrue(requests[0].url.hasSuffix("/team/data/big?uploads="), requests[0].url)
    let parts = requests[1...3]
    for (index, part) in parts.enumerated() {
      let range = (index * 10)..<min(25, index * 10 + 10)
      XCTAssertTrue(part.url.hasSuffix("?partNumber=\(index + 1)&uploadId=up%2F1"), part.url)
      XCTAssertEqual(part.body, .file(path: path, offset: Int64(range.lowerBound), length: Int64(range.count)))
      XCTAssertEqual(part.headers["x-amz-content-sha256"], S3Crypto.hex(S3Crypto.sha256(Array(bytes[range]))))
    }
    let complete = requests[4]
    XCTAssertTrue(complete.url.hasSuffix("?uploadId=up%2F1"))
    guard case .bytes(let body) = complete.body else { return XCTFail("no body") }
    let text = String(decoding: body, as: UTF8.self)
    XCTAssertTrue(
      text.contains(
        "<Part><PartNumber>1</PartNumber><ETag>&quot;etag1&quot;</ETag></Part>"
          + "<Part><PartNumber>2</PartNumber><ETag>&quot;etag2&quot;</ETag></Part>"), text)
    XCTAssertEqual(complete.headers["x-amz-content-sha256"], S3Crypto.hex(S3Crypto.sha256(body)))
  }

  func testAFailedPartAbortsTheUpload() throws {
    let path = try file(Array(repeating: 7, count: 15))
    let created = "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>"
    let transport = ScriptedTransport([
      .respond(200, [:], Array(created.utf8)), .respond(200, ["ETag": "\"a\""], []),
      .respond(400, [:], errorXML("EntityTooSmall", "too small")), .respond(204, [:], []),
    ])
    let remote = try remote(transport: transport, multipartThreshold: 10, partSize: 10)
    XCTAssertThrowsError(try remote.upload(from: path, size: 15, sha256: nil, to: "big") { _ in }) { error in
      XCTAssertEqual("\(error)", "s3://bucket/team/data/big: HTTP 400: EntityTooSmall: too small")
    }
    let last = try XCTUnwrap(transport.requests.withLock { $0.last })
    XCTAssertEqual(last.method, .delete)
    XCTAssertTrue(last.url.hasSuffix("/team/data/big?uploadId=u"), last.url)
  }

  func testAnErrorInACompleteAnswerOf200AbortsToo() throws {
    let path = try file(Array(repeating: 7, count: 15))
    let transport = ScriptedTransport([
      .respond(
        200, [:], Array("<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>".utf8)),
      .respond(200, ["ETag": "\"a\""], []), .respond(200, ["ETag": "\"b\""], []),
      .respond(200, [:], errorXML("InternalError", "assembly failed")), .respond(204, [:], []),
    ])
    let remote = try remote(transport: transport, multipartThreshold: 10, partSize: 10)
    XCTAssertThrowsError(try remote.upload(from: path, size: 15, sha256: nil, to: "big") { _ in }) { error in
      XCTAssertTrue("\(error)".contains("InternalError: assembly failed"), "\(error)")
    }
    XCTAssertEqual(transport.requests.withLock { $0.last?.method }, .delete)
  }

  func testACompletionWhoseAnswerWasLostIsRecognized() throws {
    let path = try file(Array(repeating: 7, count: 15))
    let transport = ScriptedTransport([
      .respond(
        200, [:], Array("<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>".utf8)),
      .respond(200, ["ETag": "\"a\""], []), .respond(200, ["ETag": "\"b\""], []),
      .fail(.connectionLost(url: "http://x", detail: "reset")), .respond(404, [:], errorXML("NoSuchUpload")),
      .respond(200, ["Content-Length": "15"], []),
    ])
    let remote = try remote(transport: transport, multipartThreshold: 10, partSize: 10)
    try remote.upload(from: path, size: 15, sha256: nil, to: "big") { _ in }
    XCTAssertEqual(transport.requests.withLock { $0.map(\.method) }, [.post, .put, .put, .post, .post, .head])
  }

  func testProgressNeverCountsARetriedByteTwice() {
    var reported: [Int64] = []
    let forwarder = ProgressForwarder { reported.append($0) }
    let first = forwarder.handler(base: 0, upload: true)
    let second = forwarder.handler(base: 100, upload: true)
    for sent: Int64 in [5, 10, 3, 12] { _ = first(HTTPProgress(received: 0, expected: nil, sent: sent)) }
    _ = second(HTTPProgress(received: 0, expected: nil, sent: 7))
    XCTAssertEqual(reported, [5, 5, 2, 7])
    let download = ProgressForwarder { reported.append($0) }.handler(base: 0, upload: false)
    _ = download(HTTPProgress(received: 4, expected: 9, sent: 0))
    XCTAssertEqual(reported.last, 4)
  }

  // MARK: Ranged reads

  func testARangedReadAsksForTheRangeAndStartsTheSinkWhereTheBodyStarts() throws {
    let object = Array("0123456789".utf8)
    let transport = ScriptedTransport([
      .respond(503, [:], errorXML("SlowDown")),
      .respond(206, ["Content-Range": "bytes 2-5/10"], Array(object[2..<6])),
      // A server that ignores Range sends the whole object with 200.
      .respond(200, [:], object),
      .respond(200, [:], object),
    ])
    let remote = try remote(transport: transport)
    let sink = CollectingObjectSink()
    var reported: Int64 = 0
    try remote.read("packs/p", range: 2..<6, into: sink) { reported += $0 }
    XCTAssertEqual(sink.offsets, [2])
    XCTAssertEqual(sink.bytes, Array(object[2..<6]))
    let requests = transport.requests.withLock { $0 }
    XCTAssertEqual(requests.count, 2, "the 503 is retried")
    XCTAssertEqual(requests.map { $0.headers["Range"] }, ["bytes=2-5", "bytes=2-5"])
    XCTAssertEqual(requests.last?.url, "https://bucket.s3.us-east-1.amazonaws.com/team/data/packs/p")

    let ignored = CollectingObjectSink()
    try remote.read("packs/p", range: 2..<6, into: ignored) { _ in }
    XCTAssertEqual(ignored.offsets, [0])
    XCTAssertEqual(ignored.slice(2..<6), Array(object[2..<6]))

    let whole = CollectingObjectSink()
    try remote.read("packs/p", range: nil, into: whole) { _ in }
    XCTAssertNil(transport.requests.withLock { $0.last?.headers["Range"] })
    XCTAssertEqual(whole.offsets, [0])
    XCTAssertEqual(whole.bytes, object)

    let empty = CollectingObjectSink()
    try remote.read("packs/p", range: 7..<7, into: empty) { _ in }
    XCTAssertEqual(empty.offsets, [7])
    XCTAssertEqual(transport.requests.withLock { $0.count }, 4, "an empty range sends no request")
  }

  func testARangedReadFailsOnAMissingKeyAWrongStartOrARangeOutsideTheObject() throws {
    let transport = ScriptedTransport([
      .respond(404, [:], errorXML("NoSuchKey")),
      .respond(206, ["Content-Range": "bytes 0-3/10"], [0, 1, 2, 3]),
      .respond(416, [:], errorXML("InvalidRange", "The requested range is not satisfiable")),
      .respond(206, ["Content-Range": "bytes 8-9/10"], [8, 9]),
    ])
    let remote = try remote(transport: transport)
    XCTAssertThrowsError(try remote.read("k", range: 2..<6, into: CollectingObjectSink()) { _ in }) { error in
      guard case RemoteError.notFound("s3://bucket/team/data/k") = error else { return XCTFail("\(error)") }
    }
    XCTAssertThrowsError(try remote.read("k", range: 2..<6, into: CollectingObjectSink()) { _ in }) { error in
      XCTAssertEqual(
        "\(error)", "s3://bucket/team/data/k: HTTP 206: asked for bytes from 2 but the server sent bytes from 0")
    }
    XCTAssertThrowsError(try remote.read("k", range: 20..<30, into: CollectingObjectSink()) { _ in }) { error in
      XCTAssertEqual("\(error)", "s3://bucket/team/data/k: HTTP 416: the range 20..<30 lies outside the object")
    }
    // A range running past the end comes back clamped.
    XCTAssertThrowsError(try remote.read("k", range: 8..<12, into: CollectingObjectSink()) { _ in }) { error in
      XCTAssertEqual(
        "\(error)", "s3://bucket/team/data/k: HTTP 206: the range 8..<12 lies outside the object, which has 10 bytes")
    }
  }

  func testContentRangesAreRead() {
    XCTAssertEqual(RangedBodySink.parseContentRange("bytes 100-199/1000")?.first, 100)
    XCTAssertEqual(RangedBodySink.parseContentRange("bytes 100-199/1000")?.total, 1000)
    XCTAssertEqual(RangedBodySink.parseContentRange("Bytes 0-0/*")?.first, 0)
    XCTAssertNil(RangedBodySink.parseContentRange("Bytes 0-0/*")?.total)
    XCTAssertNil(RangedBodySink.parseContentRange("bytes */1000"))
    XCTAssertNil(RangedBodySink.parseContentRange(""))
    XCTAssertEqual(RangedBodySink.rangeHeader(5..<10), "bytes=5-9")
  }

  // MARK: Settings

  func testBadURLsAndSettingsAreBadInput() {
    let transport = ScriptedTransport([])
    let cases: [(String, [String: String], String)] = [
      ("s3://", [:], "invalid remote URL 's3://': the bucket name is missing"),
      ("s3://bad bucket/x", [:], "is not a bucket name"),
      ("gs://bucket", [:], "an S3 remote's URL is s3://bucket[/prefix]"),
      ("s3://bucket", ["addressing": "sideways"], "setting 'addressing' is 'sideways'; use 'path' or 'virtual'"),
      ("s3://bucket", ["endpoint": "127.0.0.1:9000"], "must start with http:// or https://"),
      ("s3://bucket", ["endpoint": "http://127.0.0.1:9000/base"], "give only scheme, host and port"),
      ("s3://bucket", ["region": "us east"], "is not a region name"),
    ]
    for (url, options, expected) in cases {
      XCTAssertThrowsError(try remote(url, options: options, transport: transport)) { error in
        XCTAssertTrue("\(error)".contains(expected), "\(url) \(options): \(error)")
        XCTAssertEqual((error as? RemoteError)?.kind, .badInput)
      }
    }
  }

  func testTheRootPrefixIsNormalized() throws {
    let remote = try remote("s3://bucket//a/b/", transport: ScriptedTransport([]))
    XCTAssertEqual(remote.displayURL, "s3://bucket/a/b")
    XCTAssertEqual(remote.objectKey("files/x"), "a/b/files/x")
    XCTAssertEqual(try self.remote("s3://bucket", transport: ScriptedTransport([])).objectKey("x"), "x")
  }

  // MARK: XML

  func testXMLReaderFindsElementsByExactName() {
    let xml = S3XML("<R><KeyCount>2</KeyCount><Key>a&#38;b</Key><Empty/><Key attr=\"1\"><![CDATA[<raw>]]></Key></R>")
    XCTAssertEqual(xml.elements("Key").count, 2)
    XCTAssertEqual(S3XML("<K a='1'><![CDATA[<raw>&amp;]]></K>").text("K"), "<raw>&amp;")
    XCTAssertEqual(xml.text("Key"), "a&b")
    XCTAssertEqual(xml.text("KeyCount"), "2")
    XCTAssertEqual(xml.text("Empty"), "")
    XCTAssertNil(xml.text("Missing"))
    XCTAssertEqual(S3XML.unescape(Array("&lt;&gt;&amp;&quot;&apos;&#233;&unknown;".utf8)), "<>&\"'é&unknown;")
    XCTAssertEqual(S3XML.escape("\"a\"&<b>"), "&quot;a&quot;&amp;&lt;b&gt;")
  }
}
