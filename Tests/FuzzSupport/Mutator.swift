import Foundation

/// Mutates valid inputs into nearly valid ones: byte flips, truncation, duplicated, deleted and
/// swapped lines, values replaced by other types, huge numbers, deep nesting, unknown keys, empty
/// files, invalid UTF-8, NUL bytes, very long strings, alias bombs, hostile paths.
public struct Mutator {
  /// The syntax of the input, which decides the hostile values that fit it.
  public enum Dialect: Sendable {
    case yaml
    case json
    case xml
  }

  public var rng: SplitMix64
  public let dialect: Dialect
  /// Extra values worth trying in this format (valid-looking keys, ids, paths).
  public var vocabulary: [String]

  public init(rng: SplitMix64, dialect: Dialect, vocabulary: [String] = []) {
    self.rng = rng
    self.dialect = dialect
    self.vocabulary = vocabulary
  }

  /// Hex of a well-formed object id, for values that should get past the first checks.
  public static let someHash = String(repeating: "ab", count: 32)

  /// Paths that must never be used as they are.
  public static let hostilePaths: [String] = [
    "/etc/passwd", "/", "..", "../outside", "a/../../x", "./../x", ".", "", ".pipeline/cache", ".pipeline",
    "link/escape", "data/../../x", "a//b", "a/./b", "x\ny", "x\\0y", "~", "~/x", "-rf", "*",
  ]

