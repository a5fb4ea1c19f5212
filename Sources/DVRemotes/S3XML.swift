/// A small, tolerant reader for the XML S3 answers with (listings, errors, upload ids): it finds
/// elements by name and unescapes their text. S3's documents are flat and unprefixed, and the
/// elements dv reads never nest inside an element of the same name.
package struct S3XML {
  private let bytes: [UInt8]

  package init(_ bytes: [UInt8]) { self.bytes = bytes }

  package init(_ text: String) { self.bytes = Array(text.utf8) }

  /// The whole document.
  package var all: Range<Int> { 0..<bytes.count }

  /// The content ranges of the elements named `name` inside `range`, in document order; a
  /// self-closing element has an empty range.
  package func elements(_ name: String, in range: Range<Int>? = nil) -> [Range<Int>] {
    let range = range ?? all
    let open = Array("<\(name)".utf8)
    let close = Array("</\(name)>".utf8)
    var found: [Range<Int>] = []
    var position = range.lowerBound
    while let start = find(open, from: position, before: range.upperBound) {
      var cursor = start + open.count
      guard cursor < range.upperBound else { break }
      let next = bytes[cursor]
      // `<Key` must not match `<KeyCount>`.
      guard
        next == UInt8(ascii: ">") || next == UInt8(ascii: "/") || next == UInt8(ascii: " ") || next == 9
          || next == 10 || next == 13
      else {
        position = cursor
        continue
      }
      guard let tagEnd = find([UInt8(ascii: ">")], from: cursor, before: range.upperBound) else { break }
      cursor = tagEnd + 1
      if bytes[tagEnd - 1] == UInt8(ascii: "/") {
        found.append(cursor..<cursor)
        position = cursor
        continue
      }
      guard let end = find(close, from: cursor, before: range.upperBound) else { break }
      found.append(cursor..<end)
      position = end + close.count
    }
    return found
  }

  /// The unescaped text of the first element named `name` inside `range`; nil when absent.
  package func text(_ name: String, in range: Range<Int>? = nil) -> String? {
    guard let first = elements(name, in: range).first else { return nil }
    return Self.unescape(bytes[first])
  }

  private func find(_ needle: [UInt8], from start: Int, before end: Int) -> Int? {
    guard !needle.isEmpty, end - start >= needle.count else { return nil }
    let first = needle[0]
    var i = start
    while i <= end - needle.count {
      if bytes[i] == first {
        var j = 1
        while j < needle.count && bytes[i + j] == needle[j] { j += 1 }
        if j == needle.count { return i }
      }
      i += 1
    }
    return nil
  }

  /// Replaces the five predefined entities and numeric character references; CDATA sections are
  /// taken as they are. Unknown entities are kept as written.
  package static func unescape<C: Collection>(_ text: C) -> String where C.Element == UInt8 {
    let input = Array(text)
    var out: [UInt8] = []
    out.reserveCapacity(input.count)
    var i = 0
    let cdataOpen = Array("<![CDATA[".utf8)
    while i < input.count {
      let byte = input[i]
      if byte == UInt8(ascii: "<"), input[i...].starts(with: cdataOpen) {
        let bodyStart = i + cdataOpen.count
        var j = bodyStart
        while j + 2 < input.count, !(input[j] == 93 && input[j + 1] == 93 && input[j + 2] == 62) { j += 1 }
        out.append(contentsOf: input[bodyStart..<min(j, input.count)])
        i = j + 3
        continue
      }
      guard byte == UInt8(ascii: "&"), let semicolon = input[i...].prefix(12).firstIndex(of: UInt8(ascii: ";"))
      else {
        out.append(byte)
        i += 1
        continue
      }
      let entity = String(decoding: input[(i + 1)..<semicolon], as: UTF8.self)
      var replacement: [UInt8]?
      switch entity {
      case "lt": replacement = [UInt8(ascii: "<")]
      case "gt": replacement = [UInt8(ascii: ">")]
      case "amp": replacement = [UInt8(ascii: "&")]
      case "quot": replacement = [UInt8(ascii: "\"")]
      case "apos": replacement = [UInt8(ascii: "'")]
      default:
        if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
          replacement = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map {
            Array(String($0).utf8)
          }
        } else if entity.hasPrefix("#") {
          replacement = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init).map { Array(String($0).utf8) }
        }
      }
      if let replacement {
        out.append(contentsOf: replacement)
        i = semicolon + 1
      } else {
        out.append(byte)
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Escapes text for an XML element (`&`, `<`, `>`, quotes).
  package static func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for character in text {
      switch character {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      default: out.append(character)
      }
    }
    return out
  }
}
