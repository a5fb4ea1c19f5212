import DVBasics
import XCTest

@testable import DVRemotes

/// The `connect_timeout` and `read_timeout` settings of network remotes.
final class RemoteTimeoutTests: XCTestCase {
  func testTheSettingsApplyToEveryRequest() throws {
    let recorder = ScriptedTransport([.respond(200, [:], []), .respond(200, [:], [])])
    let settings = RemoteSettings(
      name: "s3", url: "s3://bucket", options: ["read_timeout": "2.5", "connect_timeout": "4"])
    let transport = try RemoteTimeouts.transport(recorder, settings: settings)
    _ = try transport.send(HTTPRequest(url: "http://127.0.0.1:1/a"))
    _ = try transport.send(HTTPRequest(url: "http://127.0.0.1:1/b", timeouts: HTTPTimeouts(connect: 9, stall: 9)))
    let timeouts = recorder.requests.withLock { $0.map(\.timeouts) }
    XCTAssertEqual(timeouts, Array(repeating: HTTPTimeouts(connect: 4, total: nil, stall: 2.5), count: 2))
  }

  func testWithoutTheSettingsRequestsKeepTheirOwn() throws {
    let recorder = ScriptedTransport([.respond(200, [:], [])])
    let transport = try RemoteTimeouts.transport(recorder, settings: RemoteSettings(name: "s3", url: "s3://bucket"))
    _ = try transport.send(HTTPRequest(url: "http://127.0.0.1:1/a"))
    XCTAssertEqual(recorder.requests.withLock { $0.map(\.timeouts) }, [HTTPTimeouts()])
  }

  func testBadValuesAreRefusedAsBadInput() {
    for value in ["0", "-1", "soon", "", "inf", "100000"] {
      XCTAssertThrowsError(try RemoteTimeouts.seconds(value, remote: "s3", key: "read_timeout")) { error in
        XCTAssertEqual(
          "\(error)", "remote 's3': setting 'read_timeout' is '\(value)'; give a number of seconds from 1 to 86400")
        XCTAssertEqual((error as? DVError)?.kind, .badInput)
      }
    }
    XCTAssertThrowsError(
      try RemoteFactory.make(
        RemoteSettings(name: "g", url: "gs://bucket", options: ["connect_timeout": "0.5"]),
        environment: ["STORAGE_EMULATOR_HOST": "127.0.0.1:1"]))
    XCTAssertNoThrow(
      try RemoteFactory.make(
        RemoteSettings(name: "g", url: "gs://bucket", options: ["connect_timeout": "5", "read_timeout": "1"]),
        environment: ["STORAGE_EMULATOR_HOST": "127.0.0.1:1"]))
  }
}
