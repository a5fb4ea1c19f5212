import DVBasics

/// One file of a tracked directory.
public struct TreeEntry: Sendable, Equatable {
  /// Path relative to the directory, `/`-separated.
  public var path: String
  public var hash: ObjectID
  public var size: Int64
  /// True when the file had an execute bit.
  public var exec: Bool

  public init(path: String, hash: ObjectID, size: Int64, exec: Bool) {
    self.path = path
    self.hash = hash
    self.size = size
    self.exec = exec
  }
}

/// A directory's object: the canonical JSON array of its files (DESIGN.md §3).
///
/// Canonical form: `[{"path":…,"hash":"sha256:…","size":N,"exec":false},…]`, sorted by the path's
/// UTF-8 bytes, no whitespace, strings escaped minimally (`"`, `\`, and control characters).
/// The same directory content always serializes to the same bytes, so its hash is stable.
public struct TreeManifest: Sendable, Equatable {
  /// Entries in path byte order.
  public private(set) var entries: [TreeEntry]

  /// Sorts `entries` into canonical order.
  public init(entries: [TreeEntry]) {
    self.entries = entries.sorted { utf8Precedes($0.path, $1.path) }
  }

  init(sortedEntries: [TreeEntry]) { entries = sortedEntries }

  /// Total bytes of all files.
  public var totalSize: Int64 { entries.reduce(0) { $0 + $1.size } }

  /// The canonical JSON bytes.
  public func canonicalJSON() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(entries.count * 128 + 2)
    out.append(UInt8(ascii: "["))
    for (i, entry) in entries.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      out.append(contentsOf: #"{"path":"#.utf8)
      Self.appendJSONString(entry.path, to: &out)
      out.append(contentsOf: #","hash":"sha256:"#.utf8)
      out.append(contentsOf: entry.hash.hex.utf8)
      out.append(contentsOf: #"","size":"#.utf8)
      out.append(contentsOf: String(entry.size).utf8)
      out.append(contentsOf: entry.exec ? #","exec":true}"#.utf8 : #","exec":false}"#.utf8)
    }
    out.append(UInt8(ascii: "]"))
    return out
  }

  /// The manifest's object id: the SHA-256 of its canonical JSON.
  public func objectID() -> ObjectID { SHA256Hasher.hash(canonicalJSON()) }

  static func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for b in s.utf8 {
      switch b {
      case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        out.append(contentsOf: Array(#"\u00"#.utf8))
        out.append(hex[Int(b >> 4)])
        out.append(hex[Int(b & 0xF)])
      default: out.append(b)
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  /// Parses a manifest; throws `StorageError.corruptManifest` on anything that is not one.
  public static func parse(_ bytes: [UInt8], id: ObjectID) throws -> TreeManifest {
    var parser = ManifestParser(bytes: bytes)
    guard let entries = parser.parse() else { throw StorageError.corruptManifest(id) }
    return TreeManifest(entries: entries)
  }
}

/// A small strict JSON reader for the manifest shape; accepts any key order and whitespace.
private struct ManifestParser {
  let bytes: [UInt8]
  var i = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  mutating func skipSpace() {
    while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
  }

  mutating func expect(_ c: UInt8) -> Bool {
    skipSpace()
    guard i < bytes.count, bytes[i] == c else { return false }
    i += 1
    return true
  }

  mutating func parse() -> [TreeEntry]? {
    guard expect(UInt8(ascii: "[")) else { return nil }
    var entries: [TreeEntry] = []
    if expect(UInt8(ascii: "]")) { return finish(entries) }
    repeat {
      guard let e = entry() else { return nil }
      entries.append(e)
    } while expect(UInt8(ascii: ","))
    guard expect(UInt8(ascii: "]")) else { return nil }
    return finish(entries)
  }

  mutating func finish(_ entries: [TreeEntry]) -> [TreeEntry]? {
    skipSpace()
    return i == bytes.count ? entries : nil
  }

  mutating func entry() -> TreeEntry? {
    guard expect(UInt8(ascii: "{")) else { return nil }
    var path: String?
    var hash: ObjectID?
    var size: Int64?
    var exec = false
    repeat {
      guard let key = string(), expect(UInt8(ascii: ":")) else { return nil }
      switch key {
      case "path": path = string()
      case "hash": hash = objectID()
      case "size": size = integer()
      case "exec":
        guard let b = boolean() else { return nil }
        exec = b
      default: return nil
      }
    } while expect(UInt8(ascii: ","))
    guard expect(UInt8(ascii: "}")), let path, let hash, let size, size >= 0,
      RelativePath(validating: path)?.value == path
    else { return nil }
    return TreeEntry(path: path, hash: hash, size: size, exec: exec)
  }

  mutating func integer() -> Int64? {
    skipSpace()
    var value: Int64 = 0
    let start = i
    while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
      if o1 || o2 { return nil }
      value = a
      i += 1
    }
    return i > start ? value : nil
  }

  mutating func boolean() -> Bool? {
    skipSpace()
    if bytes[i...].starts(with: "true".utf8) {
      i += 4
      return true
    }
    if bytes[i...].starts(with: "false".utf8) {
      i += 5
      return false
    }
    return nil
  }

  /// `"sha256:<64 hex>"` read straight from the bytes.
  mutating func objectID() -> ObjectID? {
    skipSpace()
    guard i + 73 <= bytes.count, bytes[i] == UInt8(ascii: "\""), bytes[i + 72] == UInt8(ascii: "\""),
      bytes[(i + 1)..<(i + 8)].elementsEqual("sha256:".utf8)
    else { return nil }
    defer { i += 73 }
    return ObjectID(hex: bytes[(i + 8)..<(i + 72)])
  }

  mutating func string() -> String? {
    guard expect(UInt8(ascii: "\"")) else { return nil }
    // Fast path: no escapes.
    var j = i
    while j < bytes.count, bytes[j] != UInt8(ascii: "\""), bytes[j] != UInt8(ascii: "\\"), bytes[j] >= 0x20 { j += 1 }
    if j < bytes.count, bytes[j] == UInt8(ascii: "\"") {
      defer { i = j + 1 }
      return String(validating: bytes[i..<j], as: UTF8.self)
    }
    var out: [UInt8] = []
    while i < bytes.count {
      let b = bytes[i]
      i += 1
      switch b {
      case UInt8(ascii: "\""):
        return String(validating: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard i < bytes.count else { return nil }
        let e = bytes[i]
        i += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "u"):
          guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16),
            let scalar = Unicode.Scalar(v)
          else { return nil }
          i += 4
          out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default: return nil
        }
      case 0..<0x20: return nil
      default: out.append(b)
      }
    }
    return nil
  }
}
