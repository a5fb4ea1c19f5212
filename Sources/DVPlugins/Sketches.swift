#if canImport(Glibc)
  import Glibc
#endif

// Bounded-memory summaries for the profile plugin: every one of them takes values one at a time,
// keeps a fixed amount of state, and is deterministic (the same input gives the same answer on
// every run, so a profile report's hash only changes when the data does).

/// A fast 64-bit hash of a byte string, for distinct counting and heavy hitters (not for
/// security). Reads 16 bytes per step and finishes with a full avalanche, so that the high bits
/// HyperLogLog uses are as well mixed as the low ones.
@inline(__always)
package func fieldHash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
  let k0: UInt64 = 0x9E37_79B9_7F4A_7C15
  let k1: UInt64 = 0xC2B2_AE3D_27D4_EB4F
  let n = bytes.count
  var h = seed ^ k0 ^ (UInt64(truncatingIfNeeded: n) &* k1)
  guard n > 0, let base = bytes.baseAddress else { return finalMix(h) }
  var i = 0
  while i + 16 <= n {
    let a = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
    let b = base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
    h = foldedMultiply(a ^ k0 ^ h, b ^ k1)
    i += 16
  }
  var a: UInt64 = 0
  var b: UInt64 = 0
  var shift: UInt64 = 0
  while i < n && shift < 64 {
    a |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
    shift += 8
    i += 1
  }
  shift = 0
  while i < n {
    b |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
    shift += 8
    i += 1
  }
  h = foldedMultiply(a ^ k0 ^ h, b ^ k1 ^ UInt64(truncatingIfNeeded: n))
  return finalMix(h)
}

@inline(__always)
private func foldedMultiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
  let product = a.multipliedFullWidth(by: b)
  return product.high ^ product.low
}

@inline(__always)
private func finalMix(_ value: UInt64) -> UInt64 {
  var x = value
  x ^= x >> 33
  x &*= 0xFF51_AFD7_ED55_8CCD
  x ^= x >> 33
  x &*= 0xC4CE_B9FE_1A85_EC53
  x ^= x >> 33
  return x
}

/// HyperLogLog distinct-count estimator with Ertl's improved estimator ("New cardinality
/// estimation algorithms for HyperLogLog sketches", 2017), which is unbiased from zero to huge
/// counts without HyperLogLog++'s empirical bias tables. Standard error is 1.04/sqrt(2^precision):
/// 0.8 % at the default precision 14 (16 KiB).
package struct HyperLogLog: Sendable {
  /// Register-index bits.
  package let precision: Int
  private var registers: [UInt8]

  package init(precision: Int = 14) {
    precondition((4...18).contains(precision))
    self.precision = precision
    registers = [UInt8](repeating: 0, count: 1 << precision)
  }

  /// Adds a value by its 64-bit hash.
  @inline(__always)
  package mutating func add(hash: UInt64) {
    let index = Int(truncatingIfNeeded: hash >> UInt64(64 - precision))
    let rest = hash << UInt64(precision)
    // The rank is the position of the first 1 bit after the index bits; an all-zero rest gets the
    // largest rank, 64 - precision + 1.
    let rank = UInt8(truncatingIfNeeded: min(rest.leadingZeroBitCount, 64 - precision) + 1)
    registers.withUnsafeMutableBufferPointer { r in
      if r[index] < rank { r[index] = rank }
    }
  }

  /// Combines another sketch of the same precision: the estimate of the union.
  package mutating func merge(_ other: HyperLogLog) {
    precondition(other.precision == precision)
    for i in registers.indices where other.registers[i] > registers[i] { registers[i] = other.registers[i] }
  }

  /// The estimated number of distinct values added.
  package var estimate: Double {
    let m = Double(registers.count)
    let q = 64 - precision
    var histogram = [Int](repeating: 0, count: q + 2)
    for r in registers { histogram[Int(r)] += 1 }
    if histogram[0] == registers.count { return 0 }
    var z = m * Self.tau(1 - Double(histogram[q + 1]) / m)
    for k in stride(from: q, through: 1, by: -1) { z = 0.5 * (z + Double(histogram[k])) }
    z += m * Self.sigma(Double(histogram[0]) / m)
    return 0.5 / log(2.0) * m * m / z
  }

  /// Corrects for registers still at zero (small counts).
  private static func sigma(_ x0: Double) -> Double {
    if x0 == 1 { return .infinity }
    var x = x0
    var y = 1.0
    var z = x0
    while true {
      x *= x
      let previous = z
      z += x * y
      y += y
      if z == previous { return z }
    }
  }

  /// Corrects for registers at the largest rank (counts near 2^64).
  private static func tau(_ x0: Double) -> Double {
    if x0 == 0 || x0 == 1 { return 0 }
    var x = x0
    var y = 1.0
    var z = 1 - x0
    while true {
      x = x.squareRoot()
      let previous = z
      y *= 0.5
      z -= (1 - x) * (1 - x) * y
      if z == previous { return z / 3 }
    }
  }
}

