import DVBasics
import DVPipeline
import Yams

#if canImport(Glibc)
  import Glibc
#endif

/// A table schema for the `validate` plugin, read from a YAML file:
///
/// ```yaml
/// columns:
///   id: {type: int, unique: true}
///   question: string                      # shorthand for {type: string}
///   complexity: {type: string, allowed: [easy, medium, hard]}
///   score: {type: float, min: 0, max: 1, nullable: true}
///   sql: {type: string, regex: "^SELECT ", min_length: 8}
///   note: {required: false}               # any type; may be absent
/// rows: {min: 1, max: 1000000}
/// strict: false
/// ```
///
/// Per column (every key optional):
/// - `type`: `int`, `float` (an int is a float too), `string` or `bool`. In CSV, which is untyped
///   text, a value has a type when its text parses as one (`true`/`false` for bool); in JSON Lines
///   the JSON type must match (the string `"12"` is not an int). Objects and arrays match no type.
/// - `required` (default true): the column is in the CSV header / the key is in every JSON line.
/// - `nullable` (default false, as in pandera): an empty unquoted CSV field or JSON `null` is
///   allowed. An absent JSON key of a column with `required: false` is neither null nor checked.
/// - `unique` (default false): no two non-null values are equal (checked in bounded memory).
/// - `allowed`: the only values (compared as numbers for int/float columns, as text otherwise).
/// - `min`, `max`: inclusive bounds, for int and float columns.
/// - `min_length`, `max_length`: inclusive bounds on a string's length in characters.
/// - `regex`: a POSIX extended regular expression a string must match somewhere (anchor it with
///   `^` and `$` to match the whole value).
///
/// Top level: `columns` (required), `rows: {min, max}` bounds on the number of data rows, and
/// `strict` (default false): when true, a column that is not in the schema is a violation.
package struct Schema {
  /// The types a column can require.
  package enum ColumnType: String, CaseIterable, Sendable {
    case int, float, string, bool
  }

  /// The rules for one column.
  package struct Column {
    package var name: String
    package var type: ColumnType?
    package var required = true
    package var nullable = false
    package var unique = false
    /// Allowed values as text (for string, bool and untyped columns) ...
    package var allowedTexts: [[UInt8]]?
    /// ... or as numbers (for int and float columns).
    package var allowedNumbers: [Double]?
    /// The allowed values as written, for messages.
    package var allowedDescription = ""
    package var min: Double?
    package var max: Double?
    package var minLength: Int?
    package var maxLength: Int?
    package var regex: POSIXRegex?
  }

  package var columns: [Column]
  package var minRows: Int64?
  package var maxRows: Int64?
  package var strict = false

  private static let columnKeys: Set<String> = [
    "type", "required", "nullable", "unique", "allowed", "min", "max", "min_length", "max_length", "regex",
  ]

  /// Parses a schema file; every problem is a `FileFormatError` at the file's line:column.
  package init(text: String, name: String) throws {
    let file = try YAMLFile(text: text, name: name)
    let top = try file.rootMapping(allowed: ["columns", "rows", "strict"], what: "a schema")
    guard let columnsEntry = top.first(where: { $0.key == "columns" }) else {
      throw file.error(file.root, "a schema needs 'columns': a mapping of column names to their rules")
    }
    guard let columnMap = columnsEntry.value.mapping else {
      throw file.error(columnsEntry.value, "'columns' must be a mapping of column names to their rules")
    }
    columns = []
    for (keyNode, value) in columnMap {
      guard let name = keyNode.scalar?.string else { throw file.error(keyNode, "a column name must be a string") }
      columns.append(try Self.column(name, value, file: file))
    }
    for entry in top {
      switch entry.key {
      case "rows":
        let bounds = try file.mapping(entry.value, allowed: ["min", "max"], what: "'rows'")
        for bound in bounds {
          let value = try file.integer(bound.value, key: "rows.\(bound.key)")
          if bound.key == "min" { minRows = value } else { maxRows = value }
        }
        if let minRows, let maxRows, minRows > maxRows {
          throw file.error(entry.value, "'rows.min' (\(minRows)) is larger than 'rows.max' (\(maxRows))")
        }
      case "strict":
        strict = try file.boolean(entry.value, key: "strict")
      default: break
      }
    }
  }

  private static func column(_ name: String, _ node: Node, file: YAMLFile) throws -> Column {
    var column = Column(name: name)
    if let scalar = node.scalar {
      // `name: int` is shorthand for `name: {type: int}`.
      column.type = try type(scalar.string, node, column: name, file: file)
      return column
    }
    let entries = try file.mapping(node, allowed: columnKeys, what: "column '\(name)'")
    if let typeEntry = entries.first(where: { $0.key == "type" }) {
      column.type = try type(try file.string(typeEntry.value, key: "type"), typeEntry.value, column: name, file: file)
    }
    let numeric = column.type == .int || column.type == .float
    let textual = column.type == nil || column.type == .string
    for entry in entries {
      let value = entry.value
      switch entry.key {
      case "required": column.required = try file.boolean(value, key: "required")
      case "nullable": column.nullable = try file.boolean(value, key: "nullable")
      case "unique": column.unique = try file.boolean(value, key: "unique")
      case "min", "max":
        guard numeric else {
          throw file.error(
            entry.keyNode,
            "'\(entry.key)' of column '\(name)' needs type int or float; for strings use '\(entry.key)_length'")
        }
        guard let text = value.scalar?.string, let number = Double(text), number.isFinite else {
          throw file.error(value, "'\(entry.key)' of column '\(name)' must be a number")
        }
        if entry.key == "min" { column.min = number } else { column.max = number }
      case "min_length", "max_length":
        guard textual else {
          throw file.error(entry.keyNode, "'\(entry.key)' of column '\(name)' needs type string")
        }
        let length = Int(try file.integer(value, key: entry.key))
        if entry.key == "min_length" { column.minLength = length } else { column.maxLength = length }
      case "regex":
        guard textual else { throw file.error(entry.keyNode, "'regex' of column '\(name)' needs type string") }
        let pattern = try file.string(value, key: "regex")
        do {
          column.regex = try POSIXRegex(pattern)
        } catch let error as POSIXRegex.CompileError {
          throw file.error(value, "invalid regular expression for column '\(name)': \(error.message)")
        }
      case "allowed":
        try allowed(value, into: &column, file: file)
      default: break
      }
    }
    if let min = column.min, let max = column.max, min > max {
      throw file.error(node, "'min' (\(format(min))) of column '\(name)' is larger than its 'max' (\(format(max)))")
    }
    if let min = column.minLength, let max = column.maxLength, min > max {
      throw file.error(node, "'min_length' (\(min)) of column '\(name)' is larger than its 'max_length' (\(max))")
    }
    return column
  }

  private static func type(_ text: String, _ node: Node, column: String, file: YAMLFile) throws -> ColumnType {
    guard let type = ColumnType(rawValue: text) else {
      throw file.error(node, "unknown type '\(text)' for column '\(column)' (use int, float, string or bool)")
    }
    return type
  }

  private static func allowed(_ node: Node, into column: inout Column, file: YAMLFile) throws {
    guard let items = node.sequence, !items.isEmpty else {
      throw file.error(node, "'allowed' of column '\(column.name)' must be a non-empty list of values")
    }
    var texts: [String] = []
    for item in items {
      guard let text = item.scalar?.string else {
        throw file.error(item, "each 'allowed' value of column '\(column.name)' must be a scalar")
      }
      switch column.type {
      case .int, .float:
        guard let number = Double(text), number.isFinite else {
          throw file.error(
            item, "'allowed' value '\(text)' of \(column.type!.rawValue) column '\(column.name)' is not a number")
        }
        column.allowedNumbers = (column.allowedNumbers ?? []) + [number]
      case .bool:
        guard ConfigValue.boolean(text) != nil else {
          throw file.error(item, "'allowed' value '\(text)' of bool column '\(column.name)' is not true or false")
        }
        // Stored canonically: the validator compares a bool value's canonical spelling.
        column.allowedTexts =
          (column.allowedTexts ?? []) + [Array((ConfigValue.boolean(text)! ? "true" : "false").utf8)]
      case .string, nil:
        column.allowedTexts = (column.allowedTexts ?? []) + [Array(text.utf8)]
      }
      texts.append(text)
    }
    column.allowedDescription = texts.joined(separator: ", ")
  }

  /// A number as a schema author would write it: `120`, not `120.0`.
  package static func format(_ number: Double) -> String {
    if number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
    return String(number)
  }
}

