import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// An in-memory remote that fails on purpose: the first `transientUploadFailures[key]` uploads
/// of a key throw a transport error; downloads and reads of keys in `corrupt` return other bytes.
final class FaultyRemote: Remote, @unchecked Sendable {
  let displayURL = "fake://bucket"
  let objects = Locked<[String: [UInt8]]>([:])
  let transientUploadFailures = Locked<[String: Int]>([:])
  let corrupt = Locked<Set<String>>([])
  let uploads = Locked(0)
  let existenceChecks = Locked(0)
  let listings = Locked(0)

  func exists(_ key: String) throws -> Bool {
    existenceChecks.withLock { $0 += 1 }
    return objects.withLock { $0[key] != nil }
  }

  func list(prefix: String, _ each: (String, Int64) throws -> Bool) throws {
    listings.withLock { $0 += 1 }
    for (key, bytes) in objects.withLock({ $0 }).sorted(by: { $0.key < $1.key }) where key.hasPrefix(prefix) {
      if try !each(key, Int64(bytes.count)) { return }
    }
  }

  func upload(from path: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void)
    throws
  {
    uploads.withLock { $0 += 1 }
    let fail = transientUploadFailures.withLock { failures -> Bool in
      guard let left = failures[key], left > 0 else { return false }
      failures[key] = left - 1
      return true
    }
    if fail { throw RemoteError.transport(url: displayURL + "/" + key, message: "connection reset") }
    let bytes = try FileSystem.readFileIfPresent(path) ?? []
    progress(Int64(bytes.count))
    objects.withLock { $0[key] = bytes }
  }

  func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws {
    guard var bytes = objects.withLock({ $0[key] }) else { throw RemoteError.notFound(url: displayURL + "/" + key) }
    if corrupt.withLock({ $0.contains(key) }) { bytes += Array("tampered".utf8) }
    try FileSystem.writeAtomically(bytes, to: path)
    progress(Int64(bytes.count))
  }

  func read(_ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void) throws {
    let url = displayURL + "/" + key
    guard var bytes = objects.withLock({ $0[key] }) else { throw RemoteError.notFound(url: url) }
    if corrupt.withLock({ $0.contains(key) }) { bytes += Array("tampered".utf8) }
    let wanted = range ?? 0..<Int64(bytes.count)
    guard wanted.isEmpty || wanted.upperBound <= Int64(bytes.count) else {
      throw RemoteError.server(url: url, status: 416, message: "the range lies outside the object")
    }
    try sink.begin(at: wanted.lowerBound)
    if wanted.isEmpty { return }
    try bytes[Int(wanted.lowerBound)..<Int(wanted.upperBound)].withUnsafeBytes { try sink.write($0) }
    progress(Int64(wanted.count))
  }

  func delete(_ key: String) throws { objects.withLock { _ = $0.removeValue(forKey: key) } }
}

final class TransferEngineTests: XCTestCase {
  var directory: String!

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "dv-transfer-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory)
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  /// Writes `count` small files; returns them as upload items.
  func makeObjects(_ count: Int) throws -> [UploadItem] {
    try (0..<count).map { i in
      let bytes = Array("object \(i)\n".utf8)
      let path = directory + "/obj\(i)"
      try FileSystem.writeAtomically(bytes, to: path)
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
      defer { buffer.deallocate() }
      let (hex, size) = try TransferEngine.sha256(ofFile: path, buffer: buffer)
      return UploadItem(id: hex, path: path, size: size)
    }
  }

  func engine(_ remote: Remote, jobs: Int = 4) -> TransferEngine {
    TransferEngine(remote: remote, jobs: jobs, retry: RetryPolicy(retries: 2, baseDelay: 0, sleep: { _ in }))
  }

