import DVBasics
import XCTest

@testable import DVRemotes

/// The pack and index formats (docs/formats.md §3–§5), segment planning and extraction.
final class PackFormatTests: XCTestCase {
  func id(_ bytes: [UInt8]) -> String { Hex.string(SHA256Stream.digest(bytes)) }

  func sampleIndex() -> PackIndex {
    PackIndex(
      name: id(Array("pack".utf8)), packSize: 1000,
      entries: [
        .init(id: id([2]), offset: 8, length: 100),
        .init(id: id([1]), offset: 108, length: 0),
        .init(id: id([3]), offset: 108, length: 892),
      ])
  }

  func testAnIndexRoundTripsAndHasTheDocumentedLayout() throws {
    let index = sampleIndex()
    let bytes = index.encoded()
    XCTAssertEqual(bytes.count, 88 + 48 * 3)
    XCTAssertEqual(Array(bytes[0..<8]), Array("DVPKIDX1".utf8))
    XCTAssertEqual(Array(bytes[8..<16]), [0, 0, 0, 0, 0, 0, 0, 3])
    let decoded = try PackIndex.decode(bytes, name: index.name, url: "x")
    XCTAssertEqual(decoded, index)
    XCTAssertEqual(decoded.entries.map(\.id), decoded.entries.map(\.id).sorted())
    XCTAssertEqual(decoded.entry(for: id([3]))?.offset, 108)
    XCTAssertNil(decoded.entry(for: id([4])))
  }

  func testEveryDamagedIndexIsRejected() throws {
    let index = sampleIndex()
    let good = index.encoded()
    // Every single flipped byte is caught (the checksum covers all of it).
    for position in 0..<good.count {
      var bad = good
      bad[position] ^= 0x01
      XCTAssertThrowsError(try PackIndex.decode(bad, name: index.name, url: "s3://b/packs/x.idx"), "byte \(position)")
    }
    XCTAssertThrowsError(try PackIndex.decode(Array(good.dropLast()), name: index.name, url: "x"))
    XCTAssertThrowsError(try PackIndex.decode([], name: index.name, url: "x"))
    // Another pack's name.
    XCTAssertThrowsError(try PackIndex.decode(good, name: id([9]), url: "x")) { error in
      XCTAssertTrue("\(error)".contains("names another pack"), "\(error)")
    }
  }

  func testAnEntryOutsideThePackIsRejectedEvenWithAGoodChecksum() {
    let outside = PackIndex(name: id([7]), packSize: 50, entries: [.init(id: id([1]), offset: 8, length: 43)])
    XCTAssertThrowsError(try PackIndex.decode(outside.encoded(), name: outside.name, url: "x")) { error in
      XCTAssertTrue("\(error)".contains("outside the pack"), "\(error)")
    }
    let inHeader = PackIndex(name: id([7]), packSize: 50, entries: [.init(id: id([1]), offset: 2, length: 4)])
    XCTAssertThrowsError(try PackIndex.decode(inHeader.encoded(), name: inHeader.name, url: "x"))
    let huge = PackIndex(name: id([7]), packSize: 1 << 40, entries: [.init(id: id([1]), offset: 8, length: 1 << 30)])
    XCTAssertThrowsError(try PackIndex.decode(huge.encoded(), name: huge.name, url: "x")) { error in
      XCTAssertTrue("\(error)".contains("larger than 64 MiB"), "\(error)")
    }
  }

  func testKeysAreValidatedBeforeUse() {
    let name = String(repeating: "ab", count: 32)
    XCTAssertEqual(PackFormat.packName(fromIndexKey: "packs/\(name).idx"), name)
    XCTAssertEqual(PackFormat.packName(fromPackKey: "packs/\(name).pack"), name)
    XCTAssertNil(PackFormat.packName(fromIndexKey: "packs/\(name).pack"))
    XCTAssertNil(PackFormat.packName(fromIndexKey: "packs/../\(name.dropFirst(3)).idx"))
    XCTAssertNil(PackFormat.packName(fromIndexKey: "packs/\(name.uppercased()).idx"))
    XCTAssertNil(PackFormat.packName(fromIndexKey: "other/\(name).idx"))
  }