/// A set of 64-bit hashes mapped to small integers: open addressing with linear probing. The keys
/// are already well mixed, so they index the table directly instead of being hashed again as
/// Swift's Set and Dictionary would (that rehashing was a tenth of the profile plugin's time).
struct HashIndex {
  private var keys: [UInt64]
  private var values: [Int32]
  private var mask: Int
  private(set) var count = 0
  /// Key 0 marks an empty bucket; a real 0 is stored as this instead (a collision of two hashes
  /// out of 2^64, which the statistics tolerate).
  private static let zeroKey: UInt64 = 0x9E37_79B9_7F4A_7C15

  init(capacity: Int = 16) {
    var size = 16
    while size < capacity * 2 { size <<= 1 }
    keys = [UInt64](repeating: 0, count: size)
    values = [Int32](repeating: 0, count: size)
    mask = size - 1
  }

  @inline(__always)
  private func bucket(_ key: UInt64) -> Int { Int(truncatingIfNeeded: key) & mask }

  /// The value stored for `key`, if any.
  @inline(__always)
  func value(for hash: UInt64) -> Int32? {
    let key = hash == 0 ? Self.zeroKey : hash
    var i = bucket(key)
    while true {
      let found = keys[i]
      if found == key { return values[i] }
      if found == 0 { return nil }
      i = (i + 1) & mask
    }
  }

  /// Stores `value` for `hash`; false when the key was already there (its value is kept).
  @discardableResult
  @inline(__always)
  mutating func insert(_ hash: UInt64, value: Int32 = 0) -> Bool {
    let key = hash == 0 ? Self.zeroKey : hash
    var i = bucket(key)
    while true {
      let found = keys[i]
      if found == key { return false }
      if found == 0 { break }
      i = (i + 1) & mask
    }
    keys[i] = key
    values[i] = value
    count += 1
    if count * 2 > keys.count { grow() }
    return true
  }

  /// Removes `hash`, shifting later entries of its probe run back so lookups still find them.
  mutating func remove(_ hash: UInt64) {
    let key = hash == 0 ? Self.zeroKey : hash
    var i = bucket(key)
    while keys[i] != key {
      if keys[i] == 0 { return }
      i = (i + 1) & mask
    }
    count -= 1
    var hole = i
    var j = i
    while true {
      j = (j + 1) & mask
      let moving = keys[j]
      if moving == 0 { break }
      let home = bucket(moving)
      // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
      let fits = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j)
      if fits {
        keys[hole] = moving
        values[hole] = values[j]
        hole = j
      }
    }
    keys[hole] = 0
  }

  private mutating func grow() {
    let oldKeys = keys
    let oldValues = values
    keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
    values = [Int32](repeating: 0, count: oldKeys.count * 2)
    mask = keys.count - 1
    count = 0
    for (i, key) in oldKeys.enumerated() where key != 0 { insert(key, value: oldValues[i]) }
  }
}

/// Counts distinct values exactly (by 64-bit hash) up to a limit, then by HyperLogLog, which is
/// fed from the start so that switching loses nothing.
package struct DistinctCounter {
  package let exactLimit: Int
  private var exact = HashIndex()
  /// False once more than `exactLimit` distinct values were seen.
  package private(set) var isExact = true
  private var sketch = HyperLogLog()

  package init(exactLimit: Int) { self.exactLimit = exactLimit }

  @inline(__always)
  package mutating func add(hash: UInt64) {
    sketch.add(hash: hash)
    if isExact {
      exact.insert(hash)
      if exact.count > exactLimit {
        isExact = false
        exact = HashIndex()
      }
    }
  }

  /// The exact count, or the rounded estimate.
  package var count: Int { isExact ? exact.count : Int(sketch.estimate.rounded()) }
}

