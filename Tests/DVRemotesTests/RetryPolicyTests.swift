import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// A transport that plays a script of outcomes, one per request, and records the requests.
final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
  enum Outcome {
    case respond(Int, HTTPHeaders, [UInt8])
    case fail(HTTPError)
  }

  private let script: Locked<[Outcome]>
  let requests = Locked<[HTTPRequest]>([])

  init(_ script: [Outcome]) { self.script = Locked(script) }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    requests.withLock { $0.append(request) }
    guard let next = script.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
      throw HTTPError.other(url: request.url, detail: "the script has no more outcomes")
    }
    switch next {
    case .fail(let error): throw error
    case .respond(let status, let headers, let body):
      let response = HTTPResponse(status: status, headers: headers, errorBody: status < 300 ? [] : body)
      if response.isSuccess {
        try sink?.begin(response)
        try body.withUnsafeBytes { try sink?.write($0) }
      }
      return response
    }
  }
}

final class RetryPolicyTests: XCTestCase {
  /// The waits a policy asked for, instead of sleeping.
  let waits = Locked<[Double]>([])

  func policy(retries: Int = 3) -> RetryPolicy {
    RetryPolicy(
      retries: retries, baseDelay: 1, maxDelay: 60, sleep: { [waits] seconds in waits.withLock { $0.append(seconds) } },
      random: { 0.5 })
  }

  func run(_ transport: ScriptedTransport, retries: Int = 3) throws -> HTTPResponse {
    try policy(retries: retries).run { _ in try transport.send(HTTPRequest(url: "http://example.invalid/x")) }
  }

  func testA503IsRetriedUntilSuccess() throws {
    let transport = ScriptedTransport([.respond(503, [:], []), .respond(503, [:], []), .respond(200, [:], [1])])
    let response = try run(transport)
    XCTAssertEqual(response.status, 200)
    XCTAssertEqual(transport.requests.withLock { $0.count }, 3)
    // Half the backoff fixed, half random (0.5 here): 0.75 s, then 1.5 s.
    XCTAssertEqual(waits.withLock { $0 }, [0.75, 1.5])
  }

  func testRetryAfterIsHonoured() throws {
    let transport = ScriptedTransport([.respond(429, ["Retry-After": "7"], []), .respond(200, [:], [])])
    XCTAssertEqual(try run(transport).status, 200)
    XCTAssertEqual(waits.withLock { $0 }, [7])
  }

  func testRetryAfterAsAnHTTPDateAndItsCap() throws {
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    let later = HTTPDate.format(now.addingTimeInterval(30))
    XCTAssertEqual(RetryPolicy.retryAfter(["Retry-After": later], now: now), 30)
    XCTAssertNil(RetryPolicy.retryAfter(["Retry-After": "soon"], now: now))
    XCTAssertEqual(policy().delay(beforeRetry: 1, retryAfter: 3600), 60)
  }

  func testA404IsNotRetried() throws {
    let transport = ScriptedTransport([.respond(404, [:], Array("gone".utf8)), .respond(200, [:], [])])
    let response = try run(transport)
    XCTAssertEqual(response.status, 404)
    XCTAssertEqual(response.errorBody, Array("gone".utf8))
    XCTAssertEqual(transport.requests.withLock { $0.count }, 1)
    XCTAssertEqual(waits.withLock { $0 }, [])
  }

  func testTheLastResponseIsReturnedWhenRetriesRunOut() throws {
    let transport = ScriptedTransport(Array(repeating: .respond(500, [:], []), count: 5))
    XCTAssertEqual(try run(transport, retries: 2).status, 500)
    XCTAssertEqual(transport.requests.withLock { $0.count }, 3)
  }

  func testConnectionErrorsAreRetriedAndTLSErrorsAreNot() throws {
    let lost = HTTPError.connectionLost(url: "http://example.invalid/x", detail: "reset")
    let flaky = ScriptedTransport([.fail(lost), .fail(.timedOut(url: "u", detail: "t")), .respond(200, [:], [])])
    XCTAssertEqual(try run(flaky).status, 200)
    XCTAssertEqual(flaky.requests.withLock { $0.count }, 3)

    let tls = ScriptedTransport([.fail(.tls(url: "u", detail: "bad certificate")), .respond(200, [:], [])])
    XCTAssertThrowsError(try run(tls)) { error in
      guard case HTTPError.tls? = error as? HTTPError else { return XCTFail("\(error)") }
    }
    XCTAssertEqual(tls.requests.withLock { $0.count }, 1)
  }

  func testTheLastErrorIsThrownWhenRetriesRunOut() throws {
    let refused = HTTPError.cannotConnect(url: "u", detail: "refused")
    let transport = ScriptedTransport(Array(repeating: .fail(refused), count: 3))
    XCTAssertThrowsError(try run(transport, retries: 1)) { error in
      guard case HTTPError.cannotConnect? = error as? HTTPError else { return XCTFail("\(error)") }
    }
    XCTAssertEqual(transport.requests.withLock { $0.count }, 2)
  }

  func testBackoffDoublesWithJitterUnderTheCap() {
    var policy = RetryPolicy(retries: 10, baseDelay: 1, maxDelay: 10, random: { 0 })
    XCTAssertEqual((1...5).map { policy.delay(beforeRetry: $0, retryAfter: nil) }, [0.5, 1, 2, 4, 5])
    policy.random = { 1 }
    XCTAssertEqual((1...5).map { policy.delay(beforeRetry: $0, retryAfter: nil) }, [1, 2, 4, 8, 10])
  }

  func testRetryableStatuses() {
    XCTAssertEqual([408, 429, 500, 502, 503, 504].filter(RetryPolicy.isRetryable), [408, 429, 500, 502, 503, 504])
    XCTAssertEqual([400, 401, 403, 404, 416, 501, 505].filter(RetryPolicy.isRetryable), [])
  }

  func testEachRetryIsAnnounced() throws {
    let transport = ScriptedTransport([.respond(503, ["Retry-After": "0"], []), .respond(200, [:], [])])
    var events: [RetryEvent] = []
    _ = try policy().run({ _ in try transport.send(HTTPRequest(url: "u")) }, willRetry: { events.append($0) })
    XCTAssertEqual(events.map(\.reason), ["HTTP 503"])
    XCTAssertEqual(events.map(\.failedAttempt), [1])
    XCTAssertEqual(events.map(\.attempts), [4])
  }
}
