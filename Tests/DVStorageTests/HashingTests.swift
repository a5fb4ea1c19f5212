import DVBasics
import XCTest

@testable import DVStorage

final class HashingTests: StorageTestCase {
  /// Test vectors of FIPS 180-2 (SHA-256), appendix B.
  func testStandardVectors() {
    XCTAssertEqual(
      SHA256Hasher.hash(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      SHA256Hasher.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex,
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    XCTAssertEqual(SHA256Hasher.hash([]).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    var hasher = SHA256Hasher()
    let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
    for _ in 0..<1000 { hasher.update(chunk) }
    XCTAssertEqual(hasher.finalize().hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  func testStreamingFileHashEqualsHashOfBytesAcrossManyReads() throws {
    let content = String(repeating: "0123456789abcdef", count: 10_000)  // 160 KB, many 4 KB reads
    let path = try write("big.bin", content)
    let buffer = IOBuffer(size: 4096)
    let (id, size) = try SHA256Hasher.hashFile(path, buffer: buffer.bytes)
    XCTAssertEqual(size, Int64(content.utf8.count))
    XCTAssertEqual(id, SHA256Hasher.hash(Array(content.utf8)))
  }

  func testObjectIDTextForm() throws {
    let id = SHA256Hasher.hash(Array("abc".utf8))
    XCTAssertEqual(id.description, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(ObjectID(id.description), id)
    XCTAssertNil(ObjectID("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"))
    XCTAssertNil(ObjectID("md5:ba7816bf8f01cfea414140de5dae2223"))
    XCTAssertNil(ObjectID("sha256:abc"))
  }

  func testIdsOrderAsTheirHexDoes() {
    var generator = SystemRandomNumberGenerator()
    var ids = (0..<500).map { _ in ObjectID(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
    // Ids that differ only in a late byte, and equal ones.
    let base = [UInt8](repeating: 7, count: 31)
    ids += [ObjectID(bytes: base + [1]), ObjectID(bytes: base + [2]), ObjectID(bytes: base + [2])]
    XCTAssertEqual(ids.sorted().map(\.hex), ids.map(\.hex).sorted())
    XCTAssertFalse(ObjectID(bytes: base + [2]) < ObjectID(bytes: base + [2]))
  }
}
