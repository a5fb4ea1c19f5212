import DVBasics
import Foundation
import FuzzSupport
import XCTest

@testable import DVRemotes

/// The bad-input suite for what remotes answer: mutated S3 ListObjectsV2 and error XML, GCS JSON
/// listings and errors, and pack indexes, fed through scripted transports to the code that
/// parses them. Every case ends with keys validated before use, or a one-line `RemoteError` or
/// `PackError` — never a trap or a hang.
final class ResponseFuzzTests: XCTestCase {
  static let ids = [
    Mutator.someHash, String(repeating: "0", count: 64), String(repeating: "f", count: 63) + "e",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  ]

  static func key(_ id: String) -> String { "sha256/" + id.prefix(2) + "/" + id.dropFirst(2) }

  static let s3Listing: String = {
    var lines = [
      #"<?xml version="1.0" encoding="UTF-8"?>"#,
      #"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
      "<Name>bucket</Name>", "<Prefix>team/sha256/</Prefix>", "<KeyCount>4</KeyCount>",
      "<MaxKeys>1000</MaxKeys>", "<IsTruncated>false</IsTruncated>",
    ]
    for (n, id) in ids.enumerated() {
      lines += [
        "<Contents>", "<Key>team/\(key(id))</Key>", "<LastModified>2026-01-01T00:00:00.000Z</LastModified>",
        "<ETag>&quot;x&quot;</ETag>", "<Size>\(n * 1000)</Size>", "<StorageClass>STANDARD</StorageClass>",
        "</Contents>",
      ]
    }
    lines += ["<Contents>", "<Key>team/runs/x.json</Key>", "<Size>3</Size>", "</Contents>", "</ListBucketResult>"]
    return lines.joined(separator: "\n")
  }()

  static let s3FirstPage = """
    <ListBucketResult>
    <IsTruncated>true</IsTruncated>
    <NextContinuationToken>1/token+=</NextContinuationToken>
    <Contents>
    <Key>team/\(key(ids[1]))</Key>
    <Size>5</Size>
    </Contents>
    </ListBucketResult>
    """

  static let s3Error = """
    <?xml version="1.0" encoding="UTF-8"?>
    <Error>
    <Code>SlowDown</Code>
    <Message>Please reduce your request rate.</Message>
    <Region>eu-west-1</Region>
    <RequestId>4442587FB7D0A2F9</RequestId>
    </Error>
    """

  static let s3Codes = [
    "AccessDenied", "NoSuchBucket", "NoSuchKey", "PermanentRedirect", "RequestTimeTooSkewed", "BadDigest",
    "SignatureDoesNotMatch", "InternalError", "SlowDown", "AuthorizationHeaderMalformed", "",
  ]

  static let gcsListing: String = {
    var lines = ["{", "\"kind\": \"storage#objects\",", "\"items\": ["]
    for (n, id) in ids.enumerated() {
      lines += ["{", "\"name\": \"data/\(key(id))\",", "\"size\": \"\(n * 1000)\"", n == ids.count - 1 ? "}" : "},"]
    }
    lines += ["],", "\"nextPageToken\": \"\"", "}"]
    return lines.joined(separator: "\n")
  }()

  static let gcsFirstPage = """
    {
    "items": [{"name": "data/\(key(ids[2]))", "size": 7}],
    "nextPageToken": "page/2"
    }
    """

  static let gcsError = """
    {
    "error": {
    "code": 403,
    "message": "dv-test@x.iam.gserviceaccount.com does not have storage.objects.get access.",
    "errors": [{"message": "Forbidden", "domain": "global", "reason": "forbidden"}]
    },
    "error_description": "Bad Request"
    }
    """

  static let statuses = [200, 204, 301, 307, 400, 401, 403, 404, 409, 416, 429, 500, 503]

  let quick = RetryPolicy(retries: 1, baseDelay: 0, maxDelay: 0, sleep: { _ in })
  var scratch = ""

  override func setUpWithError() throws {
    scratch = NSTemporaryDirectory() + "dv-response-fuzz-\(UUID().uuidString)"
    try FileSystem.createDirectory(scratch)
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(scratch) }

  func s3(_ transport: HTTPTransport) throws -> S3Remote {
    try S3Remote(
      settings: RemoteSettings(name: "storage", url: "s3://bucket/team", options: ["region": "us-east-1"]),
      environment: ["AWS_ACCESS_KEY_ID": "AKIDFUZZ", "AWS_SECRET_ACCESS_KEY": "fuzz-secret"], transport: transport,
      retryPolicy: quick)
  }

