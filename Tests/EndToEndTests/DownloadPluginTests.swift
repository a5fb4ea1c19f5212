import DVBasics
import Foundation
import XCTest

/// `plugin: download` through the built `dv`, against the test HTTP server that `scripts/test`
/// starts (DV_TEST_HTTP_URL serves the directory DV_TEST_HTTP_ROOT).
final class DownloadPluginTests: DVTestCase {
  var server: String!
  var served: String!
  /// A file name of this test's own on the server.
  var file: String!

  override func setUpWithError() throws {
    try super.setUpWithError()
    let environment = ProcessInfo.processInfo.environment
    guard let url = environment["DV_TEST_HTTP_URL"], let root = environment["DV_TEST_HTTP_ROOT"] else {
      throw XCTSkip("no test HTTP server: run scripts/test, which starts one and sets DV_TEST_HTTP_URL")
    }
    server = url
    served = root
    file = "e2e-\(UUID().uuidString).jsonl"
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
  }

  override func tearDownWithError() throws {
    if let served, let file { try? FileSystem.removeFile(served + "/" + file) }
    try super.tearDownWithError()
  }

  /// Puts `lines` numbered JSON lines on the server; returns the text.
  @discardableResult
  func serve(lines: Int, tag: String = "a") throws -> String {
    let text = (0..<lines).map { "{\"id\": \($0), \"tag\": \"\(tag)\"}\n" }.joined()
    try FileSystem.writeAtomically(text, to: served + "/" + file)
    return text
  }

  func pipeline(_ with: String) throws {
    try write(
      "stages.yaml", "stages:\n  fetch:\n    plugin: download\n    with: \(with)\n    outs: [data/raw/q.jsonl]\n")
  }

  var downloaded: String? { read("data/raw/q.jsonl") }

