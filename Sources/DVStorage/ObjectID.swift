/// A SHA-256 content hash: the name of an object in the cache and on remotes.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The 32 digest bytes, as four words (cheap to hash and compare).
  let words: (UInt64, UInt64, UInt64, UInt64)

  /// Builds an id from 32 digest bytes.
  public init(digest: UnsafeRawBufferPointer) {
    precondition(digest.count == 32)
    words = (
      digest.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
      digest.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
      digest.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
      digest.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
    )
  }

  /// Builds an id from 32 digest bytes.
  public init(bytes: [UInt8]) {
    self = bytes.withUnsafeBytes { ObjectID(digest: $0) }
  }

  /// Parses `sha256:<64 lowercase hex>`; nil for anything else.
  public init?(_ text: String) {
    var utf8 = Array(text.utf8)
    let prefix = Array("sha256:".utf8)
    guard utf8.count == 71, utf8.starts(with: prefix) else { return nil }
    utf8.removeFirst(7)
    self.init(hex: utf8)
  }

  /// Parses 64 lowercase hex digits.
  public init?<C: Collection>(hex: C) where C.Element == UInt8 {
    guard hex.count == 64 else { return nil }
    let parsed =
      hex.withContiguousStorageIfAvailable { ObjectID(hexDigits: $0) }
      ?? Array(hex).withUnsafeBufferPointer { ObjectID(hexDigits: $0) }
    guard let parsed else { return nil }
    self = parsed
  }

  private init?(hexDigits hex: UnsafeBufferPointer<UInt8>) {
    var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    let ok = withUnsafeMutableBytes(of: &digest) { out -> Bool in
      for i in 0..<32 {
        guard let high = Self.nibble(hex[2 * i]), let low = Self.nibble(hex[2 * i + 1]) else { return false }
        out[i] = high << 4 | low
      }
      return true
    }
    guard ok else { return nil }
    words = digest
  }

  @inline(__always)
  private static func nibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c &- UInt8(ascii: "a") &+ 10
    default: return nil
    }
  }

  /// The 32 digest bytes.
  public var bytes: [UInt8] {
    withUnsafeBytes(of: words) { Array($0) }
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  /// 64 lowercase hex digits.
  public var hex: String {
    withUnsafeBytes(of: words) { raw in
      String(unsafeUninitializedCapacity: 64) { out in
        for (i, b) in raw.enumerated() {
          out[2 * i] = Self.hexDigits[Int(b >> 4)]
          out[2 * i + 1] = Self.hexDigits[Int(b & 0xF)]
        }
        return 64
      }
    }
  }

  /// `sha256:<hex>`, as written in pointers, lock files and manifests.
  public var description: String { "sha256:" + hex }

  /// A short form for messages: `sha256:3f2a9c1e`.
  public var short: String { "sha256:" + hex.prefix(8) }

  public static func == (a: ObjectID, b: ObjectID) -> Bool {
    a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(words.0)
    hasher.combine(words.1)
  }

  /// Byte order (as hex sorts), without building arrays: each word read big-endian.
  public static func < (a: ObjectID, b: ObjectID) -> Bool {
    if a.words.0 != b.words.0 { return a.words.0.bigEndian < b.words.0.bigEndian }
    if a.words.1 != b.words.1 { return a.words.1.bigEndian < b.words.1.bigEndian }
    if a.words.2 != b.words.2 { return a.words.2.bigEndian < b.words.2.bigEndian }
    return a.words.3.bigEndian < b.words.3.bigEndian
  }
}
