import DVBasics
import DVStorage
import Foundation
import XCTest

@testable import DVPipeline
@testable import DVWorkspace

final class PointerFileTests: XCTestCase {
  let location = RelativePath(validating: "data/raw.dv")!
  let hash = "sha256:" + String(repeating: "ab", count: 32)

  func testRoundTrip() throws {
    let pointer = try PointerFile.parse(
      "version: 1\npath: raw\nhash: \(hash)\nkind: dir\nsize: 10\nfiles: 2\n", location: location)
    XCTAssertEqual(pointer.path.value, "data/raw")
    XCTAssertEqual(pointer.kind, .dir)
    XCTAssertEqual(pointer.files, 2)
    XCTAssertEqual(try PointerFile.parse(pointer.text, location: location), pointer)
  }

  func testErrorsNameFileLineAndColumn() {
    func message(_ text: String) -> String {
      do {
        _ = try PointerFile.parse(text, location: location)
        return "no error"
      } catch {
        XCTAssertEqual((error as? DVError)?.kind, .badInput)
        return "\(error)"
      }
    }
    XCTAssertTrue(message("version: 1\npath: raw\nhsh: x\n").hasPrefix("data/raw.dv:3:1: unknown key 'hsh'"))
    XCTAssertTrue(
      message("version: 2\npath: raw\nhash: \(hash)\n").hasPrefix("data/raw.dv:1:10: unsupported version 2"))
    XCTAssertTrue(message("version: 1\npath: ../../etc\nhash: \(hash)\n").hasPrefix("data/raw.dv:2:7:"))
    XCTAssertTrue(message("version: 1\npath: raw\nhash: sha256:nothex\n").hasPrefix("data/raw.dv:3:7:"))
    XCTAssertTrue(message("version: 1\npath: [unclosed\n").hasPrefix("data/raw.dv:"))
    XCTAssertTrue(message("path: raw\n").contains("missing 'version'"))
  }

  func testNamesThatNeedQuotingAreQuoted() throws {
    for name in ["true", "123", "with space", "colon: yes", "#hash", "quote\"d"] {
      let text = "version: 1\npath: \(YAMLText.scalar(name))\nhash: \(hash)\n"
      let pointer = try PointerFile.parse(text, location: RelativePath(validating: "d/x.dv")!)
      XCTAssertEqual(pointer.path.basename, name)
    }
  }
}

final class ConfigTests: XCTestCase {
  func load(_ text: String) throws -> WorkspaceConfig {
    let dir = NSTemporaryDirectory() + "dv-config-\(UUID().uuidString)"
    try FileSystem.createDirectory(dir)
    defer { try? FileSystem.removeTree(dir) }
    try FileSystem.writeAtomically(text, to: dir + "/config.yaml")
    return try WorkspaceConfig.load(pipelineDirectory: dir)
  }

  func testDefaultsAndCacheTypes() throws {
    XCTAssertEqual(try load(WorkspaceConfig.initialText(noSCM: true)).cacheTypes, [.reflink, .copy])
    XCTAssertEqual(try load("version: 1\ncache:\n  type: [hardlink, copy]\n").cacheTypes, [.hardlink, .copy])
    XCTAssertEqual(try load("version: 1\ncache:\n  type: symlink\n").cacheTypes, [.symlink])
    XCTAssertTrue(try load("version: 1\ncore:\n  no_scm: true\n").noSCM)
  }

  func testBadSettingsAreLocated() {
    XCTAssertThrowsError(try load("version: 1\ncache:\n  type: [teleport]\n")) { error in
      XCTAssertTrue("\(error)".hasPrefix(".pipeline/config.yaml:3:10: unknown cache.type 'teleport'"), "\(error)")
    }
    XCTAssertThrowsError(try load("version: 1\ncahce: {}\n")) { error in
      XCTAssertTrue("\(error)".hasPrefix(".pipeline/config.yaml:2:1: unknown key 'cahce'"), "\(error)")
    }
  }
}