  var partialFiles: [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: root + "/.pipeline/tmp/downloads")) ?? []
  }

  func sha256(_ text: String) throws -> String {
    try FileSystem.writeAtomically(text, to: root + "/hash-me")
    defer { try? FileSystem.removeFile(root + "/hash-me") }
    return String(try run("/usr/bin/env", ["sha256sum", root + "/hash-me"]).stdout.prefix(64))
  }

  func testADownloadIsThenUpToDate() throws {
    let text = try serve(lines: 1000)
    try pipeline("{url: '\(server!)/\(file!)'}")
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertEqual(downloaded, text)
    XCTAssertTrue(
      repro.stderr.contains("downloaded 23.3 KiB from \(server!)/\(file!) to data/raw/q.jsonl"), repro.stderr)
    XCTAssertTrue(read("stages.lock")?.contains("source: \"etag ") == true, read("stages.lock") ?? "")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertEqual(try dv("status", "--check").code, 0)
    XCTAssertFalse(try dv("repro").stdout.contains("Running stage"))
  }

  func testAMatchingSHA256IsAccepted() throws {
    let text = try serve(lines: 10)
    try pipeline("{url: '\(server!)/\(file!)', sha256: \(try sha256(text))}")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(downloaded, text)
  }

  func testASHA256MismatchFailsAndWritesNothing() throws {
    let text = try serve(lines: 10)
    let wrong = String(repeating: "0", count: 64)
    try pipeline("{url: '\(server!)/\(file!)', sha256: \(wrong)}")
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 1)
    XCTAssertTrue(
      (repro.stdout + repro.stderr).contains(
        "\(server!)/\(file!): sha256 mismatch: expected \(wrong), got \(try sha256(text))"), repro.stdout + repro.stderr
    )
    XCTAssertFalse(exists("data/raw/q.jsonl"))
    XCTAssertEqual(partialFiles, [])
  }

  func testNotFound() throws {
    try pipeline("{url: '\(server!)/missing-\(file!)?key=secret'}")
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 1)
    let output = repro.stdout + repro.stderr
    XCTAssertTrue(output.contains("\(server!)/missing-\(file!): not found (HTTP 404); check the url"), output)
    XCTAssertFalse(output.contains("secret"))
    XCTAssertFalse(exists("data/raw/q.jsonl"))
  }

  func testAFlakyServerIsRetried() throws {
    let text = try serve(lines: 100)
    try pipeline("{url: '\(server!)/flaky/2/\(file!)'}")
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertEqual(downloaded, text)
    XCTAssertTrue(
      repro.stderr.contains("HTTP 503 Service Unavailable; retrying in 0.0 s (attempt 3 of 4)"), repro.stderr)
  }

  func testADroppedConnectionResumesWithARange() throws {
    let text = try serve(lines: 20_000)
    try pipeline("{url: '\(server!)/drop/1/\(file!)'}")
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertEqual(downloaded, text)
    XCTAssertTrue(repro.stderr.contains("the connection was lost"), repro.stderr)
    XCTAssertTrue(repro.stderr.contains("resuming at "), repro.stderr)
    let log = try run("/usr/bin/env", ["curl", "-s", "\(server!)/_requests"]).stdout
    let ranged = log.split(separator: "\n").filter { $0.contains("/drop/1/\(file!)") && $0.contains("\"status\": 206") }
    XCTAssertEqual(ranged.count, 1, log)
    XCTAssertTrue(ranged.first?.contains("\"range\": \"bytes=\(text.utf8.count / 2)-\"") == true, log)
  }

  func testADroppedConnectionWithoutRetriesLeavesNoOutputAndResumesOnTheNextRun() throws {
    let text = try serve(lines: 20_000)
    try pipeline("{url: '\(server!)/drop/1/\(file!)', retries: 0}")
    let first = try dv("repro")
    XCTAssertEqual(first.code, 1)
    XCTAssertTrue((first.stdout + first.stderr).contains("rerun `dv repro` to resume"), first.stdout + first.stderr)
    XCTAssertFalse(exists("data/raw/q.jsonl"))
    XCTAssertEqual(partialFiles.count, 2, "\(partialFiles)")
    let second = try dv("repro")
    XCTAssertEqual(second.code, 0, second.stderr)
    XCTAssertTrue(second.stderr.contains("resuming at "), second.stderr)
    XCTAssertEqual(downloaded, text)
    XCTAssertEqual(partialFiles, [])
  }

  func testAFileURL() throws {
    try write("elsewhere/source.jsonl", "{\"id\": 1}\n")
    try pipeline("{url: 'file://\(root!)/elsewhere/source.jsonl'}")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(downloaded, "{\"id\": 1}\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    try write("elsewhere/source.jsonl", "{\"id\": 2}\n")
    XCTAssertTrue(try dv("status").stdout.contains("fetch: changed source: file size"))
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(downloaded, "{\"id\": 2}\n")
  }

  func testANewETagMakesTheStageStaleAndReproDownloadsAgain() throws {
    try serve(lines: 10, tag: "old")
    try pipeline("{url: '\(server!)/\(file!)'}")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")

    let changed = try serve(lines: 12, tag: "new")
    let status = try dv("status")
    XCTAssertTrue(status.stdout.contains("fetch: changed source: etag "), status.stdout)
    XCTAssertEqual(try dv("status", "--check").code, 1)
    let repro = try dv("repro")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertTrue(repro.stdout.contains("Running stage 'fetch'"), repro.stdout)
    XCTAssertEqual(downloaded, changed)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testASourceThatCannotBeReachedDoesNotMakeTheStageStale() throws {
    try serve(lines: 10)
    try pipeline("{url: '\(server!)/\(file!)'}")
    XCTAssertEqual(try dv("repro").code, 0)
    // The HEAD fails (here: the file is gone); `dv status` cannot learn a version and trusts the lock.
    try FileSystem.removeFile(served + "/" + file)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testBadConfigurationExitsWithTwoAndItsPlace() throws {
    try pipeline("{url: 'ftp://example.org/q.jsonl'}")
    assertFails(
      try dv("status"), code: 2,
      "stages.yaml:4:17: the url 'ftp://example.org/q.jsonl' of plugin 'download' must start with http://, https:// or file://"
    )
    try pipeline("{url: '\(server!)/\(file!)', sha256: 1234}")
    assertFails(try dv("repro"), code: 2, "stages.yaml:4:")
    assertFails(try dv("repro"), code: 2, "option 'sha256' of plugin 'download' must be 64 hexadecimal digits")
    try write("stages.yaml", "stages:\n  fetch:\n    plugin: download\n    with: {url: 'https://example.org/x'}\n")
    assertFails(try dv("dag"), code: 2, "stages.yaml:4:11: plugin 'download' needs an output: declare it in outs")
    XCTAssertFalse(exists("data/raw/q.jsonl"))
  }
}
