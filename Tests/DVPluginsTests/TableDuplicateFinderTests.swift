import DVBasics
import Foundation
import XCTest

@testable import DVPlugins

final class TableDuplicateFinderTests: TableTestCase {
  private func hash(_ text: String) -> Hash128 {
    Array(text.utf8).withUnsafeBytes { Hash128($0) }
  }

  func testHashSeparatesFieldsAndSeeds() {
    XCTAssertEqual(hash("abc"), hash("abc"))
    XCTAssertNotEqual(hash("abc"), hash("abd"))
    XCTAssertNotEqual(hash(""), hash("\0"))
    var ab = hash("")
    var a_b = ab
    Array("ab".utf8).withUnsafeBytes { ab.combine($0) }
    Array("".utf8).withUnsafeBytes { ab.combine($0) }
    Array("a".utf8).withUnsafeBytes { a_b.combine($0) }
    Array("b".utf8).withUnsafeBytes { a_b.combine($0) }
    XCTAssertNotEqual(ab, a_b)
    let seeded = Array("abc".utf8).withUnsafeBytes { Hash128($0, seed: 1) }
    XCTAssertNotEqual(seeded, hash("abc"))
    var distinct = Set<Hash128>()
    for i in 0..<100_000 { distinct.insert(hash("row \(i)")) }
    XCTAssertEqual(distinct.count, 100_000)
  }

  func testBitmap() {
    var bitmap = RowBitmap()
    for row in [1, 64, 65, 1000, 64] { bitmap.insert(row) }
    XCTAssertEqual(bitmap.count, 4)
    XCTAssertTrue(bitmap.contains(64))
    XCTAssertFalse(bitmap.contains(2))
    XCTAssertFalse(bitmap.contains(1_000_000))
  }

  /// Row r holds value r % distinct: every row after the first `distinct` rows is a repeat.
  private func check(rows: Int, distinct: Int, budget: Int) throws -> Bool {
    let finder = try DuplicateFinder(temporaryDirectory: directory, memoryBudget: budget)
    for row in 1...rows { try finder.add(hash("value \(row % distinct)"), row: row) }
    let spilled = finder.spilled
    let duplicates = try finder.finish()
    XCTAssertEqual(duplicates.count, rows - distinct)
    for row in 1...rows { XCTAssertEqual(duplicates.contains(row), row > distinct, "row \(row)") }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [], "spill files removed")
    return spilled
  }

  func testInMemoryWhenItFits() throws {
    XCTAssertFalse(try check(rows: 30_000, distinct: 10_000, budget: 64 << 20))
  }

  func testTinyBudgetSpillsAndSplitsPartitionsAgain() throws {
    // The minimum budget holds 512 hashes; 100,000 distinct ones need two levels of partitions.
    XCTAssertTrue(try check(rows: 150_000, distinct: 100_000, budget: 1))
  }

  func testManyRepeatsOfOneValueSpillWithoutGrowing() throws {
    let finder = try DuplicateFinder(temporaryDirectory: directory, memoryBudget: 1)
    for row in 1...2_000 { try finder.add(hash("\(row)"), row: row) }
    for row in 2_001...20_000 { try finder.add(hash("same"), row: row) }
    let duplicates = try finder.finish()
    XCTAssertEqual(duplicates.count, 20_000 - 2_001)
    XCTAssertFalse(duplicates.contains(2_001))
    XCTAssertTrue(duplicates.contains(2_002))
  }
}
