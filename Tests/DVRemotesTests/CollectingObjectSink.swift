import DVRemotes

/// Collects what `Remote.read` streams: every `begin` offset, and the bytes since the last
/// `begin` (a retry starts over).
final class CollectingObjectSink: ObjectSink {
  private(set) var offsets: [Int64] = []
  private(set) var bytes: [UInt8] = []

  func begin(at offset: Int64) throws {
    offsets.append(offset)
    bytes.removeAll(keepingCapacity: true)
  }

  func write(_ chunk: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: chunk) }

  /// Bytes `range` of the object, given that the collected bytes start at the last `begin`
  /// offset (a server that ignored the range starts at 0); nil when they do not cover it.
  func slice(_ range: Range<Int64>) -> [UInt8]? {
    guard let start = offsets.last, start <= range.lowerBound,
      range.upperBound - start <= Int64(bytes.count)
    else { return nil }
    return Array(bytes[Int(range.lowerBound - start)..<Int(range.upperBound - start)])
  }
}
