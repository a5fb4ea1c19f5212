#if canImport(Glibc)
  import Glibc
#endif

/// A JSON syntax problem at a byte offset within a line.
struct JSONSyntaxError: Error {
  var offset: Int
  var message: String
}

/// Validates JSON text in place, without building values: each function takes the offset of a
/// value and returns the offset just after it, or throws where the text breaks the grammar.
struct JSONScanner {
  let bytes: UnsafePointer<UInt8>
  let end: Int
  /// Deeper nesting than this is refused rather than recursed into.
  static let maximumDepth = 512

  func skipSpace(_ i: Int) -> Int {
    var i = i
    while i < end {
      let b = bytes[i]
      if b != 0x20 && b != 0x09 && b != 0x0A && b != 0x0D { break }
      i += 1
    }
    return i
  }

  /// A string starting at the opening quote; returns the offset after the closing quote and
  /// whether it contains escapes.
  func scanString(_ start: Int) throws -> (end: Int, escaped: Bool) {
    var i = start + 1
    var escaped = false
    while i < end {
      // Eight plain bytes at a time: none a quote, a backslash or a control character.
      while i + 8 <= end && !Self.mayBeSpecial(UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self)) {
        i += 8
      }
      guard i < end else { break }
      let b = bytes[i]
      if b == UInt8(ascii: "\"") { return (i + 1, escaped) }
      if b == UInt8(ascii: "\\") {
        escaped = true
        guard i + 1 < end else { break }
        switch bytes[i + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
          UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
          i += 2
        case UInt8(ascii: "u"):
          guard i + 5 < end, (2...5).allSatisfy({ Self.hexValue(bytes[i + $0]) != nil }) else {
            throw JSONSyntaxError(offset: i, message: "a \\u escape needs four hex digits")
          }
          i += 6
        default:
          throw JSONSyntaxError(offset: i, message: "invalid escape in a string")
        }
        continue
      }
      if b < 0x20 { throw JSONSyntaxError(offset: i, message: "a control character inside a string must be escaped") }
      i += 1
    }
    throw JSONSyntaxError(offset: start, message: "unterminated string")
  }

  /// True when one of the eight bytes of `word` may be '"', '\\' or below 0x20 (the usual
  /// has-zero-byte test on the word XORed with each; borrows make rare false positives only).
  @inline(__always)
  static func mayBeSpecial(_ word: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let quote = word ^ (ones &* 0x22)
    let backslash = word ^ (ones &* 0x5C)
    let flags = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
    return flags & (ones &* 0x80) != 0
  }

  func scanNumber(_ start: Int) throws -> Int {
    var i = start
    guard i < end, bytes[i] == UInt8(ascii: "-") || bytes[i] &- 48 < 10 else {
      throw JSONSyntaxError(offset: start, message: "expected a value")
    }
    if bytes[i] == UInt8(ascii: "-") { i += 1 }
    func digits(_ i: inout Int) -> Int {
      let from = i
      while i < end, bytes[i] &- 48 < 10 { i += 1 }
      return i - from
    }
    guard i < end, bytes[i] &- 48 < 10 else { throw JSONSyntaxError(offset: start, message: "invalid number") }
    if bytes[i] == UInt8(ascii: "0") {
      i += 1
    } else {
      _ = digits(&i)
    }
    if i < end, bytes[i] == UInt8(ascii: ".") {
      i += 1
      guard digits(&i) > 0 else { throw JSONSyntaxError(offset: start, message: "invalid number") }
    }
    if i < end, bytes[i] | 0x20 == UInt8(ascii: "e") {
      i += 1
      if i < end, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
      guard digits(&i) > 0 else { throw JSONSyntaxError(offset: start, message: "invalid number") }
    }
    return i
  }

  func scanLiteral(_ start: Int, _ word: StaticString) throws -> Int {
    let count = word.utf8CodeUnitCount
    guard start + count <= end, memcmp(bytes + start, word.utf8Start, count) == 0 else {
      throw JSONSyntaxError(offset: start, message: "unexpected character")
    }
    return start + count
  }

  /// Any value (after whitespace has been skipped).
  func scanValue(_ start: Int, depth: Int) throws -> Int {
    guard start < end else { throw JSONSyntaxError(offset: start, message: "a value is missing") }
    switch bytes[start] {
    case UInt8(ascii: "\""): return try scanString(start).end
    case UInt8(ascii: "{"), UInt8(ascii: "["): return try scanContainer(start, depth: depth + 1)
    case UInt8(ascii: "t"): return try scanLiteral(start, "true")
    case UInt8(ascii: "f"): return try scanLiteral(start, "false")
    case UInt8(ascii: "n"): return try scanLiteral(start, "null")
    default: return try scanNumber(start)
    }
  }

  /// An object or array starting at its opening bracket.
  func scanContainer(_ start: Int, depth: Int) throws -> Int {
    guard depth <= Self.maximumDepth else {
      throw JSONSyntaxError(offset: start, message: "nested deeper than \(Self.maximumDepth) levels")
    }
    let isObject = bytes[start] == UInt8(ascii: "{")
    let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
    var i = skipSpace(start + 1)
    if i < end, bytes[i] == close { return i + 1 }
    while true {
      if isObject {
        guard i < end, bytes[i] == UInt8(ascii: "\"") else {
          throw JSONSyntaxError(offset: i, message: "expected a quoted key")
        }
        i = skipSpace(try scanString(i).end)
        guard i < end, bytes[i] == UInt8(ascii: ":") else { throw JSONSyntaxError(offset: i, message: "expected ':'") }
        i = skipSpace(i + 1)
      }
      i = skipSpace(try scanValue(i, depth: depth))
      guard i < end else { throw JSONSyntaxError(offset: i, message: "unterminated \(isObject ? "object" : "array")") }
      if bytes[i] == close { return i + 1 }
      guard bytes[i] == UInt8(ascii: ",") else {
        throw JSONSyntaxError(offset: i, message: "expected ',' or '\(Character(Unicode.Scalar(close)))'")
      }
      i = skipSpace(i + 1)
    }
  }

  static func hexValue(_ b: UInt8) -> UInt32? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - 48)
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - 87)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - 55)
    default: return nil
    }
  }

  /// Appends the unescaped content of a validated string (between its quotes) to `output`.
  static func unescape(_ source: UnsafePointer<UInt8>, count: Int, into output: inout ScratchBuffer) {
    var i = 0
    func hex4(_ at: Int) -> UInt32 {
      (0..<4).reduce(0) { $0 << 4 | (hexValue(source[at + $1]) ?? 0) }
    }
    while i < count {
      let b = source[i]
      guard b == UInt8(ascii: "\\") else {
        output.append(b)
        i += 1
        continue
      }
      let e = source[i + 1]
      i += 2
      switch e {
      case UInt8(ascii: "b"): output.append(0x08)
      case UInt8(ascii: "f"): output.append(0x0C)
      case UInt8(ascii: "n"): output.append(0x0A)
      case UInt8(ascii: "r"): output.append(0x0D)
      case UInt8(ascii: "t"): output.append(0x09)
      case UInt8(ascii: "u"):
        var code = hex4(i)
        i += 4
        if code >= 0xD800 && code < 0xDC00, i + 6 <= count, source[i] == UInt8(ascii: "\\"),
          source[i + 1] == UInt8(ascii: "u"), case let low = hex4(i + 2), low >= 0xDC00 && low < 0xE000
        {
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          i += 6
        }
        // A lone surrogate is not a character: it becomes U+FFFD, as decoders do.
        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
        for unit in UTF8.encode(scalar)! { output.append(unit) }
      default: output.append(e)
      }
    }
  }
}

/// A growable byte buffer reused from record to record; values are addressed by offset because
/// growing moves it.
struct ScratchBuffer {
  private(set) var base: UnsafeMutablePointer<UInt8>
  private(set) var capacity: Int
  var count = 0

  init(capacity: Int = 4096) {
    base = .allocate(capacity: capacity)
    self.capacity = capacity
  }

  func free() { base.deallocate() }

  mutating func reserve(_ more: Int) {
    guard count + more > capacity else { return }
    var newCapacity = capacity * 2
    while newCapacity < count + more { newCapacity *= 2 }
    let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
    grown.update(from: base, count: count)
    base.deallocate()
    base = grown
    capacity = newCapacity
  }

  mutating func append(_ byte: UInt8) {
    if count == capacity { reserve(1) }
    base[count] = byte
    count += 1
  }

  mutating func append(_ bytes: UnsafePointer<UInt8>, count n: Int) {
    reserve(n)
    (base + count).update(from: bytes, count: n)
    count += n
  }
}
