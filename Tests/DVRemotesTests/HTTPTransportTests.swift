import XCTest

@testable import DVRemotes

final class HTTPTransportTests: XCTestCase {
  func testModuleLoads() {}
}