  func testSegmentsJoinCloseObjectsAndSplitFarOrLargeOnes() {
    let e = { (offset: Int64, length: Int64) in PackIndex.Entry(id: "\(offset)", offset: offset, length: length) }
    // Close together: one segment.
    XCTAssertEqual(
      PackSegment.plan(pack: "p", wanted: [e(100, 10), e(8, 10), e(200, 10)], maxGap: 100, maxLength: 1000).map(
        \.range),
      [8..<210])
    // A gap wider than maxGap splits.
    XCTAssertEqual(
      PackSegment.plan(pack: "p", wanted: [e(8, 10), e(500, 10)], maxGap: 100, maxLength: 1000).map(\.range),
      [8..<18, 500..<510])
    // maxLength splits; an object larger than it is a segment of its own.
    XCTAssertEqual(
      PackSegment.plan(pack: "p", wanted: [e(8, 60), e(68, 60), e(128, 500)], maxGap: 100, maxLength: 100).map(\.range),
      [8..<68, 68..<128, 128..<628])
  }

  /// Builds a pack in memory from objects; returns its bytes and index.
  func makePack(_ objects: [[UInt8]]) -> ([UInt8], PackIndex) {
    var pack = PackFormat.packMagic
    var entries: [PackIndex.Entry] = []
    for object in objects {
      entries.append(.init(id: id(object), offset: Int64(pack.count), length: Int64(object.count)))
      pack += object
    }
    return (pack, PackIndex(name: id(pack), packSize: Int64(pack.count), entries: entries))
  }

  func testTheExtractorDeliversVerifiedObjectsFromAnySplitOfTheStream() throws {
    var generator = SystemRandomNumberGenerator()
    let objects = (0..<20).map { i in (0..<(i * 37 % 300)).map { _ in UInt8.random(in: 0...255, using: &generator) } }
    let (pack, index) = makePack(objects)
    let wanted = index.entries.sorted { $0.offset < $1.offset }.enumerated().filter { $0.offset % 3 != 1 }.map(
      \.element)
    for piece in [1, 7, 64, 4096] {
      var got: [String: [UInt8]] = [:]
      let extractor = PackExtractor(entries: wanted) { entry, bytes in got[entry.id] = Array(bytes) }
      let range = wanted.first!.offset..<wanted.last!.end
      try extractor.begin(at: range.lowerBound)
      let body = Array(pack[Int(range.lowerBound)..<Int(range.upperBound)])
      for start in stride(from: 0, to: body.count, by: piece) {
        try body[start..<min(body.count, start + piece)].withUnsafeBytes { try extractor.write($0) }
      }
      try extractor.finishEmptyObjects()
      XCTAssertEqual(Set(got.keys), Set(wanted.map(\.id)), "pieces of \(piece)")
      for (key, bytes) in got { XCTAssertEqual(id(bytes), key) }
      XCTAssertTrue(extractor.undelivered.isEmpty)
      XCTAssertTrue(extractor.corrupt.isEmpty)
    }
  }

  func testAServerIgnoringTheRangeAndARetryFromTheStartAreHandled() throws {
    let objects: [[UInt8]] = [
      Array(repeating: 1, count: 50), Array(repeating: 2, count: 60), Array(repeating: 3, count: 70),
    ]
    let (pack, index) = makePack(objects)
    let wanted = [index.entries.first { $0.length == 60 }!]
    var delivered = 0
    let extractor = PackExtractor(entries: wanted) { _, _ in delivered += 1 }
    // Whole pack from 0 (the range was ignored), delivered once; then a retry delivers nothing new.
    for _ in 0..<2 {
      try extractor.begin(at: 0)
      try pack.withUnsafeBytes { try extractor.write($0) }
    }
    XCTAssertEqual(delivered, 1)
  }

  func testACorruptByteIsCaughtAndOnlyItsObjectIsLost() throws {
    let objects: [[UInt8]] = (1...4).map { Array(repeating: UInt8($0), count: 100) }
    var (pack, index) = makePack(objects)
    let victim = index.entries.first { $0.length == 100 && pack[Int($0.offset)] == 2 }!
    pack[Int(victim.offset) + 50] ^= 0xff
    var got = Set<String>()
    let entries = index.entries.sorted { $0.offset < $1.offset }
    let extractor = PackExtractor(entries: entries) { entry, _ in got.insert(entry.id) }
    try extractor.begin(at: 8)
    try pack[8...].withUnsafeBytes { try extractor.write($0) }
    XCTAssertEqual(got.count, 3)
    XCTAssertEqual(Array(extractor.corrupt.keys), [victim.id])
    XCTAssertEqual(extractor.undelivered.map(\.id), [victim.id])
  }

