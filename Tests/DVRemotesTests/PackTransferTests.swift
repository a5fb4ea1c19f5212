import DVBasics
import XCTest

@testable import DVRemotes

/// An in-memory remote whose reads can be damaged or cut, to drive the engine's pack paths.
final class FlakyReadRemote: Remote, @unchecked Sendable {
  let displayURL = "flaky://bucket"
  let objects = Locked<[String: [UInt8]]>([:])
  /// Decides, for the nth read (from 1) of a key, whether to flip a byte of what it returns.
  let corruptRead = Locked<(Int, String) -> Bool>({ _, _ in false })
  /// Decides whether the nth read fails with a transport error.
  let failRead = Locked<(Int, String) -> Bool>({ _, _ in false })
  let reads = Locked(0)
  let listings = Locked(0)
  let existenceChecks = Locked(0)

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
    let bytes = try FileSystem.readFileIfPresent(path) ?? []
    if let sha256 { XCTAssertEqual(SHA256Stream.digest(bytes), sha256, "signed with the right payload hash") }
    objects.withLock { $0[key] = bytes }
  }

  func download(_ key: String, to path: String, progress: @escaping (Int64) -> Void) throws {
    guard let bytes = objects.withLock({ $0[key] }) else { throw RemoteError.notFound(url: displayURL + "/" + key) }
    try FileSystem.writeFile(bytes, to: path)
  }

  func read(_ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void) throws {
    let n = reads.withLock { count -> Int in
      count += 1
      return count
    }
    let url = displayURL + "/" + key
    guard var bytes = objects.withLock({ $0[key] }) else { throw RemoteError.notFound(url: url) }
    if failRead.withLock({ $0 })(n, key) { throw RemoteError.transport(url: url, message: "connection reset") }
    let wanted = range ?? 0..<Int64(bytes.count)
    if corruptRead.withLock({ $0 })(n, key) { bytes[Int(wanted.lowerBound + Int64(wanted.count / 2))] ^= 0x55 }
    try sink.begin(at: wanted.lowerBound)
    try bytes[Int(wanted.lowerBound)..<Int(wanted.upperBound)].withUnsafeBytes { try sink.write($0) }
  }

  func delete(_ key: String) throws { objects.withLock { _ = $0.removeValue(forKey: key) } }
}

final class PackTransferTests: XCTestCase {
  var directory = ""
  var remote = FlakyReadRemote()
  var items: [UploadItem] = []
  var contents: [String: [UInt8]] = [:]

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "/dv-packs-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory + "/files")
    remote = FlakyReadRemote()
    items = []
    contents = [:]
    for i in 0..<120 {
      let bytes = Array("object number \(i) ".utf8) + [UInt8](repeating: UInt8(i), count: i * 13)
      let id = Hex.string(SHA256Stream.digest(bytes))
      let path = directory + "/files/\(i)"
      try FileSystem.writeFile(bytes, to: path)
      items.append(UploadItem(id: id, path: path, size: Int64(bytes.count)))
      contents[id] = bytes
    }
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  func engine(indexes: String = "indexes", jobs: Int = 4) -> TransferEngine {
    TransferEngine(
      remote: remote, jobs: jobs, retry: RetryPolicy(retries: 2, baseDelay: 0.001),
      workDirectory: directory + "/work", packIndexDirectory: directory + "/" + indexes)
  }

  /// Downloads every item with `engine`, returning what was stored.
  func fetchAll(_ engine: TransferEngine) throws -> (TransferSummary, [String: [UInt8]]) {
    let stored = Locked<[String: [UInt8]]>([:])
    let summary = try engine.download(
      items.map(\.id), into: directory + "/tmp", commit: { _, _ in XCTFail("packed objects come as bytes") },
      store: { objects in stored.withLock { for object in objects { $0[object.id] = object.bytes } } })
    return (summary, stored.withLock { $0 })
  }

