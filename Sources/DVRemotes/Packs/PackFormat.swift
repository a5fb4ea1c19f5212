import COpenSSL
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Names and byte layouts of packs and pack indexes on a remote (docs/formats.md §3–§4).
public enum PackFormat {
  /// Where packs and their indexes live under a remote's root.
  public static let prefix = "packs/"
  /// The first bytes of every pack.
  public static let packMagic: [UInt8] = Array("DVPACK01".utf8)
  /// The first bytes of every pack index.
  public static let indexMagic: [UInt8] = Array("DVPKIDX1".utf8)
  /// The largest object an index may list (docs/formats.md §4).
  public static let maximumObjectSize: Int64 = 64 << 20
  /// Bytes of one index entry: id, offset, length.
  static let entrySize = 48
  /// Bytes of an index around its entries: magic and count before, pack hash, pack size and
  /// checksum after.
  static let indexOverhead = 88

  /// The key of the pack named `name` (64 hex).
  public static func packKey(_ name: String) -> String { prefix + name + ".pack" }
  /// The key of the index of the pack named `name`.
  public static func indexKey(_ name: String) -> String { prefix + name + ".idx" }

  /// The pack name an index key (`packs/<64 hex>.idx`) names; nil for any other key, so a
  /// listing's keys are validated before use.
  public static func packName(fromIndexKey key: String) -> String? {
    guard key.hasPrefix(prefix), key.hasSuffix(".idx") else { return nil }
    let name = key.utf8.dropFirst(prefix.utf8.count).dropLast(4)
    return TransferEngine.isObjectID(name) ? String(decoding: name, as: UTF8.self) : nil
  }

  /// The pack name a pack key (`packs/<64 hex>.pack`) names, or nil.
  public static func packName(fromPackKey key: String) -> String? {
    guard key.hasPrefix(prefix), key.hasSuffix(".pack") else { return nil }
    let name = key.utf8.dropFirst(prefix.utf8.count).dropLast(5)
    return TransferEngine.isObjectID(name) ? String(decoding: name, as: UTF8.self) : nil
  }
}

/// Why a pack or an index cannot be used.
public enum PackError: DVError {
  /// An index's bytes are not a valid index (docs/formats.md §4).
  case invalidIndex(url: String, reason: String)
  /// A local file to be packed does not hash to its object's id.
  case corruptSource(id: String, path: String, actual: String)

  public var kind: FailureKind { .failed }

  public var description: String {
    switch self {
    case .invalidIndex(let url, let reason):
      return "\(url) is not a valid pack index (\(reason)); it was not used"
    case .corruptSource(let id, let path, let actual):
      return
        "'\(path)' should hold object \(id) but hashes to \(actual); it was not pushed (run `dv fsck`, then `dv add` the data again)"
    }
  }
}

/// The index of one pack: where each of its objects lies.
public struct PackIndex: Sendable, Equatable {
  /// One object in the pack.
  public struct Entry: Sendable, Equatable {
    /// The object's id (64 hex).
    public var id: String
    /// Its first byte in the pack.
    public var offset: Int64
    /// Its length in bytes.
    public var length: Int64

    public init(id: String, offset: Int64, length: Int64) {
      self.id = id
      self.offset = offset
      self.length = length
    }

    /// The byte after its last.
    public var end: Int64 { offset + length }
  }

  /// The pack's name: the hex SHA-256 of the pack file.
  public var name: String
  /// The pack file's size.
  public var packSize: Int64
  /// The objects, sorted by id.
  public var entries: [Entry]

  /// Sorts `entries` by id.
  public init(name: String, packSize: Int64, entries: [Entry]) {
    self.name = name
    self.packSize = packSize
    self.entries = entries.sorted { $0.id < $1.id }
  }

