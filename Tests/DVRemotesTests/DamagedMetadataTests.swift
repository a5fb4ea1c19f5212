import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// What issue 9's fault suite found: answers that are not objects (listings, pack indexes) can
/// arrive damaged too, and a damaged one must be asked for again, not believed or fatal. A
/// flipped byte of ASCII text is never valid UTF-8, which is how a listing is told damaged.
final class DamagedMetadataTests: XCTestCase {
  /// `text` with the middle byte flipped, as the fault proxy's `--corrupt` does.
  static func damaged(_ text: String) -> [UInt8] {
    var bytes = Array(text.utf8)
    bytes[bytes.count / 2] ^= 0xFF
    return bytes
  }

  static let s3Page = """
    <?xml version="1.0" encoding="UTF-8"?>
    <ListBucketResult><IsTruncated>false</IsTruncated>
    <Contents><Key>root/packs/aaaa.idx</Key><Size>5</Size></Contents>
    <Contents><Key>root/packs/bbbb.idx</Key><Size>7</Size></Contents>
    </ListBucketResult>
    """

  func s3Remote(_ transport: HTTPTransport, retries: Int = 3) throws -> S3Remote {
    try S3Remote(
      settings: RemoteSettings(name: "s3", url: "s3://bucket/root"),
      environment: ["AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret"], transport: transport,
      retryPolicy: RetryPolicy(retries: retries, sleep: { _ in }))
  }

  func testADamagedS3ListingIsAskedForAgain() throws {
    let transport = ScriptedTransport([
      .respond(200, [:], Self.damaged(Self.s3Page)), .respond(200, [:], Array(Self.s3Page.utf8)),
    ])
    var keys: [String] = []
    try s3Remote(transport).list(prefix: "packs/") { key, _ in
      keys.append(key)
      return true
    }
    XCTAssertEqual(keys, ["packs/aaaa.idx", "packs/bbbb.idx"], "no key was lost to the damaged page")
    XCTAssertEqual(transport.requests.withLock { $0.count }, 2)
  }

  func testAnS3ListingDamagedEveryTimeFailsAfterTheRetries() throws {
    let transport = ScriptedTransport(Array(repeating: .respond(200, [:], Self.damaged(Self.s3Page)), count: 3))
    XCTAssertThrowsError(try s3Remote(transport, retries: 2).list(prefix: "") { _, _ in true }) { error in
      XCTAssertEqual("\(error)", "s3://bucket/root: HTTP 200: the object listing arrived damaged (not UTF-8)")
    }
    XCTAssertEqual(transport.requests.withLock { $0.count }, 3)
  }

  func testADamagedGCSListingIsAskedForAgain() throws {
    let page = #"{"items":[{"name":"data/packs/aaaa.idx","size":"5"},{"name":"data/packs/bbbb.idx","size":"7"}]}"#
    let calls = Locked(0)
    let transport = GCSHandlerTransport { _ in
      let n = calls.withLock { count -> Int in
        count += 1
        return count
      }
      return (200, [:], n == 1 ? Self.damaged(page) : Array(page.utf8))
    }
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket/data", options: ["token": "t"]), environment: [:],
      transport: transport, tuning: GCSTuning(retry: RetryPolicy(retries: 2, sleep: { _ in })))
    var keys: [String] = []
    try remote.list(prefix: "packs/") { key, _ in
      keys.append(key)
      return true
    }
    XCTAssertEqual(keys, ["packs/aaaa.idx", "packs/bbbb.idx"])
    XCTAssertEqual(calls.withLock { $0 }, 2)
  }

  // MARK: - Pack indexes

  func packedRemote() throws -> (FlakyReadRemote, [UploadItem], String) {
    let directory = NSTemporaryDirectory() + "/dv-damaged-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory + "/files")
    addTeardownBlock { try? FileSystem.removeTree(directory) }
    var items: [UploadItem] = []
    for i in 0..<40 {
      let bytes = Array("small object \(i) ".utf8) + [UInt8](repeating: UInt8(i), count: i * 11)
      let path = directory + "/files/\(i)"
      try FileSystem.writeFile(bytes, to: path)
      items.append(UploadItem(id: Hex.string(SHA256Stream.digest(bytes)), path: path, size: Int64(bytes.count)))
    }
    let remote = FlakyReadRemote()
    let pusher = TransferEngine(
      remote: remote, jobs: 2, retry: RetryPolicy(retries: 2, baseDelay: 0.001),
      workDirectory: directory + "/work", packIndexDirectory: directory + "/pusher")
    XCTAssertEqual(try pusher.upload(items).transferred, items.count)
    return (remote, items, directory)
  }

  func fetch(_ remote: FlakyReadRemote, _ items: [UploadItem], _ directory: String) throws -> TransferSummary {
    let engine = TransferEngine(
      remote: remote, jobs: 2, retry: RetryPolicy(retries: 2, baseDelay: 0.001),
      workDirectory: directory + "/work", packIndexDirectory: directory + "/fetcher-\(UUID().uuidString)")
    return try engine.download(
      items.map(\.id), into: directory + "/tmp", commit: { _, _ in }, store: { _ in })
  }

  func testAPackIndexDamagedOnTheWayIsReadAgain() throws {
    let (remote, items, directory) = try packedRemote()
    var damagedOnce = Set<String>()
    let lock = NSLock()
    remote.corruptRead.withLock {
      $0 = { _, key in
        lock.lock()
        defer { lock.unlock() }
        return key.hasSuffix(".idx") && damagedOnce.insert(key).inserted
      }
    }
    let summary = try fetch(remote, items, directory)
    XCTAssertEqual(summary.transferred, items.count)
    XCTAssertTrue(summary.failed.isEmpty)
  }

  func testAPackIndexDamagedAtRestFailsNamingIt() throws {
    let (remote, items, directory) = try packedRemote()
    remote.corruptRead.withLock { $0 = { _, key in key.hasSuffix(".idx") } }
    XCTAssertThrowsError(try fetch(remote, items, directory)) { error in
      XCTAssertTrue("\(error)".contains("is not a valid pack index (checksum mismatch)"), "\(error)")
    }
  }
}