  func testAPushPacksSmallObjectsAndAnotherClientFindsThemThroughTheIndexes() throws {
    let summary = try engine().upload(items)
    XCTAssertEqual(summary.transferred, 120)
    XCTAssertTrue(summary.failed.isEmpty)
    let keys = remote.objects.withLock { Array($0.keys) }
    XCTAssertFalse(keys.contains { $0.hasPrefix("sha256/") }, "nothing loose")
    XCTAssertEqual(keys.filter { $0.hasSuffix(".pack") }.count, keys.filter { $0.hasSuffix(".idx") }.count)

    // Another client (its own index copy): one listing of packs/, no existence checks.
    remote.listings.withLock { $0 = 0 }
    let other = engine(indexes: "other-indexes")
    XCTAssertEqual(try other.missingOnRemote(items.map(\.id)), [])
    XCTAssertEqual(remote.existenceChecks.withLock { $0 }, 0)
    XCTAssertEqual(remote.listings.withLock { $0 }, 1)
    let (fetched, stored) = try fetchAll(other)
    XCTAssertEqual(fetched.transferred, 120)
    XCTAssertEqual(stored, contents)
  }

  func testACorruptedReadIsDetectedAndTheObjectRefetched() throws {
    _ = try engine().upload(items)
    // The first read of every pack comes back with one byte flipped.
    remote.corruptRead.withLock { $0 = { n, key in key.hasSuffix(".pack") && n <= 2 } }
    let (summary, stored) = try fetchAll(engine(indexes: "fresh"))
    XCTAssertTrue(summary.failed.isEmpty, "\(summary.failed)")
    XCTAssertEqual(stored, contents, "every object arrives, verified")
  }

  func testAnObjectCorruptAtRestFailsAloneNamingThePack() throws {
    _ = try engine().upload(items)
    let pack = remote.objects.withLock { $0.keys.first { $0.hasSuffix(".pack") }! }
    remote.objects.withLock { $0[pack]![100] ^= 0x01 }
    let (summary, stored) = try fetchAll(engine(indexes: "fresh"))
    XCTAssertEqual(summary.failed.count, 1)
    let message = "\(summary.failed.first!.error)"
    XCTAssertTrue(message.contains("is corrupt on the remote") && message.contains(pack), message)
    XCTAssertEqual(stored.count, 119)
    for (id, bytes) in stored { XCTAssertEqual(contents[id], bytes) }
  }

  func testDroppedConnectionsAreRetried() throws {
    _ = try engine().upload(items)
    remote.failRead.withLock { $0 = { n, key in key.hasSuffix(".pack") && n % 2 == 1 } }
    let (summary, stored) = try fetchAll(engine(indexes: "fresh"))
    XCTAssertTrue(summary.failed.isEmpty, "\(summary.failed)")
    XCTAssertEqual(stored, contents)
  }

  func testAPermanentlyMissingPackIsAClearFailure() throws {
    _ = try engine().upload(items)
    let fresh = engine(indexes: "fresh")
    _ = try fresh.packCatalog()
    remote.objects.withLock { objects in for key in objects.keys where key.hasSuffix(".pack") { objects[key] = nil } }
    let (summary, stored) = try fetchAll(fresh)
    XCTAssertEqual(summary.failed.count, 120)
    XCTAssertEqual(stored.count, 0)
    XCTAssertTrue("\(summary.failed.first!.error)".contains("does not exist on the remote"))
  }

  func testADamagedLocalIndexCopyIsReplaced() throws {
    let first = engine()
    _ = try first.upload(items)
    let copies = try FileSystem.listDirectory(directory + "/indexes").map(\.name)
    XCTAssertFalse(copies.isEmpty)
    try FileSystem.writeFile(Array("garbage".utf8), to: directory + "/indexes/" + copies[0])
    let again = engine()
    XCTAssertEqual(try again.missingOnRemote(items.map(\.id)), [])
    let repaired = try XCTUnwrap(try FileSystem.readFileIfPresent(directory + "/indexes/" + copies[0]))
    XCTAssertEqual(Array(repaired.prefix(8)), Array("DVPKIDX1".utf8))
  }

  func testFewSmallObjectsTravelLoose() throws {
    let summary = try engine().upload(Array(items.prefix(10)))
    XCTAssertEqual(summary.transferred, 10)
    XCTAssertEqual(remote.objects.withLock { $0.keys.filter { $0.hasPrefix("sha256/") }.count }, 10)
    XCTAssertEqual(remote.objects.withLock { $0.keys.filter { $0.hasPrefix("packs/") }.count }, 0)
  }
}