  func testAStreamCutShortLeavesTheRestUndelivered() throws {
    let (pack, index) = makePack((1...4).map { Array(repeating: UInt8($0), count: 100) })
    let entries = index.entries.sorted { $0.offset < $1.offset }
    let extractor = PackExtractor(entries: entries) { _, _ in }
    try extractor.begin(at: 8)
    try pack[8..<258].withUnsafeBytes { try extractor.write($0) }
    XCTAssertEqual(extractor.undelivered.count, 2)
    XCTAssertTrue(extractor.corrupt.isEmpty)
  }

  func testPoliciesCutPacksForSizeAndParallelism() {
    let policy = PackPolicy()
    let items = (0..<1000).map { UploadItem(id: String($0), path: "", size: 100 << 10) }  // 100 MB
    let groups = policy.groups(items, jobs: 8)
    XCTAssertEqual(groups.count, 8)
    XCTAssertEqual(groups.joined().map(\.id), items.map(\.id), "order kept, nothing lost")
    // A small push is one pack; a large one is cut at 64 MiB.
    XCTAssertEqual(policy.groups(Array(items.prefix(10)), jobs: 8).count, 1)
    let big = (0..<3000).map { UploadItem(id: String($0), path: "", size: 300 << 10) }  // 900 MB
    let bigGroups = policy.groups(big, jobs: 4)
    XCTAssertEqual(bigGroups.count, 14)
    XCTAssertTrue(bigGroups.allSatisfy { $0.reduce(0) { $0 + $1.size } <= (64 << 20) + (300 << 10) })
    XCTAssertTrue(policy.packs(UploadItem(id: "", path: "", size: (1 << 20) - 1)))
    XCTAssertFalse(policy.packs(UploadItem(id: "", path: "", size: 1 << 20)))
    XCTAssertFalse(PackPolicy.never.packs(UploadItem(id: "", path: "", size: 0)))
    // Empty objects after the last cut join the last pack rather than make one of their own.
    let tail = items.prefix(100) + [UploadItem(id: "e1", path: "", size: 0), UploadItem(id: "e2", path: "", size: 0)]
    let tailGroups = policy.groups(Array(tail), jobs: 2)
    XCTAssertEqual(tailGroups.count, 2)
    XCTAssertEqual(tailGroups.last?.last?.id, "e2")
  }

  func testABuiltPackMatchesItsIndexAndLeavesOutACorruptSource() throws {
    let directory = NSTemporaryDirectory() + "/dv-pack-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory)
    defer { try? FileSystem.removeTree(directory) }
    var items: [UploadItem] = []
    for i in 0..<5 {
      let bytes = Array(repeating: UInt8(i), count: i * 10)
      let path = directory + "/\(i)"
      try FileSystem.writeFile(bytes, to: path)
      items.append(UploadItem(id: id(bytes), path: path, size: Int64(bytes.count)))
    }
    try FileSystem.writeFile([9, 9, 9], to: items[3].path)  // no longer what its id says
    let built = try PackBuilder.build(items, in: directory)
    let pack = try XCTUnwrap(try FileSystem.readFileIfPresent(built.path))
    XCTAssertEqual(built.index.name, id(pack))
    XCTAssertEqual(built.index.packSize, Int64(pack.count))
    XCTAssertEqual(Array(pack.prefix(8)), Array("DVPACK01".utf8))
    XCTAssertEqual(built.corrupt.map(\.item.id), [items[3].id])
    XCTAssertEqual(Set(built.index.entries.map(\.id)), Set(items.map(\.id)).subtracting([items[3].id]))
    for entry in built.index.entries {
      XCTAssertEqual(id(Array(pack[Int(entry.offset)..<Int(entry.end)])), entry.id)
    }
    XCTAssertEqual(try PackIndex.decode(built.index.encoded(), name: built.index.name, url: "x"), built.index)
  }
}
