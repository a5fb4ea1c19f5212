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

/// A directory's object: the canonical JSON array of its files (docs/architecture.md §3).
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
    // Exact size first, then one pass of unchecked writes: this runs on every add and on status
    // of a changed directory, over up to hundreds of thousands of entries.
    var capacity = 2
    for entry in entries {
      capacity += Self.fixedEntryBytes + Self.escapedLength(entry.path) + Self.decimalLength(entry.size)
      if !entry.exec { capacity += 1 }
    }
    capacity += max(0, entries.count - 1)
    return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
      var w = ByteWriter(buffer: buffer)
      w.put(UInt8(ascii: "["))
      entries.withUnsafeBufferPointer { entries in
        for i in entries.indices {
          if i > 0 { w.put(UInt8(ascii: ",")) }
          w.put(Self.pathKey)
          w.putJSONString(entries[i].path)
          w.put(Self.hashKey)
          w.putHex(entries[i].hash)
          w.put(Self.sizeKey)
          w.putDecimal(entries[i].size)
          w.put(entries[i].exec ? Self.execTrue : Self.execFalse)
        }
      }
      w.put(UInt8(ascii: "]"))
      precondition(w.position == capacity, "manifest size miscounted")
      count = w.position
    }
  }

  private static let pathKey: StaticString = #"{"path":"#
  private static let hashKey: StaticString = #","hash":"sha256:"#
  private static let sizeKey: StaticString = #"","size":"#
  private static let execTrue: StaticString = #","exec":true}"#
  private static let execFalse: StaticString = #","exec":false}"#
  private static let fixedEntryBytes =
    pathKey.utf8CodeUnitCount + hashKey.utf8CodeUnitCount + 64 + sizeKey.utf8CodeUnitCount
    + execTrue.utf8CodeUnitCount

  static func escapedLength(_ s: String) -> Int {
    var n = 2
    for b in s.utf8 {
      switch b {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09: n += 2
      case 0..<0x20: n += 6
      default: n += 1
      }
    }
    return n
  }

  static func decimalLength(_ value: Int64) -> Int {
    var n = value < 0 ? 2 : 1
    var v = value.magnitude
    while v >= 10 {
      v /= 10
      n += 1
    }
    return n
  }

  /// The manifest's object id: the SHA-256 of its canonical JSON.
  public func objectID() -> ObjectID { SHA256Hasher.hash(canonicalJSON()) }

  /// Parses a manifest; throws `StorageError.corruptManifest` on anything that is not one.
  public static func parse(_ bytes: [UInt8], id: ObjectID) throws -> TreeManifest {
    var parser = ManifestParser(bytes: bytes)
    guard let entries = parser.parse() else { throw StorageError.corruptManifest(id) }
    // Manifests dv wrote are already in canonical order; sort only what another tool wrote.
    for i in entries.indices.dropFirst() where !utf8Precedes(entries[i - 1].path, entries[i].path) {
      return TreeManifest(entries: entries)
    }
    return TreeManifest(sortedEntries: entries)
  }
}

/// Unchecked appends into a buffer whose size was computed beforehand.
private struct ByteWriter {
  let buffer: UnsafeMutableBufferPointer<UInt8>
  var position = 0

  init(buffer: UnsafeMutableBufferPointer<UInt8>) { self.buffer = buffer }

  mutating func put(_ byte: UInt8) {
    buffer[position] = byte
    position += 1
  }

  mutating func put(_ bytes: [UInt8]) {
    for b in bytes { put(b) }
  }

  mutating func put(_ text: StaticString) {
    (buffer.baseAddress! + position).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
    position += text.utf8CodeUnitCount
  }

  mutating func putHex(_ id: ObjectID) {
    withUnsafeBytes(of: id.words) { raw in
      for b in raw {
        buffer[position] = Self.hexDigit(b >> 4)
        buffer[position + 1] = Self.hexDigit(b & 0xF)
        position += 2
      }
    }
  }

  @inline(__always)
  static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x57 + v }

  /// Sizes are never negative (the parser rejects them).
  mutating func putDecimal(_ value: Int64) {
    precondition(value >= 0)
    let length = TreeManifest.decimalLength(value)
    var v = value
    for k in stride(from: length - 1, through: 0, by: -1) {
      buffer[position + k] = UInt8(ascii: "0") + UInt8(v % 10)
      v /= 10
    }
    position += length
  }

  mutating func putJSONString(_ s: String) {
    put(UInt8(ascii: "\""))
    let copied: Bool? = s.utf8.withContiguousStorageIfAvailable { bytes in
      guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
        return false
      }
      (buffer.baseAddress! + position).update(from: bytes.baseAddress!, count: bytes.count)
      position += bytes.count
      return true
    }
    if copied == true {
      put(UInt8(ascii: "\""))
      return
    }
    for b in s.utf8 {
      switch b {
      case UInt8(ascii: "\""): put([UInt8(ascii: "\\"), UInt8(ascii: "\"")])
      case UInt8(ascii: "\\"): put([UInt8(ascii: "\\"), UInt8(ascii: "\\")])
      case 0x0A: put([UInt8(ascii: "\\"), UInt8(ascii: "n")])
      case 0x0D: put([UInt8(ascii: "\\"), UInt8(ascii: "r")])
      case 0x09: put([UInt8(ascii: "\\"), UInt8(ascii: "t")])
      case 0..<0x20:
        put(Array(#"\u00"#.utf8))
        put(Self.hexDigit(b >> 4))
        put(Self.hexDigit(b & 0xF))
      default: put(b)
      }
    }
    put(UInt8(ascii: "\""))
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
    guard expect(UInt8(ascii: "}")), let path, let hash, let size, size >= 0, Self.isSafeRelativePath(path) else {
      return nil
    }
    return TreeEntry(path: path, hash: hash, size: size, exec: exec)
  }

  /// True for a normalized relative path: no leading "/", no empty, "." or ".." component, no NUL.
  static func isSafeRelativePath(_ path: String) -> Bool {
    var componentStart = true
    var dots = 0
    var length = 0
    for b in path.utf8 {
      // A NUL ends the path where the system reads it.
      if b == 0 { return false }
      if b == UInt8(ascii: "/") {
        if componentStart || (length == dots && dots <= 2) { return false }
        componentStart = true
        dots = 0
        length = 0
        continue
      }
      componentStart = false
      length += 1
      if b == UInt8(ascii: ".") { dots += 1 }
    }
    return !componentStart && !(length == dots && dots <= 2)
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
