import COpenSSL
import DVBasics
import DVStorage
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Names and byte layouts of packs and pack indexes on a remote (docs/formats.md §3–§4).
public enum PackFormat {
  /// Where packs and their indexes live under a remote's root.
  public static let prefix = "packs/"
  /// The first bytes of every pack.
  public static let packMagic = PackLayout.packMagic
  /// The first bytes of every pack index.
  public static let indexMagic = PackLayout.indexMagic
  /// The largest object an index may list (docs/formats.md §4).
  public static let maximumObjectSize = PackLayout.maximumObjectSize
  /// Bytes of one index entry: id, offset, length.
  static let entrySize = PackLayout.entrySize
  /// Bytes of an index around its entries: magic and count before, pack hash, pack size and
  /// checksum after.
  static let indexOverhead = PackLayout.indexOverhead

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
    let slots = entries.map { entry in
      PackLayout.Slot(id: ObjectID(hex: Array(entry.id.utf8))!, offset: entry.offset, length: entry.length)
    }
    return PackLayout.encodeIndex(slots, pack: ObjectID(hex: Array(name.utf8))!, packSize: packSize)
  }

  /// Reads and checks an index file's bytes; `name` is the pack name its key gave, `url` names
  /// it in errors. Throws `PackError.invalidIndex` for anything but a valid index of that pack.
  public static func decode(_ bytes: [UInt8], name: String, url: String) throws -> PackIndex {
    guard let pack = ObjectID(hex: Array(name.utf8)) else {
      throw PackError.invalidIndex(url: url, reason: "its name is not a pack name")
    }
    do {
      let (slots, packSize) = try PackLayout.decodeIndex(bytes, pack: pack)
      var index = PackIndex(name: name, packSize: packSize, entries: [])
      index.entries = slots.map { Entry(id: $0.id.hex, offset: $0.offset, length: $0.length) }
      return index
    } catch {
      throw PackError.invalidIndex(url: url, reason: error.reason)
    }
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
