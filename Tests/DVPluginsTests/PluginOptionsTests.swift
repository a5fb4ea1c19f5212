import DVBasics
import DVPipeline
import XCTest

@testable import DVPlugins

final class PluginOptionsTests: XCTestCase {
  func testBuiltInsAreRegistered() {
    let registry = BuiltInPlugins.registry(searchPath: [])
    XCTAssertTrue(registry.builtInPlugins.contains { $0.kind == "shell" })
  }
}
