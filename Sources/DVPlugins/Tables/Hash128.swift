/// A fast non-cryptographic 128-bit hash of bytes, for finding duplicate records: two lanes of
/// 64x64->128-bit multiply-and-fold mixing over 16-byte blocks, with the length folded in so that
/// the hashes of consecutive fields cannot run into one another.
public struct Hash128: Hashable, Sendable {
  public var high: UInt64
  public var low: UInt64

  // Odd constants with well-spread bits (digits of pi, e and the golden ratio).
  private static let k0: UInt64 = 0x243F_6A88_85A3_08D3
  private static let k1: UInt64 = 0x1319_8A2E_0370_7345
  private static let k2: UInt64 = 0xA409_3822_299F_31D1
  private static let k3: UInt64 = 0x082E_FA98_EC4E_6C89
  private static let k4: UInt64 = 0x9E37_79B9_7F4A_7C15
  private static let k5: UInt64 = 0xB7E1_5162_8AED_2A6B

  public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// Multiplies to 128 bits and folds the halves together.
  @inline(__always)
  private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let product = a.multipliedFullWidth(by: b)
    return product.high ^ product.low
  }

  /// Up to 8 bytes as a little-endian integer.
  @inline(__always)
  private static func partial(_ p: UnsafeRawPointer, _ count: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<count { value |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
    return value
  }

  /// The hash of `bytes`; different seeds give unrelated hashes.
  public init(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) {
    let count = bytes.count
    var a = seed ^ Self.k0
    var b = (seed &* Self.k4) ^ Self.k1 ^ UInt64(truncatingIfNeeded: count)
    if let base = bytes.baseAddress {
      var offset = 0
      while count - offset >= 16 {
        let x = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        let y = base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
        let na = Self.fold(a ^ x, Self.k2 ^ y)
        let nb = Self.fold(b ^ y, Self.k3 ^ ((x << 32) | (x >> 32)))
        a = na &+ b
        b = nb ^ a
        offset += 16
      }
      let rest = count - offset
      var x: UInt64 = 0
      var y: UInt64 = 0
      if rest > 8 {
        x = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        y = Self.partial(base + offset + 8, rest - 8)
      } else if rest > 0 {
        x = Self.partial(base + offset, rest)
      }
      a = Self.fold(a ^ x ^ Self.k5, Self.k2 ^ y)
      b = Self.fold(b ^ y ^ Self.k4, Self.k3 ^ x)
    }
    high = Self.fold(a ^ Self.k1, b ^ Self.k4)
    low = Self.fold(b ^ Self.k0, a ^ Self.k5) ^ high
  }

  /// Folds more bytes in: hashing fields one after another gives a hash of the sequence.
  public mutating func combine(_ bytes: UnsafeRawBufferPointer) { combine(bytes, tag: 0) }

  /// Folds more bytes in with a small tag (a field's kind or column) that tells apart equal bytes
  /// of different meaning, at the cost of one hash.
  public mutating func combine(_ bytes: UnsafeRawBufferPointer, tag: UInt64) {
    let next = Hash128(bytes, seed: low ^ ((high << 23) | (high >> 41)) ^ (tag &* Self.k5))
    high = next.high ^ (high &* Self.k4)
    low = next.low &+ high
  }

  /// Folds a number in (a tag, a column index).
  public mutating func combine(_ value: UInt64) {
    withUnsafeBytes(of: value.littleEndian) { combine($0) }
  }
}
