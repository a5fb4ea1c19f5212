/// The byte layout of packs and pack indexes (docs/formats.md §3–§4), shared by remotes and the
/// local cache: a pack is `DVPACK01` and its objects back to back; its index is `DVPKIDX1`, the
/// entry count, the entries sorted by id (id, offset, length), the pack's name and size, and a
/// SHA-256 of everything before it.
public enum PackLayout {
  /// The first bytes of every pack.
  public static let packMagic: [UInt8] = Array("DVPACK01".utf8)
  /// The first bytes of every pack index.
  public static let indexMagic: [UInt8] = Array("DVPKIDX1".utf8)
  /// The largest object an index may list.
  public static let maximumObjectSize: Int64 = 64 << 20
  /// Bytes of one index entry: id, offset, length.
  public static let entrySize = 48
  /// Bytes of an index around its entries: magic and count before, pack name, pack size and
  /// checksum after.
  public static let indexOverhead = 88

  /// Where one object lies in its pack.
  public struct Slot: Sendable, Equatable {
    public var id: ObjectID
    /// Its first byte in the pack.
    public var offset: Int64
    /// Its length in bytes.
    public var length: Int64

    public init(id: ObjectID, offset: Int64, length: Int64) {
      self.id = id
      self.offset = offset
      self.length = length
    }

    /// The byte after its last.
    public var end: Int64 { offset + length }
  }

  /// An index's bytes; `slots` must be sorted by id.
  public static func encodeIndex(_ slots: [Slot], pack: ObjectID, packSize: Int64) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(indexOverhead + entrySize * slots.count)
    out += indexMagic
    append(UInt64(slots.count), to: &out)
    for slot in slots {
      out += slot.id.bytes
      append(UInt64(slot.offset), to: &out)
      append(UInt64(slot.length), to: &out)
    }
    out += pack.bytes
    append(UInt64(packSize), to: &out)
    out += SHA256Hasher.hash(out).bytes
    return out
  }

  /// Why index bytes were refused.
  public struct InvalidIndex: Error, Sendable {
    public var reason: String
  }

  /// Reads and checks an index's bytes: the slots (sorted by id) and the pack size. Throws
  /// `InvalidIndex` for anything but a valid index of the pack named `pack`.
  public static func decodeIndex(_ bytes: [UInt8], pack: ObjectID) throws(InvalidIndex) -> (
    slots: [Slot], packSize: Int64
  ) {
    func invalid(_ reason: String) -> InvalidIndex { InvalidIndex(reason: reason) }
    guard bytes.count >= indexOverhead, bytes[0..<8].elementsEqual(indexMagic) else {
      throw invalid("no index header")
    }
    let count = readUInt64(bytes, at: 8)
    guard count <= UInt64(bytes.count / entrySize), bytes.count == indexOverhead + entrySize * Int(count) else {
      throw invalid("its length does not match its \(count) entries")
    }
    let body = bytes.count - 32
    guard SHA256Hasher.hash(Array(bytes[0..<body])).bytes.elementsEqual(bytes[body...]) else {
      throw invalid("checksum mismatch")
    }
    let trailer = 16 + entrySize * Int(count)
    guard bytes[trailer..<trailer + 32].elementsEqual(pack.bytes) else { throw invalid("it names another pack") }
    let packSize = readUInt64(bytes, at: trailer + 32)
    guard packSize <= UInt64(Int64.max) else { throw invalid("pack size out of range") }
    var slots: [Slot] = []
    slots.reserveCapacity(Int(count))
    var previous: ArraySlice<UInt8>?
    for i in 0..<Int(count) {
      let at = 16 + entrySize * i
      let id = bytes[at..<at + 32]
      if let previous, !previous.lexicographicallyPrecedes(id) { throw invalid("ids not strictly increasing") }
      previous = id
      let offset = readUInt64(bytes, at: at + 32)
      let length = readUInt64(bytes, at: at + 40)
      guard offset >= UInt64(packMagic.count), length <= packSize, offset <= packSize - length else {
        throw invalid("an entry lies outside the pack")
      }
      // Objects in packs are small; a reader holds one whole in memory while checking it.
      guard length <= UInt64(maximumObjectSize) else { throw invalid("an entry is larger than 64 MiB") }
      let objectID = bytes.withUnsafeBytes { ObjectID(digest: UnsafeRawBufferPointer(rebasing: $0[at..<at + 32])) }
      slots.append(Slot(id: objectID, offset: Int64(offset), length: Int64(length)))
    }
    return (slots, Int64(packSize))
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