  private static let yamlValues: [String] = [
    "[]", "{}", "[a, b]", "{a: 1}", "null", "~", "''", "\"\"", "-1", "0", "1.5", "1e400", "-0",
    "99999999999999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "true", "no", "yes", "!!binary aGVsbG8=", "!!int x", "&anchor x", "*undefined", "${x}", "${", "${a.b[0]}",
    "${item}", "\"a\\nb\"", "\"\\0\"", "\"a\\x00b\"", "|\n  block", ">", "- a", "? x", "%YAML 1.2", "@x", "`x`",
    "\"\\uD800\"", "\"\\U0010FFFF\"", "\"..\\0\"", "\"raw\\0\"", "x\u{85}y", "\u{FEFF}x", "\"a\u{2028}b\"",
    "\"a\\x80b\"", "\"a\\u2028b\"", "\"a\\uFEFFb\"", "\"a\\x85b\"", "\"\\e[31mred\"",
  ]

  private static let jsonValues: [String] = [
    "null", "[]", "{}", "\"\"", "\"x\"", "0", "-1", "1.5", "1e400", "-1e400", "1e-400", "99999999999999999999999",
    "9223372036854775808", "-9223372036854775809", "true", "false", "[1, [2, [3]]]", "{\"a\": {}}", "\"\\u0000\"",
    "\"\\ud800\"", "\"\\n\"", "\"../../etc/passwd\"", "\"/etc/passwd\"", "NaN", "Infinity", "'x'", "\"\\x\"",
    "[", "{", "\"",
  ]

  private static let xmlValues: [String] = [
    "", "x", "-1", "99999999999999999999999", "1e400", "true", "false", "&amp;", "&lt;", "&#0;", "&#xFFFFFFFF;",
    "&#x110000;", "&#xD800;", "&#1114111;", "&lol9;", "&amp", "&", "<![CDATA[x]]>", "<![CDATA[", "]]>",
    "</Key>", "<Key>", "<Contents>", "</Contents>", "<Key/>", "<IsTruncated>true</IsTruncated>",
    "../../etc/passwd", "/etc/passwd", "sha256/../x", "<!DOCTYPE x [<!ENTITY lol \"lol\">]>", "a\nb",
  ]

  private var hostileValues: [String] {
    switch dialect {
    case .yaml:
      let hashes: [String] = ["sha256:" + Self.someHash, "sha256:" + Self.someHash.uppercased(), "sha256:"]
      return Self.yamlValues + hashes + Self.hostilePaths.filter { !$0.isEmpty }
    case .json:
      let hashes: [String] = ["\"sha256:" + Self.someHash + "\"", "\"" + Self.someHash + "\""]
      return Self.jsonValues + hashes
    case .xml:
      let keys: [String] = ["sha256/ab/" + String(Self.someHash.dropFirst(2))]
      return Self.xmlValues + keys
    }
  }

  private static let interestingBytes: [UInt8] = [
    0x00, 0x09, 0x0A, 0x0D, 0x20, 0x22, 0x23, 0x26, 0x27, 0x2A, 0x2C, 0x2D, 0x2F, 0x3A, 0x3C, 0x3E, 0x3F, 0x40, 0x5B,
    0x5C, 0x5D, 0x7B, 0x7C, 0x7D, 0x7F, 0x80, 0xC3, 0xED, 0xEF, 0xFE, 0xFF,
  ]

  /// `input` with 1 to `maxRounds` mutations; `applied` names them (for failure reports).
  public mutating func mutate(_ input: [UInt8], maxRounds: Int = 3) -> (bytes: [UInt8], applied: [String]) {
    var bytes = input
    var applied: [String] = []
    for _ in 0..<(1 + rng.below(maxRounds)) {
      let name = mutateOnce(&bytes)
      applied.append(name)
    }
    return (bytes, applied)
  }

  // MARK: - One mutation

  private mutating func mutateOnce(_ bytes: inout [UInt8]) -> String {
    switch rng.below(22) {
    case 0:
      guard !bytes.isEmpty else { return "flip(empty)" }
      let i = rng.below(bytes.count)
      bytes[i] ^= UInt8(1 << rng.below(8))
      return "flip@\(i)"
    case 1:
      guard !bytes.isEmpty else { return "set(empty)" }
      let i = rng.below(bytes.count)
      bytes[i] = rng.pick(Self.interestingBytes)
      return "set@\(i)"
    case 2:
      let i = rng.below(bytes.count + 1)
      bytes.removeSubrange(i...)
      return "truncate@\(i)"
    case 3: return editLines(&bytes, "duplicate-line") { lines, i, _ in lines.insert(lines[i], at: i) }
    case 4: return editLines(&bytes, "delete-line") { lines, i, _ in lines.remove(at: i) }
    case 5:
      return editLines(&bytes, "swap-lines") { lines, i, rng in
        let j = rng.below(lines.count)
        lines.swapAt(i, j)
      }
    case 6, 7, 8:
      let value = valueToTry()
      return replaceValue(&bytes, with: value, name: "value")
    case 9: return replaceKey(&bytes)
    case 10:
      let line = unknownKeyLine()
      return editLines(&bytes, "insert-line") { lines, i, _ in lines.insert(Array(line.utf8), at: i) }
    case 11:
      bytes = []
      return "empty"
    case 12:
      let i = rng.below(bytes.count + 1)
      let bad: [[UInt8]] = [
        [0xFF], [0xFE, 0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF],
      ]
      bytes.insert(contentsOf: rng.pick(bad), at: i)
      return "invalid-utf8@\(i)"
    case 13:
      let i = rng.below(bytes.count + 1)
      bytes.insert(0, at: i)
      return "nul@\(i)"
    case 14:
      let length = rng.pick([300, 5_000, 100_000])
      return replaceValue(&bytes, with: String(repeating: "a", count: length), name: "long-string(\(length))")
    case 15:
      let huge = rng.pick([
        String(repeating: "9", count: 400), "18446744073709551616", "-9223372036854775809", "1e999",
        "0x7fffffffffffffff",
      ])
      return replaceValue(&bytes, with: huge, name: "huge-number")
    case 16:
      let depth = rng.pick([50, 300, 990, 1_100, 20_000])
      return replaceValue(&bytes, with: nested(depth), name: "deep(\(depth))")
    case 17:
      guard dialect == .yaml else { return mutateOnce(&bytes) }
      let asKey = rng.chance(0.3)
      return replaceValue(&bytes, with: Self.aliasBomb(asKey: asKey), name: asKey ? "alias-bomb-key" : "alias-bomb")
    case 18:
      guard dialect == .yaml else { return mutateOnce(&bytes) }
      return editLines(&bytes, "indent") { lines, i, rng in
        if rng.chance(0.5) {
          lines[i].insert(contentsOf: Array(repeating: UInt8(ascii: " "), count: 1 + rng.below(3)), at: 0)
        } else if lines[i].first == UInt8(ascii: " ") {
          lines[i].removeFirst()
        } else {
          lines[i].insert(UInt8(ascii: "\t"), at: 0)
        }
      }
    case 19:
      let copy = bytes
      bytes += dialect == .yaml ? Array("\n---\n".utf8) + copy : copy
      return "doubled"
    case 20:
      return replaceValue(&bytes, with: quoted(rng.pick(Self.hostilePaths)), name: "path")
    default:
      guard !vocabulary.isEmpty else { return mutateOnce(&bytes) }
      return replaceValue(&bytes, with: rng.pick(vocabulary), name: "vocabulary")
    }
  }

  private mutating func valueToTry() -> String {
    if !vocabulary.isEmpty && rng.chance(0.25) { return rng.pick(vocabulary) }
    return rng.pick(hostileValues)
  }

  private func quoted(_ path: String) -> String {
    switch dialect {
    case .yaml, .json:
      var out = "\""
      for c in path.unicodeScalars {
        switch c {
        case "\n": out += "\\n"
        case "\"": out += "\\\""
        default: out.unicodeScalars.append(c)
        }
      }
      return out.replacingOccurrences(of: "\\\\0", with: "\\u0000") + "\""
    case .xml: return path
    }
  }

  private mutating func nested(_ depth: Int) -> String {
    switch dialect {
    case .yaml, .json:
      let (open, close) = rng.chance(0.5) ? ("[", "]") : (dialect == .json ? "{\"a\":" : "{a: ", "}")
      let closing = rng.chance(0.8) ? String(repeating: close, count: depth) : ""
      return String(repeating: open, count: depth) + (open == "[" ? "1" : "1") + closing
    case .xml:
      return String(repeating: "<Contents>", count: depth) + "x" + String(repeating: "</Contents>", count: depth)
    }
  }

  /// A flow value whose aliases expand to 10^9 scalars ("billion laughs"); as a mapping key it
  /// makes a YAML library that hashes keys walk the whole expansion.
  public static func aliasBomb(asKey: Bool = false) -> String {
    var parts = ["&b0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in 1...9 {
      parts.append("&b\(level) [" + Array(repeating: "*b\(level - 1)", count: 10).joined(separator: ", ") + "]")
    }
    let bomb = "[" + parts.joined(separator: ", ") + "]"
    return asKey ? "{\(bomb): 1}" : bomb
  }

  private mutating func unknownKeyLine() -> String {
    switch dialect {
    case .yaml:
      let indent = String(repeating: " ", count: rng.pick([0, 2, 4, 6]))
      return indent + rng.pick(["unknown_key: 1", "- extra", "version: 2", "stages: {}", "? complex", "<<: *a"])
    case .json:
      return rng.pick(["\"unknown\": 1,", "{", "],", "\"items\": [{\"name\": \"x\"}],"])
    case .xml:
      return rng.pick([
        "<Contents><Key>x</Key></Contents>", "<Unknown>1</Unknown>", "<?xml version=\"1.0\"?>",
        "<IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken>",
      ])
    }
  }

  // MARK: - Line edits

  private mutating func editLines(
    _ bytes: inout [UInt8], _ name: String, _ edit: (inout [[UInt8]], Int, inout SplitMix64) -> Void
  ) -> String {
    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    guard !lines.isEmpty else { return name + "(none)" }
    let i = rng.below(lines.count)
    edit(&lines, i, &rng)
    bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
    return "\(name)@line\(i + 1)"
  }

  /// Replaces the value of a `key: value` (YAML), `"key": value` (JSON) or `<T>value</T>` (XML)
  /// on a random line that has one.
  private mutating func replaceValue(_ bytes: inout [UInt8], with value: String, name: String) -> String {
    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    let candidates = lines.indices.filter { valueRange(in: lines[$0]) != nil }
    guard !candidates.isEmpty else {
      bytes += Array(value.utf8)
      return name + "(appended)"
    }
    let i = rng.pick(candidates)
    let range = valueRange(in: lines[i])!
    lines[i].replaceSubrange(range, with: Array(value.utf8))
    bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
    return "\(name)@line\(i + 1)"
  }

  private func valueRange(in line: [UInt8]) -> Range<Int>? {
    switch dialect {
    case .yaml:
      if let colon = firstIndex(of: Array(": ".utf8), in: line) { return (colon + 2)..<line.count }
      if let dash = firstIndex(of: Array("- ".utf8), in: line) { return (dash + 2)..<line.count }
      return nil
    case .json:
      guard let colon = firstIndex(of: Array("\": ".utf8), in: line) else { return nil }
      var end = line.count
      if line.last == UInt8(ascii: ",") { end -= 1 }
      return (colon + 3)..<max(colon + 3, end)
    case .xml:
      guard let close = firstIndex(of: Array(">".utf8), in: line),
        let open = firstIndex(of: Array("</".utf8), in: Array(line[(close + 1)...]))
      else { return nil }
      return (close + 1)..<(close + 1 + open)
    }
  }

  private mutating func replaceKey(_ bytes: inout [UInt8]) -> String {
    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
    let separator = dialect == .yaml ? Array(": ".utf8) : Array("\": ".utf8)
    let candidates = lines.indices.filter { firstIndex(of: separator, in: lines[$0]) != nil }
    guard dialect != .xml, !candidates.isEmpty else { return mutateOnce(&bytes) }
    let i = rng.pick(candidates)
    let colon = firstIndex(of: separator, in: lines[i])!
    var start = 0
    while start < colon, lines[i][start] == UInt8(ascii: " ") || lines[i][start] == UInt8(ascii: "-") { start += 1 }
    let keys =
      dialect == .yaml
      ? ["unknown", "\"a\\nb\"", "\"\"", "[a]", "{a: 1}", "? x", "1", "null", "~", "\"\\u0000\"", "*x", "&a k"]
        + vocabulary.filter { !$0.contains(" ") }
      : ["\"unknown", "\"", "\"\\u0000", "\"a\\nb", "\"items", "\"name", "\"size", "\"version", "\"run"]
    lines[i].replaceSubrange(start..<colon, with: Array(rng.pick(keys).utf8))
    bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
    return "key@line\(i + 1)"
  }

  private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
    for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
      return i
    }
    return nil
  }
}
