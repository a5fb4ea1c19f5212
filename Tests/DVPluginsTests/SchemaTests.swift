import DVBasics
import DVPipeline
import XCTest

@testable import DVPlugins

final class SchemaTests: XCTestCase {
  func testParsesEveryRule() throws {
    let schema = try Schema(
      text: """
        columns:
          id: {type: int, required: true, unique: true}
          question: {type: string, nullable: false, min_length: 3, max_length: 200}
          complexity: {type: string, allowed: [easy, medium, hard]}
          score: {type: float, min: 0, max: 1, nullable: true}
          sql: {type: string, regex: "^SELECT "}
          flag: bool
          level: {type: int, allowed: [1, 2, 3]}
          note: {required: false}
        rows: {min: 1, max: 1000000}
        strict: true
        """, name: "schemas/q.yaml")
    XCTAssertEqual(
      schema.columns.map(\.name), ["id", "question", "complexity", "score", "sql", "flag", "level", "note"])
    let id = schema.columns[0]
    XCTAssertEqual(id.type, .int)
    XCTAssertTrue(id.required)
    XCTAssertTrue(id.unique)
    XCTAssertFalse(id.nullable)
    XCTAssertEqual(schema.columns[1].minLength, 3)
    XCTAssertEqual(schema.columns[1].maxLength, 200)
    XCTAssertEqual(schema.columns[2].allowedTexts, [Array("easy".utf8), Array("medium".utf8), Array("hard".utf8)])
    XCTAssertEqual(schema.columns[3].min, 0)
    XCTAssertEqual(schema.columns[3].max, 1)
    XCTAssertTrue(schema.columns[3].nullable)
    XCTAssertEqual(schema.columns[4].regex?.pattern, "^SELECT ")
    XCTAssertEqual(schema.columns[5].type, .bool)
    XCTAssertEqual(schema.columns[6].allowedNumbers, [1, 2, 3])
    XCTAssertNil(schema.columns[7].type)
    XCTAssertFalse(schema.columns[7].required)
    XCTAssertEqual(schema.minRows, 1)
    XCTAssertEqual(schema.maxRows, 1_000_000)
    XCTAssertTrue(schema.strict)
  }

  func testDefaults() throws {
    let schema = try Schema(text: "columns:\n  a: {}\n", name: "s.yaml")
    XCTAssertTrue(schema.columns[0].required)
    XCTAssertFalse(schema.columns[0].nullable)
    XCTAssertFalse(schema.columns[0].unique)
    XCTAssertFalse(schema.strict)
    XCTAssertNil(schema.minRows)
  }

  func testRegexIsPOSIXExtended() throws {
    let regex = try POSIXRegex("^[a-z]+(-[0-9]{2})?$")
    var scratch: [CChar] = []
    for (text, expected) in [("abc", true), ("abc-12", true), ("abc-1", false), ("ABC", false), ("", false)] {
      var copy = text
      let matched = copy.withUTF8 { regex.matches(UnsafeRawBufferPointer($0), scratch: &scratch) }
      XCTAssertEqual(matched, expected, text)
    }
  }

  func testPlainTextPatternsMatchAsRegexecDoes() throws {
    let patterns = ["^SELECT ", "SELECT", "ab$", "^abc$", "a\\.b", "", "^$", "^", "$", "b\\$", "^a\\^"]
    let inputs = [
      "SELECT 1", "select", "x SELECT", "ab", "cab", "abc", "abcd", "a.b", "axb", "", "b$", "a^", "SELECTSELECT",
    ]
    var scratch: [CChar] = []
    for pattern in patterns {
      let regex = try POSIXRegex(pattern)
      for input in inputs {
        var copy = input
        let fast = copy.withUTF8 { regex.matches(UnsafeRawBufferPointer($0), scratch: &scratch) }
        let slow = input.withCString { regex.matches($0) }
        XCTAssertEqual(fast, slow, "'\(pattern)' on '\(input)'")
      }
    }
  }

  private func assertError(
    _ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertThrowsError(try Schema(text: text, name: "schemas/x.yaml"), file: file, line: line) { error in
      XCTAssertTrue(error is FileFormatError, "\(error)", file: file, line: line)
      XCTAssertTrue("\(error)".hasPrefix(expected), "got: \(error)", file: file, line: line)
    }
  }