  func testTransientUploadFailuresAreRetriedAndCounted() throws {
    let remote = FaultyRemote()
    let items = try makeObjects(10)
    remote.transientUploadFailures.withLock {
      $0[TransferEngine.key(ofObject: items[0].id)] = 1
      $0[TransferEngine.key(ofObject: items[1].id)] = 2
      $0[TransferEngine.key(ofObject: items[2].id)] = 5
    }
    let summary = try engine(remote).upload(items)
    XCTAssertEqual(summary.transferred, 9)
    XCTAssertEqual(summary.bytes, items.dropFirst(3).reduce(0) { $0 + $1.size } + items[0].size + items[1].size)
    XCTAssertEqual(summary.failed.map(\.id), [items[2].id], "three attempts, all failed")
    XCTAssertTrue("\(summary.failed[0].error)".contains("connection reset"))
    XCTAssertEqual(remote.uploads.withLock { $0 }, 10 + 1 + 2 + 2)

    let again = try engine(remote).upload(items)
    XCTAssertEqual(again.transferred, 1, "only what the remote lacks")
    XCTAssertEqual(again.alreadyThere, 9)
    XCTAssertTrue(again.failed.isEmpty)
  }

  func testManyObjectsAreFoundMissingByOneListingFewByExistenceChecks() throws {
    let remote = FaultyRemote()
    let many = try makeObjects(TransferEngine.listingThreshold + 1)
    _ = try engine(remote).missingOnRemote(many.map(\.id))
    XCTAssertEqual(remote.listings.withLock { $0 }, 1)
    XCTAssertEqual(remote.existenceChecks.withLock { $0 }, 0)
    _ = try engine(remote).missingOnRemote(many.prefix(3).map(\.id))
    XCTAssertEqual(remote.existenceChecks.withLock { $0 }, 3)
  }

  func testDownloadsAreVerifiedAndWrongBytesNeverCommitted() throws {
    let remote = FaultyRemote()
    let items = try makeObjects(3)
    XCTAssertTrue(try engine(remote).upload(items).failed.isEmpty)
    remote.corrupt.withLock { _ = $0.insert(TransferEngine.key(ofObject: items[1].id)) }
    let committed = Locked<[String: [UInt8]]>([:])
    let temporary = directory + "/tmp"
    let summary = try engine(remote).download(
      items.map(\.id) + ["0" + String(repeating: "f", count: 63)], into: temporary
    ) {
      id, path in
      committed.withLock { $0[id] = (try? FileSystem.readFileIfPresent(path)) ?? nil }
    }
    XCTAssertEqual(summary.transferred, 2)
    XCTAssertEqual(Set(committed.withLock { $0.keys }), [items[0].id, items[2].id])
    XCTAssertEqual(summary.failed.count, 2)
    guard
      case .integrity(let url, let expected, _)? = summary.failed.first(where: { $0.id == items[1].id })?.error
        as? RemoteError
    else { return XCTFail("expected an integrity error: \(summary.failed)") }
    XCTAssertTrue(url.hasPrefix("fake://bucket/sha256/"), url)
    XCTAssertEqual(expected, "sha256:" + items[1].id)
    XCTAssertTrue(
      summary.failed.contains { if case .notFound? = $0.error as? RemoteError { return true } else { return false } })
    XCTAssertEqual(try FileSystem.listDirectory(temporary).count, 0, "no partial downloads are left")
  }

  func testObjectKeysFromListingsAreValidated() {
    let good = String(repeating: "ab", count: 32)
    XCTAssertEqual(TransferEngine.objectID(fromKey: TransferEngine.key(ofObject: good)), good)
    XCTAssertNil(TransferEngine.objectID(fromKey: "sha256/ab/" + String(repeating: "c", count: 61)))
    XCTAssertNil(TransferEngine.objectID(fromKey: "sha256/AB/" + String(repeating: "c", count: 62)))
    XCTAssertNil(TransferEngine.objectID(fromKey: "sha256/ab/../" + String(repeating: "c", count: 59)))
    XCTAssertNil(TransferEngine.objectID(fromKey: "sha256/abc" + String(repeating: "c", count: 62)))
  }
}
