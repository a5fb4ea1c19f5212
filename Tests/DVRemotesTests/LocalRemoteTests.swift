import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

final class LocalRemoteTests: XCTestCase {
  var directory: String!

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "dv-local-remote-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory + "/remote")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  func testUploadListDownloadDelete() throws {
    let remote = LocalRemote(root: directory + "/remote")
    try FileSystem.writeAtomically(Array("hello".utf8), to: directory + "/source")
    var reported: Int64 = 0
    try remote.upload(from: directory + "/source", size: 5, sha256: nil, to: "files/sha256/ab/cdef") { reported += $0 }
    XCTAssertEqual(reported, 5)
    XCTAssertTrue(try remote.exists("files/sha256/ab/cdef"))
    XCTAssertFalse(try remote.exists("files/sha256/ab/nothing"))
    // A leftover of an interrupted upload is never listed.
    try FileSystem.writeAtomically(Array("hel".utf8), to: directory + "/remote/files/sha256/ab/.dvtmp.cdef.1.2")
    try remote.upload(from: directory + "/source", size: 5, sha256: nil, to: "runs/X.json") { _ in }
    var listed: [String: Int64] = [:]
    try remote.list(prefix: "files/sha256/") { key, size in
      listed[key] = size
      return true
    }
    XCTAssertEqual(listed, ["files/sha256/ab/cdef": 5])
    var all: [String] = []
    try remote.list(prefix: "") { key, _ in
      all.append(key)
      return true
    }
    XCTAssertEqual(Set(all), ["files/sha256/ab/cdef", "runs/X.json"])

    try remote.download("files/sha256/ab/cdef", to: directory + "/copy") { _ in }
    XCTAssertEqual(try FileSystem.readTextIfPresent(directory + "/copy"), "hello")
    XCTAssertThrowsError(try remote.download("files/sha256/ab/none", to: directory + "/copy") { _ in }) {
      guard case .notFound? = $0 as? RemoteError else { return XCTFail("\($0)") }
    }
    try remote.delete("files/sha256/ab/cdef")
    try remote.delete("files/sha256/ab/cdef")
    XCTAssertFalse(try remote.exists("files/sha256/ab/cdef"))
  }

  func testAFailedUploadLeavesNothingUnderTheName() throws {
    let remote = LocalRemote(root: directory + "/remote")
    try FileSystem.writeAtomically(Array("hello".utf8), to: directory + "/source")
    FailPoint.arm("local-remote:before-rename")
    defer { FailPoint.arm(nil) }
    XCTAssertThrowsError(try remote.upload(from: directory + "/source", size: 5, sha256: nil, to: "a/b") { _ in })
    XCTAssertFalse(FileSystem.exists(directory + "/remote/a/b"))
    XCTAssertEqual(try FileSystem.listDirectory(directory + "/remote/a").count, 0, "the temporary file is removed")
  }

  func testReadStreamsTheWholeObjectOrARange() throws {
    let remote = LocalRemote(root: directory + "/remote")
    // Over 1 MiB, so that a whole read takes more than one piece.
    let bytes = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
    try FileSystem.writeAtomically(bytes, to: directory + "/source")
    try remote.upload(from: directory + "/source", size: Int64(bytes.count), sha256: nil, to: "packs/p1") { _ in }

    let whole = CollectingObjectSink()
    var reported: Int64 = 0
    try remote.read("packs/p1", range: nil, into: whole) { reported += $0 }
    XCTAssertEqual(whole.offsets, [0])
    XCTAssertTrue(whole.bytes == bytes, "the whole object comes back byte for byte")
    XCTAssertEqual(reported, Int64(bytes.count))

    let middle = CollectingObjectSink()
    reported = 0
    try remote.read("packs/p1", range: 1_000_000..<2_500_001, into: middle) { reported += $0 }
    XCTAssertEqual(middle.offsets, [1_000_000])
    XCTAssertTrue(middle.bytes == Array(bytes[1_000_000..<2_500_001]))
    XCTAssertEqual(reported, 1_500_001)

    let tail = CollectingObjectSink()
    try remote.read("packs/p1", range: Int64(bytes.count - 5)..<Int64(bytes.count), into: tail) { _ in }
    XCTAssertEqual(tail.bytes, Array(bytes.suffix(5)))

    let empty = CollectingObjectSink()
    try remote.read("packs/p1", range: 42..<42, into: empty) { _ in XCTFail("nothing to report") }
    XCTAssertEqual(empty.offsets, [42])
    XCTAssertEqual(empty.bytes, [])
  }

  func testReadingPastTheEndOrAnAbsentKeyFails() throws {
    let remote = LocalRemote(root: directory + "/remote")
    try FileSystem.writeAtomically(Array("0123456789".utf8), to: directory + "/source")
    try remote.upload(from: directory + "/source", size: 10, sha256: nil, to: "packs/small") { _ in }
    for range: Range<Int64> in [5..<11, 10..<12, 100..<200] {
      let sink = CollectingObjectSink()
      XCTAssertThrowsError(try remote.read("packs/small", range: range, into: sink) { _ in }, "\(range)") { error in
        guard case RemoteError.server(let url, 416, let message) = error else { return XCTFail("\(error)") }
        XCTAssertEqual(url, directory + "/remote/packs/small")
        XCTAssertTrue(message.contains("lies outside the object"), message)
        XCTAssertFalse("\(error)".contains("\n"))
      }
      XCTAssertEqual(sink.offsets, [], "nothing began")
    }
    XCTAssertThrowsError(try remote.read("packs/absent", range: 0..<4, into: CollectingObjectSink()) { _ in }) {
      guard case RemoteError.notFound(let url)? = $0 as? RemoteError else { return XCTFail("\($0)") }
      XCTAssertEqual(url, directory + "/remote/packs/absent")
    }
    XCTAssertThrowsError(try remote.read("packs", range: nil, into: CollectingObjectSink()) { _ in }) {
      guard case .notFound? = $0 as? RemoteError else { return XCTFail("a directory is no object: \($0)") }
    }
  }

  func testTheFactoryResolvesURLs() throws {
    let relative = try RemoteFactory.make(
      RemoteSettings(name: "x", url: "../store"), environment: [:], relativeTo: "/work/ws")
    XCTAssertEqual((relative as? LocalRemote)?.root, "/work/store")
    let file = try RemoteFactory.make(RemoteSettings(name: "x", url: "file:///srv/dv"), environment: [:])
    XCTAssertEqual((file as? LocalRemote)?.root, "/srv/dv")
    XCTAssertThrowsError(try RemoteFactory.make(RemoteSettings(name: "x", url: "ftp://host/x"), environment: [:])) {
      XCTAssertEqual(($0 as? RemoteError)?.kind, .badInput)
    }
    XCTAssertThrowsError(
      try RemoteFactory.make(RemoteSettings(name: "x", url: "/srv", options: ["region": "eu"]), environment: [:]))
  }
}