  func testErrorsNameFileLineAndColumn() {
    assertError("", "schemas/x.yaml:1:1: the file is empty")
    assertError("columns: [a, b]\n", "schemas/x.yaml:1:10: 'columns' must be a mapping")
    assertError("rows: {min: 1}\n", "schemas/x.yaml:1:1: a schema needs 'columns'")
    assertError("columns:\n  a: int\ncolumn: {}\n", "schemas/x.yaml:3:1: unknown key 'column' in a schema")
    assertError(
      "columns:\n  a: {type: int, nulable: true}\n", "schemas/x.yaml:2:18: unknown key 'nulable' in column 'a'")
    assertError("columns:\n  a: {type: integer}\n", "schemas/x.yaml:2:13: unknown type 'integer' for column 'a'")
    assertError("columns:\n  a: text\n", "schemas/x.yaml:2:6: unknown type 'text' for column 'a'")
    assertError(
      "columns:\n  a: {type: int, required: maybe}\n", "schemas/x.yaml:2:28: 'required' must be true or false")
    assertError("columns:\n  a: {type: int, nullable: 3}\n", "schemas/x.yaml:2:28: 'nullable' must be true or false")
    assertError("columns:\n  a: {type: int, unique: []}\n", "schemas/x.yaml:2:26: 'unique' must be true or false")
    assertError(
      "columns:\n  a: {type: int, min: 5, max: 1}\n",
      "schemas/x.yaml:2:6: 'min' (5) of column 'a' is larger than its 'max' (1)")
    assertError("columns:\n  a: {type: float, min: low}\n", "schemas/x.yaml:2:25: 'min' of column 'a' must be a number")
    assertError(
      "columns:\n  a: {type: string, max: 3}\n", "schemas/x.yaml:2:21: 'max' of column 'a' needs type int or float")
    assertError("columns:\n  a: {max: 3}\n", "schemas/x.yaml:2:7: 'max' of column 'a' needs type int or float")
    assertError(
      "columns:\n  a: {type: int, max_length: 3}\n", "schemas/x.yaml:2:18: 'max_length' of column 'a' needs type string"
    )
    assertError("columns:\n  a: {min_length: -1}\n", "schemas/x.yaml:2:19: 'min_length' must be a non-negative integer")
    assertError(
      "columns:\n  a: {min_length: 5, max_length: 2}\n", "schemas/x.yaml:2:6: 'min_length' (5) of column 'a' is larger")
    assertError("columns:\n  a: {regex: \"([a-z\"}\n", "schemas/x.yaml:2:14: invalid regular expression for column 'a'")
    assertError(
      "columns:\n  a: {type: bool, regex: x}\n", "schemas/x.yaml:2:19: 'regex' of column 'a' needs type string")
    assertError(
      "columns:\n  a: {allowed: []}\n", "schemas/x.yaml:2:16: 'allowed' of column 'a' must be a non-empty list")
    assertError(
      "columns:\n  a: {allowed: x}\n", "schemas/x.yaml:2:16: 'allowed' of column 'a' must be a non-empty list")
    assertError(
      "columns:\n  a: {type: int, allowed: [1, two]}\n",
      "schemas/x.yaml:2:31: 'allowed' value 'two' of int column 'a' is not a number")
    assertError(
      "columns:\n  a: {type: bool, allowed: [yes, maybe]}\n",
      "schemas/x.yaml:2:34: 'allowed' value 'maybe' of bool column 'a'")
    assertError(
      "columns:\n  a: {allowed: [[1]]}\n", "schemas/x.yaml:2:17: each 'allowed' value of column 'a' must be a scalar")
    assertError(
      "columns:\n  a: int\nrows: {min: 10, max: 2}\n",
      "schemas/x.yaml:3:7: 'rows.min' (10) is larger than 'rows.max' (2)")
    assertError(
      "columns:\n  a: int\nrows: {min: many}\n", "schemas/x.yaml:3:13: 'rows.min' must be a non-negative integer")
    assertError("columns:\n  a: int\nrows: {least: 1}\n", "schemas/x.yaml:3:8: unknown key 'least' in 'rows'")
    assertError("columns:\n  a: int\nstrict: sometimes\n", "schemas/x.yaml:3:9: 'strict' must be true or false")
    assertError("columns:\n  a: [int]\n", "schemas/x.yaml:2:6: expected a mapping for column 'a'")
    assertError("columns:\n  a: int\n  a: float\n", "schemas/x.yaml:")
    assertError("columns: {a: int\n", "schemas/x.yaml:2:1: invalid YAML")
  }
}