  /// The index file's bytes (docs/formats.md §4).
  public func encoded() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(PackFormat.indexOverhead + PackFormat.entrySize * entries.count)
    out += PackFormat.indexMagic
    Self.append(UInt64(entries.count), to: &out)
    for entry in entries {
      out += Hex.bytes(entry.id) ?? []
      Self.append(UInt64(entry.offset), to: &out)
      Self.append(UInt64(entry.length), to: &out)
    }
    out += Hex.bytes(name) ?? []
    Self.append(UInt64(packSize), to: &out)
    out += SHA256Stream.digest(out)
    return out
  }

  /// Reads and checks an index file's bytes; `name` is the pack name its key gave, `url` names
  /// it in errors. Throws `PackError.invalidIndex` for anything but a valid index of that pack.
  public static func decode(_ bytes: [UInt8], name: String, url: String) throws -> PackIndex {
    func invalid(_ reason: String) -> PackError { .invalidIndex(url: url, reason: reason) }
    guard bytes.count >= PackFormat.indexOverhead, Array(bytes[0..<8]) == PackFormat.indexMagic else {
      throw invalid("no index header")
    }
    let count = readUInt64(bytes, at: 8)
    guard count <= UInt64(bytes.count / PackFormat.entrySize),
      bytes.count == PackFormat.indexOverhead + PackFormat.entrySize * Int(count)
    else { throw invalid("its length does not match its \(count) entries") }
    let body = bytes.count - 32
    guard SHA256Stream.digest(bytes[0..<body]) == Array(bytes[body...]) else { throw invalid("checksum mismatch") }
    let trailer = 16 + PackFormat.entrySize * Int(count)
    guard Hex.string(bytes[trailer..<trailer + 32]) == name else { throw invalid("it names another pack") }
    let packSize = readUInt64(bytes, at: trailer + 32)
    guard packSize <= UInt64(Int64.max) else { throw invalid("pack size out of range") }
    var entries: [Entry] = []
    entries.reserveCapacity(Int(count))
    var previous: ArraySlice<UInt8>?
    for i in 0..<Int(count) {
      let at = 16 + PackFormat.entrySize * i
      let id = bytes[at..<at + 32]
      if let previous, !previous.lexicographicallyPrecedes(id) { throw invalid("ids not strictly increasing") }
      previous = id
      let offset = readUInt64(bytes, at: at + 32)
      let length = readUInt64(bytes, at: at + 40)
      guard offset >= UInt64(PackFormat.packMagic.count), length <= packSize, offset <= packSize - length else {
        throw invalid("an entry lies outside the pack")
      }
      // Objects in packs are small; a reader holds one whole in memory while checking it.
      guard length <= UInt64(PackFormat.maximumObjectSize) else { throw invalid("an entry is larger than 64 MiB") }
      entries.append(Entry(id: Hex.string(id), offset: Int64(offset), length: Int64(length)))
    }
    var index = PackIndex(name: name, packSize: Int64(packSize), entries: [])
    index.entries = entries
    return index
  }

  private static func append(_ value: UInt64, to out: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
  }

  private static func readUInt64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
    return value
  }
}

/// Lowercase hex of digests, both ways, without formatting calls (many thousands per push).
enum Hex {
  private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

  static func string<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The bytes of 64 lowercase hex digits (an object id or pack name); nil for anything else.
  static func bytes(_ hex: String) -> [UInt8]? { TransferEngine.digest(hex: hex) }
}

/// An incremental SHA-256 (OpenSSL EVP; SHA-NI where the CPU has it).
final class SHA256Stream {
  private let context: OpaquePointer

  init() {
    context = EVP_MD_CTX_new()
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
  }

  deinit { EVP_MD_CTX_free(context) }

  /// Starts over.
  func reset() { EVP_DigestInit_ex(context, EVP_sha256(), nil) }

  func update(_ bytes: UnsafeRawBufferPointer) {
    if !bytes.isEmpty { EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
  }

  /// The 32 digest bytes; the stream starts over.
  func finish() -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &length)
    reset()
    return Array(digest[0..<32])
  }

  /// The digest of `bytes`.
  static func digest<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
    let stream = SHA256Stream()
    if let done = bytes.withContiguousStorageIfAvailable({ stream.update(UnsafeRawBufferPointer($0)) }) {
      _ = done
    } else {
      Array(bytes).withUnsafeBytes { stream.update($0) }
    }
    return stream.finish()
  }
}
