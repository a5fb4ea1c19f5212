import XCTest

@testable import DVPlugins

final class SketchTests: XCTestCase {
  private func hash(_ i: Int) -> UInt64 {
    var value = i
    return withUnsafeBytes(of: &value) { fieldHash($0) }
  }

  private func hash(_ text: String) -> UInt64 {
    var copy = text
    return copy.withUTF8 { fieldHash(UnsafeRawBufferPointer($0)) }
  }

  func testFieldHashIsDeterministicAndSeesEveryByte() {
    XCTAssertEqual(hash("hello"), hash("hello"))
    XCTAssertNotEqual(hash("hello"), hash("hellp"))
    XCTAssertNotEqual(hash("a"), hash("a\u{0}"))
    XCTAssertNotEqual(hash(""), hash("\u{0}"))
    let long = String(repeating: "x", count: 100)
    XCTAssertNotEqual(hash(long), hash(long + "y"))
    XCTAssertNotEqual(hash(long + "a" + long), hash(long + "b" + long))
    var seen = Set<UInt64>()
    for i in 0..<100_000 { seen.insert(hash("row-\(i)")) }
    XCTAssertEqual(seen.count, 100_000)
  }

  func testHashIndexAgreesWithADictionaryThroughInsertsAndRemovals() {
    var index = HashIndex()
    var reference: [UInt64: Int32] = [:]
    var state: UInt64 = 42
    for step in 0..<200_000 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      // Few distinct keys (with clustered low bits and 0) so removals hit long probe runs.
      let key = (state >> 52) << 8
      if step % 3 == 0 {
        index.remove(key)
        reference[key] = nil
      } else {
        let inserted = index.insert(key, value: Int32(step))
        XCTAssertEqual(inserted, reference[key] == nil)
        if inserted { reference[key] = Int32(step) }
      }
    }
    XCTAssertEqual(index.count, reference.count)
    for key in (0..<UInt64(4096)).map({ $0 << 8 }) { XCTAssertEqual(index.value(for: key), reference[key]) }
  }

  func testHyperLogLogIsWithinThreeStandardErrorsAcrossTheRange() {
    var sketch = HyperLogLog()
    XCTAssertEqual(sketch.estimate, 0)
    var added = 0
    for target in [10, 1_000, 20_000, 100_000, 1_000_000] {
      while added < target {
        sketch.add(hash: hash(added))
        // Repeats must not count.
        sketch.add(hash: hash(added / 2))
        added += 1
      }
      let error = abs(sketch.estimate - Double(target)) / Double(target)
      XCTAssertLessThan(error, 0.025, "estimate \(sketch.estimate) for \(target)")
    }
  }

  func testHyperLogLogMergeEstimatesTheUnion() {
    var a = HyperLogLog()
    var b = HyperLogLog()
    for i in 0..<60_000 { a.add(hash: hash(i)) }
    for i in 40_000..<100_000 { b.add(hash: hash(i)) }
    a.merge(b)
    XCTAssertLessThan(abs(a.estimate - 100_000) / 100_000, 0.025)
  }

  func testDistinctCounterIsExactUpToItsLimit() {
    var counter = DistinctCounter(exactLimit: 1000)
    for i in 0..<3000 { counter.add(hash: hash(i % 1000)) }
    XCTAssertTrue(counter.isExact)
    XCTAssertEqual(counter.count, 1000)
    for i in 0..<50_000 { counter.add(hash: hash(i)) }
    XCTAssertFalse(counter.isExact)
    XCTAssertLessThan(abs(Double(counter.count) - 50_000) / 50_000, 0.025)
  }

  func testQuantileSketchRankErrorIsSmallAndMemoryBounded() {
    var sketch = QuantileSketch()
    let n = 1_000_000
    // A deterministic permutation of 0..<n (n and 7919 are coprime).
    for i in 0..<n { sketch.add(Double((i &* 7919) % n)) }
    XCTAssertEqual(sketch.count, n)
    XCTAssertLessThan(sketch.retained, 3 * sketch.k + 64)
    let fractions = [0.01, 0.25, 0.5, 0.75, 0.9, 0.99]
    let answers = sketch.quantiles(fractions)!
    for (fraction, answer) in zip(fractions, answers) {
      let rankError = abs(answer / Double(n) - fraction)
      XCTAssertLessThan(rankError, 0.015, "q\(fraction) = \(answer)")
    }
  }

  func testQuantileSketchMergeAndSmallInputs() {
    var empty = QuantileSketch()
    XCTAssertNil(empty.quantiles([0.5]))
    empty.add(.nan)
    XCTAssertNil(empty.quantiles([0.5]))
    var a = QuantileSketch()
    var b = QuantileSketch()
    for i in 0..<100_000 {
      if i % 2 == 0 { a.add(Double(i)) } else { b.add(Double(i)) }
    }
    a.merge(b)
    XCTAssertEqual(a.count, 100_000)
    XCTAssertLessThan(abs(a.quantiles([0.5])![0] - 50_000) / 100_000, 0.015)
    var single = QuantileSketch()
    single.add(7)
    XCTAssertEqual(single.quantiles([0, 0.5, 1]), [7, 7, 7])
  }

  func testPercentilesAreExactUnderTheLimitThenSketched() {
    var exact = PercentileEstimator(exactLimit: 10)
    for v in [4.0, 1, 3, 2] { exact.add(v) }
    XCTAssertFalse(exact.isApproximate)
    XCTAssertEqual(exact.percentiles([0, 0.5, 1]), [1, 2.5, 4])
    var sketched = PercentileEstimator(exactLimit: 1000)
    for i in 0..<100_000 { sketched.add(Double((i &* 7919) % 100_000)) }
    XCTAssertTrue(sketched.isApproximate)
    XCTAssertLessThan(abs(sketched.percentiles([0.9])![0] - 90_000) / 100_000, 0.015)
    XCTAssertNil(PercentileEstimator(exactLimit: 5).percentiles([0.5]))
  }

  private func add(_ text: String, to top: inout TopValues) {
    var copy = text
    copy.withUTF8 { top.add(hash: fieldHash(UnsafeRawBufferPointer($0)), bytes: UnsafeRawBufferPointer($0)) }
  }

  func testTopValuesAreExactWhileFew() {
    var top = TopValues(exactLimit: 10, capacity: 5, maxValueBytes: 4)
    for text in ["b", "a", "b", "c", "b", "a", "longer than four"] { add(text, to: &top) }
    let result = top.top(3)
    XCTAssertTrue(top.isExact)
    XCTAssertEqual(result.map { String(decoding: $0.value, as: UTF8.self) }, ["b", "a", "c"])
    XCTAssertEqual(result.map(\.count), [3, 2, 1])
    XCTAssertEqual(top.top(10).last.map { String(decoding: $0.value, as: UTF8.self) }, "long")
  }

  func testMisraGriesFindsHeavyHittersAmongManyUniqueValues() {
    var top = TopValues(exactLimit: 100, capacity: 50)
    var expected = ["hot": 0, "warm": 0]
    let n = 100_000
    for i in 0..<n {
      if i % 10 == 0 {
        add("hot", to: &top)
        expected["hot"]! += 1
      } else if i % 25 == 1 {
        add("warm", to: &top)
        expected["warm"]! += 1
      } else {
        add("unique-\(i)", to: &top)
      }
    }
    XCTAssertFalse(top.isExact)
    let result = top.top(2)
    XCTAssertEqual(result.map { String(decoding: $0.value, as: UTF8.self) }, ["hot", "warm"])
    // Misra-Gries never over-counts, and under-counts by at most n / (capacity + 1).
    for (entry, name) in zip(result, ["hot", "warm"]) {
      XCTAssertLessThanOrEqual(entry.count, expected[name]!)
      XCTAssertGreaterThanOrEqual(entry.count, expected[name]! - n / 51)
    }
  }
}
