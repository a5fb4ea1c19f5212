import DVBasics
import Foundation
import XCTest

/// What the bad-input suite (FuzzTests) found through the CLI, one focused test each.
final class BadInputRegressionTests: DVTestCase {
  var outside: String!

  override func setUpWithError() throws {
    try super.setUpWithError()
    try makeWorkspaceWithData()
    outside = root + "-outside"
    try FileSystem.createDirectory(outside)
    try FileSystem.writeAtomically("id,v\n1,a\n", to: outside + "/secret.txt")
    try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: outside)
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeTree(outside)
    try super.tearDownWithError()
  }

  func outsideNames() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? []).sorted() }

  func testAnErrorQuotingANewlineStaysOnOneLine() throws {
    try write("stages.yaml", "stages:\n  s:\n    cmd: x\n    \"a\\nb\": 1\n")
    let result = try dv("status")
    assertFails(result, code: 2, #"stages.yaml:4:5: unknown key 'a\nb' in stage 's'"#)
  }

  func testADirectoryWhereAFileBelongsIsBadInput() throws {
    try FileSystem.createDirectory(root + "/stages.yaml")
    assertFails(try dv("status"), code: 2, "stages.yaml' is a directory where dv expects a file")
    try FileSystem.removeFile(root + "/.pipeline/config.yaml")
    try FileSystem.createDirectory(root + "/.pipeline/config.yaml/x")
    assertFails(try dv("status"), code: 2, "config.yaml' is a directory where dv expects a file")
  }

  func testAddThroughASymlinkedDirectoryIsRefused() throws {
    assertFails(
      try dv("add", "link/secret.txt"), code: 2, "'link/secret.txt' lies under 'link', a symbolic link")
    XCTAssertEqual(outsideNames(), ["secret.txt"])
    XCTAssertEqual(cachedObjects(), [])
  }

  func testCheckoutDoesNotWriteThroughASymlinkedDirectory() throws {
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let hash = try XCTUnwrap(read("data/raw.dv")?.split(separator: "\n").first { $0.hasPrefix("hash: ") })
    try write("data/evil.dv", "version: 1\npath: ../link/stolen\n\(hash)\nkind: dir\n")
    assertFails(try dv("checkout"), code: 2, "'link/stolen' lies under 'link', a symbolic link")
    XCTAssertEqual(outsideNames(), ["secret.txt"])
  }

  func testReproDoesNotDeleteAnOutputThroughASymlinkedDirectory() throws {
    // The file outside has the content of a cached file, so it would count as safe to delete.
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    try FileSystem.writeAtomically("id,v\n1,a\n", to: outside + "/out.csv")
    try write("stages.yaml", "stages:\n  s:\n    cmd: \"true\"\n    outs: [link/out.csv]\n")
    assertFails(try dv("repro"), code: 2, "'link/out.csv' lies under 'link', a symbolic link")
    XCTAssertEqual(outsideNames(), ["out.csv", "secret.txt"])
  }
}