/// A KLL quantile sketch (Karnin, Lang, Liberty 2016): levels of sorted samples where an item at
/// level h stands for 2^h inputs; a full level is compacted by keeping every other item. Memory
/// is about 3k values whatever the input size; the rank error is about 1.7/k (1 % at k = 200).
/// Compaction offsets come from a fixed-seed generator, so results are reproducible.
package struct QuantileSketch: Sendable {
  /// The accuracy parameter: the capacity of the top level.
  package let k: Int
  private var levels: [[Double]] = [[]]
  private var stored = 0
  /// How many values were added.
  package private(set) var count = 0
  /// How many values the sketch holds now (bounded by about 3k).
  package var retained: Int { stored }
  private var random: UInt64 = 0x2545_F491_4F6C_DD1D

  package init(k: Int = 200) {
    precondition(k >= 8)
    self.k = k
    levels[0].reserveCapacity(k)
    computeCapacities()
  }

  /// Level capacities for the current number of levels, and their sum: recomputed only when a
  /// level is added (pow per value was most of the profile plugin's time).
  private var capacities: [Int] = []
  private var totalCapacity = 0

  private mutating func computeCapacities() {
    let depth = levels.count
    capacities = (0..<depth).map { level in
      max(2, Int((Double(k) * pow(2.0 / 3.0, Double(depth - 1 - level))).rounded(.up)))
    }
    totalCapacity = capacities.reduce(0, +)
  }

  /// Adds one value (NaN is ignored).
  package mutating func add(_ value: Double) {
    if value.isNaN { return }
    levels[0].append(value)
    stored += 1
    count += 1
    if stored >= totalCapacity { compress() }
  }

  /// Adds everything another sketch summarized.
  package mutating func merge(_ other: QuantileSketch) {
    while levels.count < other.levels.count { levels.append([]) }
    computeCapacities()
    for (h, items) in other.levels.enumerated() { levels[h].append(contentsOf: items) }
    stored += other.stored
    count += other.count
    while stored >= totalCapacity { compress() }
  }

  private mutating func compress() {
    for h in levels.indices where levels[h].count >= capacities[h] {
      if h + 1 == levels.count {
        levels.append([])
        computeCapacities()
      }
      var items = levels[h]
      items.sort()
      // Odd counts leave one item behind at this level so total weight is preserved.
      let leftover: Double? = items.count % 2 == 1 ? items.removeLast() : nil
      random ^= random << 13
      random ^= random >> 7
      random ^= random << 17
      let offset = Int(random & 1)
      var promoted = 0
      var i = offset
      while i < items.count {
        levels[h + 1].append(items[i])
        promoted += 1
        i += 2
      }
      levels[h] = leftover.map { [$0] } ?? []
      levels[h].reserveCapacity(capacities[h])
      stored -= items.count - promoted
      return
    }
  }

  /// The values at the given ranks (each in [0, 1]), in the order asked; nil when empty.
  package func quantiles(_ fractions: [Double]) -> [Double]? {
    if count == 0 { return nil }
    var weighted: [(value: Double, weight: Int)] = []
    weighted.reserveCapacity(stored)
    for (h, items) in levels.enumerated() {
      for value in items { weighted.append((value, 1 << h)) }
    }
    weighted.sort { $0.value < $1.value }
    let total = weighted.reduce(0) { $0 + $1.weight }
    return fractions.map { fraction in
      let target = fraction * Double(total)
      var cumulative = 0
      for item in weighted {
        cumulative += item.weight
        if Double(cumulative) >= target { return item.value }
      }
      return weighted[weighted.count - 1].value
    }
  }
}

/// Percentiles that are exact while at most `exactLimit` values arrived (kept and sorted at the
/// end, interpolated linearly between neighbours like numpy's default), then a `QuantileSketch`.
package struct PercentileEstimator {
  package let exactLimit: Int
  private var values: [Double] = []
  private var sketch: QuantileSketch?

  package init(exactLimit: Int) { self.exactLimit = exactLimit }

  /// True when the answer comes from the sketch.
  package var isApproximate: Bool { sketch != nil }

  @inline(__always)
  package mutating func add(_ value: Double) {
    if value.isNaN { return }
    if sketch == nil {
      values.append(value)
      if values.count > exactLimit {
        var s = QuantileSketch()
        for v in values { s.add(v) }
        sketch = s
        values = []
      }
    } else {
      sketch!.add(value)
    }
  }

  /// The percentiles asked for; nil when no value arrived.
  package func percentiles(_ fractions: [Double]) -> [Double]? {
    if let sketch { return sketch.quantiles(fractions) }
    if values.isEmpty { return nil }
    let sorted = values.sorted()
    return fractions.map { fraction in
      let position = fraction * Double(sorted.count - 1)
      let lower = Int(position.rounded(.down))
      let upper = min(lower + 1, sorted.count - 1)
      return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }
  }
}

