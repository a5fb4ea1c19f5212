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
