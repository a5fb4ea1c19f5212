import DVBasics
import Foundation
import XCTest

@testable import DVPlugins

final class TableWriterTests: TableTestCase {
  func testCSVQuotingRoundTrips() throws {
    let path = directory + "/out.csv"
    let writer = try TableWriter(path: path, type: TableFileType(path: path)!, columns: ["id", "text, quoted"])
    try writer.writeRow(["1", "plain"])
    try writer.writeRow(["2", "a \"b\", c\nd"])
    try writer.writeRow([nil, ""])
    XCTAssertFalse(FileSystem.exists(path), "nothing at the path before commit")
    try writer.commit()
    XCTAssertEqual(writer.rowsWritten, 3)
    XCTAssertEqual(
      try contents(path), "id,\"text, quoted\"\n1,plain\n2,\"a \"\"b\"\", c\nd\"\n,\"\"\n")
    XCTAssertEqual(try rows(path).rows, [["1", "plain"], ["2", "a \"b\", c\nd"], ["<null>", ""]])
  }

  func testJSONLRowsAndRawRecords() throws {
    let path = directory + "/out.jsonl"
    let writer = try TableWriter(path: path, type: TableFileType(path: path)!, columns: ["a", "b"])
    try writer.writeRow(["x\"\n", nil])
    let raw = #"{"a": 1}"#
    try Array(raw.utf8).withUnsafeBytes { try writer.writeRaw($0) }
    try writer.commit()
    XCTAssertEqual(try contents(path), "{\"a\":\"x\\\"\\n\",\"b\":null}\n{\"a\": 1}\n")
  }

  func testGzipRoundTrip() throws {
    let path = directory + "/out.jsonl.gz"
    let writer = try TableWriter(path: path, type: TableFileType(path: path)!, columns: ["n"])
    for i in 0..<50_000 { try writer.writeRow(["\(i)"]) }
    try writer.commit()
    let reader = try TableReader(path: path, displayName: "out.jsonl.gz")
    var count = 0
    while try reader.next() {
      XCTAssertEqual(reader.field(0).integer(), Int64(count))
      count += 1
    }
    XCTAssertEqual(count, 50_000)
    XCTAssertTrue(try contents(path).hasPrefix("{\"n\":\"0\"}\n"))
  }

  func testAbandonLeavesNothing() throws {
    let path = directory + "/out.csv"
    do {
      let writer = try TableWriter(path: path, type: TableFileType(path: path)!, columns: ["a"])
      try writer.writeRow(["1"])
      writer.abandon()
    }
    do {
      let writer = try TableWriter(path: path, type: TableFileType(path: path)!, columns: ["a"])
      try writer.writeRow(["1"])
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
  }
}