/// A POSIX extended regular expression, compiled once (`regcomp`), matched against NUL-terminated
/// bytes without creating strings. Patterns that are plain text, optionally anchored (`^SELECT `,
/// `\.csv$`), are matched by comparing bytes: several times faster than `regexec`, and common in
/// schemas.
package final class POSIXRegex {
  /// Why a pattern did not compile, in regerror's words.
  package struct CompileError: Error {
    package var message: String
  }

  private var compiled = regex_t()
  /// The pattern as written.
  package let pattern: String
  /// For plain-text patterns: the text and its anchors.
  private let literal: (text: [UInt8], atStart: Bool, atEnd: Bool)?

  package init(_ pattern: String) throws {
    self.pattern = pattern
    literal = Self.literal(pattern)
    let code = regcomp(&compiled, pattern, REG_EXTENDED | REG_NOSUB)
    if code != 0 {
      var buffer = [CChar](repeating: 0, count: 256)
      regerror(code, &compiled, &buffer, buffer.count)
      regfree(&compiled)
      throw CompileError(message: String(cString: buffer))
    }
  }

  deinit { regfree(&compiled) }

  /// The text a pattern matches when it has no operators (escaped ones count as text).
  private static func literal(_ pattern: String) -> (text: [UInt8], atStart: Bool, atEnd: Bool)? {
    var bytes = Array(pattern.utf8)
    let atStart = bytes.first == UInt8(ascii: "^")
    if atStart { bytes.removeFirst() }
    var atEnd = false
    var text: [UInt8] = []
    var i = 0
    while i < bytes.count {
      let byte = bytes[i]
      if byte == UInt8(ascii: "\\") {
        guard i + 1 < bytes.count, Array(".[]()*+?{}|^$\\".utf8).contains(bytes[i + 1]) else { return nil }
        text.append(bytes[i + 1])
        i += 2
        continue
      }
      if byte == UInt8(ascii: "$") && i == bytes.count - 1 {
        atEnd = true
        break
      }
      if Array(".[]()*+?{}|^$".utf8).contains(byte) { return nil }
      text.append(byte)
      i += 1
    }
    return (text, atStart, atEnd)
  }

  /// True when the NUL-terminated string at `text` matches somewhere.
  package func matches(_ text: UnsafePointer<CChar>) -> Bool {
    regexec(&compiled, text, 0, nil, 0) == 0
  }

  /// True when `bytes` match somewhere; `scratch` is reused to add the terminating NUL.
  package func matches(_ bytes: UnsafeRawBufferPointer, scratch: inout [CChar]) -> Bool {
    if let literal, !bytes.contains(0) {
      return Self.contains(bytes, literal.text, atStart: literal.atStart, atEnd: literal.atEnd)
    }
    if scratch.count < bytes.count + 1 { scratch = [CChar](repeating: 0, count: bytes.count * 2 + 64) }
    return scratch.withUnsafeMutableBufferPointer { buffer in
      if bytes.count > 0 {
        UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
      }
      buffer[bytes.count] = 0
      return matches(buffer.baseAddress!)
    }
  }

  private static func contains(_ bytes: UnsafeRawBufferPointer, _ text: [UInt8], atStart: Bool, atEnd: Bool) -> Bool {
    let n = text.count
    guard bytes.count >= n else { return false }
    func equal(at offset: Int) -> Bool {
      text.withUnsafeBytes { memcmp(bytes.baseAddress! + offset, $0.baseAddress!, n) == 0 }
    }
    if n == 0 { return !(atStart && atEnd) || bytes.isEmpty }
    if atStart && atEnd { return bytes.count == n && equal(at: 0) }
    if atStart { return equal(at: 0) }
    if atEnd { return equal(at: bytes.count - n) }
    var offset = 0
    while offset + n <= bytes.count {
      guard let hit = memchr(bytes.baseAddress! + offset, Int32(text[0]), bytes.count - offset - n + 1) else {
        return false
      }
      offset = hit - UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
      if equal(at: offset) { return true }
      offset += 1
    }
    return false
  }
}
