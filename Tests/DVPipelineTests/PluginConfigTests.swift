import DVBasics
import XCTest

@testable import DVPipeline

/// Plugin options are checked where they were written: unknown option, wrong type, missing option.
final class PluginConfigTests: XCTestCase {
  let specs = [
    OptionSpec("input", .string, required: true), OptionSpec("keys", .stringList), OptionSpec("n", .integer),
    OptionSpec("ratios", .numberMap), OptionSpec("mode", .string, allowed: ["fail", "warn"]),
    OptionSpec("trim", .boolean),
  ]

  func config(_ yaml: String) throws -> PluginConfig {
    let text = "stages:\n  s:\n    plugin: thing\n    with:\n" + yaml + "    outs: [o]\n"
    let pipeline = try PipelineLoader(workspaceRoot: "/nonexistent").load(text: text)
    let stage = pipeline.stages[0]
    guard case .plugin(_, let with) = stage.action else { throw XCTSkip("not a plugin stage") }
    return PluginConfig(
      value: with, location: stage.location, locations: stage.configLocations, wdir: stage.wdir)
  }

  func message(_ yaml: String) -> String {
    do {
      try config(yaml).check(plugin: "thing", options: specs)
      return "ok"
    } catch {
      return "\(error)"
    }
  }

  func testErrorsNameTheOptionsPlace() throws {
    XCTAssertEqual(message("      input: a.csv\n      keys: [a, b]\n      ratios: {train: 0.8, test: 0.2}\n"), "ok")
    XCTAssertEqual(
      message("      input: a.csv\n      colour: red\n"),
      "stages.yaml:6:15: unknown option 'colour' for plugin 'thing' (it takes: input, keys, n, ratios, mode, trim)")
    XCTAssertEqual(
      message("      input: a.csv\n      n: many\n"),
      "stages.yaml:6:10: option 'n' of plugin 'thing' must be an integer")
    XCTAssertEqual(
      message("      input: a.csv\n      ratios: {train: big}\n"),
      "stages.yaml:6:23: 'ratios.train' of plugin 'thing' must be a number")
    XCTAssertEqual(
      message("      input: a.csv\n      keys:\n        - a\n        - [b]\n"),
      "stages.yaml:8:11: each entry of 'keys' must be a string")
    XCTAssertEqual(
      message("      input: a.csv\n      mode: loud\n"),
      "stages.yaml:6:13: option 'mode' of plugin 'thing' is 'loud'; use one of: fail, warn")
    XCTAssertEqual(message("      keys: a\n"), "stages.yaml:5:7: plugin 'thing' needs option 'input' (a string)")
  }

  func testTypedAccessorsAndPaths() throws {
    let c = try config(
      "      input: data/a.csv\n      keys: k\n      n: 4\n      trim: yes\n      ratios: {a: 0.5, b: 0.5}\n")
    try c.check(plugin: "thing", options: specs)
    XCTAssertEqual(try c.path("input")?.value, "data/a.csv")
    XCTAssertEqual(c.stringList("keys"), ["k"])
    XCTAssertEqual(c.integer("n"), 4)
    XCTAssertEqual(c.boolean("trim"), true)
    XCTAssertEqual(c.numberMap("ratios")?.map(\.0), ["a", "b"])
    let escaping = try config("      input: ../outside.csv\n")
    XCTAssertThrowsError(try escaping.path("input")) { error in
      XCTAssertEqual(
        "\(error)", "stages.yaml:5:14: '../outside.csv' is absolute or leaves the workspace; use a path inside it")
    }
  }

  func testCanonicalFormIgnoresKeyOrder() {
    XCTAssertEqual(
      YAMLText.canonical(.map([("b", .scalar("1")), ("a", .map([("y", .scalar("2")), ("x", .null)]))])),
      "{a: {x: null, y: 2}, b: 1}")
  }
}
