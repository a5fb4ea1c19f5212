import DVBasics
import Foundation

/// A contiguous byte range of one pack to read, and the objects wanted from it.
struct PackSegment: Sendable {
  var pack: String
  /// Wanted objects, sorted by offset.
  var entries: [PackIndex.Entry]
  var range: Range<Int64> { entries.first!.offset..<entries.last!.end }

  /// Joins the wanted objects of one pack into segments (docs/formats.md §5): sorted by offset,
  /// a gap of up to `maxGap` bytes is read through, and no segment grows past `maxLength` (an
  /// object larger than that is a segment of its own).
  static func plan(
    pack: String, wanted: [PackIndex.Entry], maxGap: Int64 = 1 << 20, maxLength: Int64 = 8 << 20
  ) -> [PackSegment] {
    var segments: [PackSegment] = []
    var current: [PackIndex.Entry] = []
    for entry in wanted.sorted(by: { $0.offset < $1.offset }) {
      if let first = current.first, let last = current.last,
        entry.offset - last.end > maxGap || entry.end - first.offset > maxLength || entry.offset < last.end
      {
        segments.append(PackSegment(pack: pack, entries: current))
        current = []
      }
      current.append(entry)
    }
    if !current.isEmpty { segments.append(PackSegment(pack: pack, entries: current)) }
    return segments
  }
}

/// Takes a segment of a pack as it streams in, cuts out the wanted objects, hashes each and
/// hands on the ones whose bytes match their id. A retry that starts over skips the objects
/// already handed on; an object whose bytes do not match is remembered as corrupt, not used.
final class PackExtractor: ObjectSink {
  private let entries: [PackIndex.Entry]
  private let deliver: (PackIndex.Entry, UnsafeRawBufferPointer) throws -> Void
  private let hasher = SHA256Stream()
  /// The next byte's offset in the pack.
  private var position: Int64 = 0
  /// The entry being read or waited for.
  private var next = 0
  /// Bytes of the entry being read (nil: not inside one).
  private var object: [UInt8]?
  private(set) var delivered = Set<String>()
  /// Ids whose bytes did not hash to them, with what they hashed to.
  private(set) var corrupt: [String: String] = [:]

  /// `entries` sorted by offset; `deliver` gets each verified object (and may throw, which
  /// stops the read).
  init(entries: [PackIndex.Entry], deliver: @escaping (PackIndex.Entry, UnsafeRawBufferPointer) throws -> Void) {
    self.entries = entries
    self.deliver = deliver
  }

  /// The wanted entries not delivered yet.
  var undelivered: [PackIndex.Entry] { entries.filter { !delivered.contains($0.id) } }

  func begin(at offset: Int64) throws {
    position = offset
    next = 0
    object = nil
    hasher.reset()
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    var rest = bytes
    while !rest.isEmpty {
      // Move past entries that are behind, done, or whose first byte was missed.
      while next < entries.count
        && (entries[next].end <= position || (object == nil && entries[next].offset < position)
          || (object == nil && delivered.contains(entries[next].id)))
      {
        next += 1
      }
      guard next < entries.count else { return }
      let entry = entries[next]
      if position < entry.offset {
        let skip = Int(min(Int64(rest.count), entry.offset - position))
        rest = UnsafeRawBufferPointer(rebasing: rest[skip...])
        position += Int64(skip)
        continue
      }
      if object == nil {
        object = []
        object!.reserveCapacity(Int(min(entry.length, 1 << 20)))
      }
      let take = Int(min(Int64(rest.count), entry.end - position))
      let piece = UnsafeRawBufferPointer(rebasing: rest[..<take])
      object!.append(contentsOf: piece)
      hasher.update(piece)
      rest = UnsafeRawBufferPointer(rebasing: rest[take...])
      position += Int64(take)
      if position == entry.end { try finish(entry) }
    }
  }

  /// Reads an empty object, which no byte ever arrives for.
  func finishEmptyObjects() throws {
    hasher.reset()
    for entry in entries where entry.length == 0 && !delivered.contains(entry.id) {
      object = []
      try finish(entry)
    }
  }

  private func finish(_ entry: PackIndex.Entry) throws {
    let bytes = object ?? []
    object = nil
    next += 1
    let actual = Hex.string(hasher.finish())
    guard actual == entry.id else {
      corrupt[entry.id] = actual
      return
    }
    try bytes.withUnsafeBytes { try deliver(entry, $0) }
    delivered.insert(entry.id)
    corrupt[entry.id] = nil
  }
}