  func gcs(_ transport: HTTPTransport) throws -> GCSRemote {
    try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket/data", options: ["token": "fuzz-token"]),
      environment: [:],
      transport: transport, tuning: GCSTuning(retry: quick, pageSize: 1000))
  }

  /// Why `error` breaks the contract: remote failures are `RemoteError` (or `PackError`) on one
  /// line, never naming a secret.
  static func problem(with error: Error) -> String? {
    guard error is RemoteError || error is PackError else { return "not a RemoteError: \(type(of: error)): \(error)" }
    let text = "\(error)"
    if text.contains("\n") || text.contains("\r") { return "more than one line: \(Fuzz.show(text))" }
    if text.contains("fuzz-secret") || text.contains("fuzz-token") { return "names a secret: \(text)" }
    return nil
  }

  /// Lists through the engine (keys validated) and directly (keys relative, as listed).
  func checkListing(_ remote: Remote, kind: String, index: Int, input: String, runner: FuzzRunner) {
    do {
      let objects = try TransferEngine(remote: remote, jobs: 1, retry: quick).remoteObjects()
      for id in objects.keys where !TransferEngine.isObjectID(Array(id.utf8)) {
        runner.fail(kind: kind, index: index, input: input, "listed id '\(Fuzz.show(id))' is not an object id")
      }
    } catch {
      if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: index, input: input, problem) }
    }
    var keys = 0
    do {
      try remote.list(prefix: "") { _, _ in
        keys += 1
        return keys < 100_000
      }
    } catch {
      if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: index, input: input, problem) }
    }
  }

  /// Every operation that reads an error body, against one scripted answer.
  func checkErrors(_ remote: Remote, kind: String, index: Int, input: String, runner: FuzzRunner) {
    let operations: [(String, () throws -> Void)] = [
      ("exists", { _ = try remote.exists(Self.key(Self.ids[0])) }),
      ("download", { try remote.download(Self.key(Self.ids[0]), to: self.scratch + "/download") { _ in } }),
      ("delete", { try remote.delete(Self.key(Self.ids[0])) }),
      ("list", { try remote.list(prefix: "sha256/") { _, _ in true } }),
    ]
    for (name, operation) in operations {
      do { try operation() } catch {
        if let problem = Self.problem(with: error) {
          runner.fail(kind: kind, index: index, input: input, "\(name): " + problem)
        }
      }
    }
  }

  func report(_ failures: [FuzzRunner.Failure], kind: String, runner: FuzzRunner) {
    print("fuzz \(kind): \(runner.count) cases, seed \(Fuzz.seed), \(failures.count) failures")
    for failure in failures.prefix(5) { XCTFail(failure.description) }
  }

  // MARK: - S3

  /// A size that is negative or not a number is not believed: the listing fails with one line.
  func testListingSizesMustBeByteCounts() throws {
    for bad in ["-5", "12abc", "99999999999999999999"] {
      let s3Page = Self.s3Listing.replacingOccurrences(of: "<Size>3</Size>", with: "<Size>\(bad)</Size>")
      XCTAssertNotEqual(s3Page, Self.s3Listing)
      let s3 = try s3(GCSHandlerTransport { _ in (200, [:], Array(s3Page.utf8)) })
      XCTAssertThrowsError(try s3.list(prefix: "") { _, _ in true }) { error in
        XCTAssertTrue("\(error)".contains("the size \"\(bad)\", not a byte count"), "\(error)")
      }
      let gcsPage = Self.gcsListing.replacingOccurrences(of: "\"size\": \"0\"", with: "\"size\": \"\(bad)\"")
      XCTAssertNotEqual(gcsPage, Self.gcsListing)
      let gcs = try gcs(GCSHandlerTransport { _ in (200, [:], Array(gcsPage.utf8)) })
      XCTAssertThrowsError(try gcs.list(prefix: "") { _, _ in true }) { error in
        XCTAssertTrue("\(error)".contains("not a byte count"), "\(error)")
      }
    }
  }

  func testMutatedS3Listings() throws {
    let kind = "s3-listing"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(700)) { i, runner in
      var mutator = Mutator(
        rng: Fuzz.generator(kind: kind, index: i), dialect: .xml, vocabulary: Self.ids.map { "team/" + Self.key($0) })
      let paged = mutator.rng.chance(0.3)
      let (bytes, applied) = mutator.mutate(Array((paged ? Self.s3FirstPage : Self.s3Listing).utf8))
      let input = (paged ? "first page " : "") + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      let pages = paged ? [bytes, Array(Self.s3Listing.utf8)] : [bytes]
      let served = Locked(0)
      let transport = GCSHandlerTransport { _ in
        let n = served.withLock { n -> Int in
          n += 1
          return n
        }
        return (200, [:], pages[(n - 1) % pages.count])
      }
      do {
        let remote = try self.s3(transport)
        self.checkListing(remote, kind: kind, index: i, input: input, runner: runner)
      } catch {
        runner.fail(kind: kind, index: i, input: input, "making the remote: \(error)")
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  func testMutatedS3Errors() throws {
    let kind = "s3-error"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(400)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .xml, vocabulary: Self.s3Codes)
      let status = mutator.rng.pick(Self.statuses.filter { $0 >= 300 })
      let seed = Self.s3Error.replacingOccurrences(of: "SlowDown", with: mutator.rng.pick(Self.s3Codes))
      let (bytes, applied) = mutator.mutate(Array(seed.utf8))
      let headers: HTTPHeaders =
        mutator.rng.chance(0.3)
        ? ["x-amz-bucket-region": mutator.rng.pick(["eu-west-1", "", "a\nb", "us-east-1"])] : [:]
      let input = "HTTP \(status) " + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      let transport = GCSHandlerTransport { _ in (status, headers, bytes) }
      do {
        self.checkErrors(try self.s3(transport), kind: kind, index: i, input: input, runner: runner)
      } catch {
        runner.fail(kind: kind, index: i, input: input, "making the remote: \(error)")
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  // MARK: - GCS

  func testMutatedGCSListings() throws {
    let kind = "gcs-listing"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(700)) { i, runner in
      var mutator = Mutator(
        rng: Fuzz.generator(kind: kind, index: i), dialect: .json,
        vocabulary: Self.ids.map { "\"data/" + Self.key($0) + "\"" })
      let paged = mutator.rng.chance(0.3)
      let (bytes, applied) = mutator.mutate(Array((paged ? Self.gcsFirstPage : Self.gcsListing).utf8))
      let input = (paged ? "first page " : "") + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      let pages = paged ? [bytes, Array(Self.gcsListing.utf8)] : [bytes]
      let transport = GCSHandlerTransport { request in
        (200, [:], request.url.contains("pageToken=") ? pages[pages.count - 1] : pages[0])
      }
      do {
        self.checkListing(try self.gcs(transport), kind: kind, index: i, input: input, runner: runner)
      } catch {
        runner.fail(kind: kind, index: i, input: input, "making the remote: \(error)")
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  func testMutatedGCSErrors() throws {
    let kind = "gcs-error"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(400)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .json)
      let status = mutator.rng.pick(Self.statuses.filter { $0 >= 300 })
      let (bytes, applied) = mutator.mutate(Array(Self.gcsError.utf8))
      let input = "HTTP \(status) " + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      // The bucket exists (so that 404s are about objects), every other call gets the error.
      let transport = GCSHandlerTransport { request in
        if request.url.hasSuffix("/b/bucket?fields=name&prettyPrint=false") {
          return (200, [:], Array(#"{"name":"bucket"}"#.utf8))
        }
        return (status, [:], bytes)
      }
      do {
        self.checkErrors(try self.gcs(transport), kind: kind, index: i, input: input, runner: runner)
      } catch {
        runner.fail(kind: kind, index: i, input: input, "making the remote: \(error)")
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  // MARK: - Pack indexes

  func testMutatedPackIndexes() throws {
    let kind = "pack-index"
    let name = String(repeating: "c", count: 64)
    let valid = PackIndex(
      name: name, packSize: 4_096,
      entries: Self.ids.enumerated().map { n, id in PackIndex.Entry(id: id, offset: 8 + Int64(n) * 100, length: 100) }
    ).encoded()
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(800)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .json)
      var bytes: [UInt8]
      var applied: [String]
      if mutator.rng.chance(0.5) {
        (bytes, applied) = mutator.mutate(valid)
      } else {
        // Whole fields: the count, an offset, a length, the pack size.
        bytes = valid
        var fields: [Int] = [8, valid.count - 40]
        for n in 0..<Self.ids.count { fields += [16 + 48 * n + 32, 16 + 48 * n + 40] }
        let field = mutator.rng.pick(fields)
        let values: [UInt64] = [
          0, 1, 7, 8, 100, 4_096, 4_097, UInt64(Int64.max), UInt64(Int64.max) + 1, UInt64.max, UInt64.max - 99,
          UInt64(valid.count / 48), 1 << 40,
        ]
        let value = mutator.rng.pick(values)
        for k in 0..<8 { bytes[field + k] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * k)) }
        applied = ["field@\(field)=\(value)"]
      }
      // Half the cases carry a right checksum, so that the checks behind it are reached.
      if mutator.rng.chance(0.5), bytes.count >= 32 {
        bytes.replaceSubrange((bytes.count - 32)..., with: SHA256Stream.digest(bytes[0..<(bytes.count - 32)]))
        applied.append("checksum")
      }
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes, limit: 120)
      runner.starting(i, input: input)
      do {
        let index = try PackIndex.decode(bytes, name: name, url: "memory://" + name)
        var previous = ""
        for entry in index.entries {
          if !TransferEngine.isObjectID(Array(entry.id.utf8)) || entry.id <= previous {
            runner.fail(kind: kind, index: i, input: input, "entry id '\(entry.id)' is not an increasing object id")
          }
          previous = entry.id
          if entry.offset < 8 || entry.length < 0 || entry.length > index.packSize
            || entry.offset > index.packSize - entry.length
          {
            runner.fail(kind: kind, index: i, input: input, "entry \(entry) lies outside the pack")
          }
        }
      } catch {
        if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    report(failures, kind: kind, runner: runner)
  }
}
