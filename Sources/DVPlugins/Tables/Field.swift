/// One field of the current record of a `TableReader`; its bytes are valid until the reader's `next()`.
public struct Field {
  /// What the field holds.
  public enum Kind: Sendable {
    /// JSONL: the record has no such key. (CSV rows always have every column.)
    case missing
    /// JSON `null`; in CSV an unquoted empty field.
    case null
    /// A string: JSON string, or any CSV field that is not an unquoted empty one.
    case string
    /// A JSON number.
    case number
    /// JSON `true` or `false`.
    case bool
    /// A JSON object or array.
    case nested
  }

  public var kind: Kind
  /// Strings: the unescaped UTF-8 text; numbers and booleans: the literal; nested: the raw JSON.
  public var bytes: UnsafeRawBufferPointer

  public init(kind: Kind, bytes: UnsafeRawBufferPointer) {
    self.kind = kind
    self.bytes = bytes
  }

  /// The bytes as text (invalid UTF-8 is replaced).
  public var string: String { String(decoding: bytes, as: UTF8.self) }

  /// The value as a number: a JSON number, or CSV/JSON text that is one (surrounding spaces
  /// allowed); nil otherwise. Plain decimals are parsed without allocating.
  public func double() -> Double? {
    guard kind == .number || kind == .string else { return nil }
    let text = Self.trimmed(bytes)
    if text.isEmpty { return nil }
    if let fast = Self.fastDouble(text) { return fast }
    // Rare forms (many digits, large exponents, inf/nan spelled out) take the exact, slower path.
    let string = String(decoding: text, as: UTF8.self)
    guard let value = Double(string) else { return nil }
    let lower = string.lowercased()
    if lower.contains("inf") || lower.contains("nan") { return nil }
    return value
  }

  /// The value as a 64-bit integer (optional sign, digits only); nil otherwise or on overflow.
  public func integer() -> Int64? {
    guard kind == .number || kind == .string else { return nil }
    let text = Self.trimmed(bytes)
    guard !text.isEmpty else { return nil }
    var index = 0
    var negative = false
    if text[0] == UInt8(ascii: "-") || text[0] == UInt8(ascii: "+") {
      negative = text[0] == UInt8(ascii: "-")
      index = 1
    }
    guard index < text.count else { return nil }
    var magnitude: UInt64 = 0
    while index < text.count {
      let digit = text[index] &- 48
      guard digit < 10 else { return nil }
      let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
      let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
      if o1 || o2 { return nil }
      magnitude = sum
      index += 1
    }
    if negative {
      if magnitude == UInt64(Int64.max) + 1 { return Int64.min }
      return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
    }
    return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
  }

  static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

  /// `bytes` without leading and trailing ASCII whitespace.
  static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var start = 0
    var end = bytes.count
    while start < end, isSpace(bytes[start]) { start += 1 }
    while end > start, isSpace(bytes[end - 1]) { end -= 1 }
    if start == 0 && end == bytes.count { return bytes }
    return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
  }

  private static let powersOf10: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

  /// Digits with an optional sign, fraction and exponent whose value is exact in a Double
  /// (at most 15 significant digits, scale within 10^±22); nil sends the caller to the exact parser.
  private static func fastDouble(_ text: UnsafeRawBufferPointer) -> Double? {
    var index = 0
    let count = text.count
    var negative = false
    if text[0] == UInt8(ascii: "-") || text[0] == UInt8(ascii: "+") {
      negative = text[0] == UInt8(ascii: "-")
      index = 1
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var scale = 0
    var sawDigit = false
    while index < count, case let d = text[index] &- 48, d < 10 {
      if mantissa != 0 || d != 0 { digits += 1 }
      mantissa = mantissa &* 10 &+ UInt64(d)
      sawDigit = true
      index += 1
    }
    if index < count, text[index] == UInt8(ascii: ".") {
      index += 1
      while index < count, case let d = text[index] &- 48, d < 10 {
        if mantissa != 0 || d != 0 { digits += 1 }
        mantissa = mantissa &* 10 &+ UInt64(d)
        scale -= 1
        sawDigit = true
        index += 1
      }
    }
    guard sawDigit, digits <= 15 else { return nil }
    if index < count, text[index] | 0x20 == UInt8(ascii: "e") {
      index += 1
      var exponentNegative = false
      if index < count, text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
        exponentNegative = text[index] == UInt8(ascii: "-")
        index += 1
      }
      var exponent = 0
      var sawExponentDigit = false
      while index < count, case let d = text[index] &- 48, d < 10 {
        exponent = min(exponent * 10 + Int(d), 10_000)
        sawExponentDigit = true
        index += 1
      }
      guard sawExponentDigit else { return nil }
      scale += exponentNegative ? -exponent : exponent
    }
    guard index == count else { return nil }
    var value = Double(mantissa)
    if scale < 0 {
      guard scale >= -22 else { return nil }
      value /= powersOf10[-scale]
    } else if scale > 0 {
      guard scale <= 22 else { return nil }
      value *= powersOf10[scale]
    }
    return negative ? -value : value
  }
}