/// The most frequent values of a column: exact counts while at most `exactLimit` distinct values
/// were seen, then the Misra-Gries "Frequent" algorithm over `capacity` counters: a value not yet
/// counted when every counter is taken lowers all counters by one (and is itself dropped), so a
/// count under-estimates by at most n / (capacity + 1) and any value more frequent than that
/// keeps a counter. Lowering all counters at once costs O(capacity) but happens at most once per
/// capacity + 1 values, unlike Space-Saving's heap update on every new value, which dominated on
/// columns of unique values. Values are kept as their first `maxValueBytes` bytes in one
/// preallocated arena, so counting a value costs no allocation.
package struct TopValues {
  package let exactLimit: Int
  package let capacity: Int
  package let maxValueBytes: Int
  /// False once the counts come from Misra-Gries.
  package private(set) var isExact = true

  private var slotOfHash = HashIndex()
  private var hashes: [UInt64] = []
  private var counts: [Int] = []
  private var lengths: [Int32] = []
  /// Each slot's bytes at `slot * maxValueBytes`.
  private var arena: [UInt8] = []

  package init(exactLimit: Int = 4096, capacity: Int = 1024, maxValueBytes: Int = 128) {
    precondition(capacity >= 1 && capacity <= exactLimit)
    self.exactLimit = exactLimit
    self.capacity = capacity
    self.maxValueBytes = maxValueBytes
  }

  /// Counts one occurrence of `bytes`, whose hash is `hash`.
  @inline(__always)
  package mutating func add(hash: UInt64, bytes: UnsafeRawBufferPointer) {
    if let slot = slotOfHash.value(for: hash) {
      counts[Int(slot)] += 1
      return
    }
    if isExact && hashes.count == exactLimit { keepLargest() }
    if hashes.count < (isExact ? exactLimit : capacity) {
      let s = hashes.count
      hashes.append(hash)
      counts.append(1)
      lengths.append(0)
      if arena.count < (s + 1) * maxValueBytes {
        let limit = (isExact ? exactLimit : capacity) * maxValueBytes
        let grown = min(max((s + 1) * maxValueBytes, 2 * arena.count, 64 * maxValueBytes), limit)
        arena.append(contentsOf: repeatElement(0, count: grown - arena.count))
      }
      store(bytes, in: s)
      slotOfHash.insert(hash, value: Int32(s))
      return
    }
    decrementAll()
  }

  private mutating func store(_ bytes: UnsafeRawBufferPointer, in slot: Int) {
    let n = min(bytes.count, maxValueBytes)
    lengths[slot] = Int32(n)
    if n == 0 { return }
    arena.withUnsafeMutableBytes { target in
      (target.baseAddress! + slot * maxValueBytes).copyMemory(from: bytes.baseAddress!, byteCount: n)
    }
  }

  /// Leaves exact counting: the `capacity` most frequent values keep their exact counts.
  private mutating func keepLargest() {
    isExact = false
    let keep = hashes.indices.sorted { counts[$0] > counts[$1] }.prefix(capacity)
    compact(Array(keep).sorted(), subtracting: 0)
  }

  /// One Misra-Gries step: every counter loses one; counters at zero are freed.
  private mutating func decrementAll() {
    compact(hashes.indices.filter { counts[$0] > 1 }, subtracting: 1)
  }

  /// Keeps only the slots in `survivors` (ascending), moved to the front, with their counts
  /// lowered by `subtracting`.
  private mutating func compact(_ survivors: [Int], subtracting: Int) {
    slotOfHash = HashIndex(capacity: capacity)
    for (s, old) in survivors.enumerated() {
      hashes[s] = hashes[old]
      counts[s] = counts[old] - subtracting
      lengths[s] = lengths[old]
      if s != old {
        arena.withUnsafeMutableBytes { bytes in
          let base = bytes.baseAddress!
          (base + s * maxValueBytes).copyMemory(from: base + old * maxValueBytes, byteCount: Int(lengths[old]))
        }
      }
      slotOfHash.insert(hashes[s], value: Int32(s))
    }
    hashes.removeLast(hashes.count - survivors.count)
    counts.removeLast(counts.count - survivors.count)
    lengths.removeLast(lengths.count - survivors.count)
  }

  /// The `n` most frequent values, most frequent first (ties by value bytes); a value longer than
  /// `maxValueBytes` comes back cut to that length.
  package func top(_ n: Int) -> [(value: [UInt8], count: Int)] {
    let entries = hashes.indices.map { s -> (value: [UInt8], count: Int) in
      (Array(arena[s * maxValueBytes..<s * maxValueBytes + Int(lengths[s])]), counts[s])
    }
    let sorted = entries.sorted {
      $0.count != $1.count ? $0.count > $1.count : $0.value.lexicographicallyPrecedes($1.value)
    }
    return Array(sorted.prefix(n))
  }
}
