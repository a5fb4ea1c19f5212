import DVBasics
import Foundation
import XCTest

@testable import DVPlugins

final class TableReaderTests: TableTestCase {
  func testFileTypeFromName() {
    XCTAssertEqual(TableFileType(path: "a/b.csv"), TableFileType(format: .csv, gzip: false))
    XCTAssertEqual(TableFileType(path: "b.JSONL.gz"), TableFileType(format: .jsonl, gzip: true))
    XCTAssertEqual(TableFileType(path: "b.ndjson"), TableFileType(format: .jsonl, gzip: false))
    XCTAssertNil(TableFileType(path: "b.txt"))
    XCTAssertNil(TableFileType(path: "b.gz"))
    XCTAssertNil(TableFileType(path: ".csv"))
    XCTAssertEqual(TableFileType.extensions(of: "data/q.jsonl.gz"), ".jsonl.gz")
  }

  func testCSVQuotesEscapesEmbeddedNewlinesAndCRLF() throws {
    let path = try file(
      "a.csv", "id,text,note\r\n1,\"a, b\",\"say \"\"hi\"\"\"\r\n2,\"two\nlines\",\r\n3,\"\",plain\r\n")
    let (columns, rows) = try rows(path)
    XCTAssertEqual(columns, ["id", "text", "note"])
    XCTAssertEqual(rows, [["1", "a, b", "say \"hi\""], ["2", "two\nlines", "<null>"], ["3", "", "plain"]])
  }

  func testCSVLineNumbersAndRawRecords() throws {
    let path = try file("a.csv", "a,b\n1,\"x\ny\"\n\n2,z")
    let reader = try TableReader(path: path, displayName: "a.csv")
    var seen: [(Int, Int, String)] = []
    while try reader.next() {
      seen.append((reader.rowNumber, reader.lineNumber, String(decoding: reader.rawRecord, as: UTF8.self)))
    }
    XCTAssertEqual(seen.map(\.0), [1, 2])
    XCTAssertEqual(seen.map(\.1), [2, 5])
    XCTAssertEqual(seen.map(\.2), ["1,\"x\ny\"", "2,z"])
  }

  func testCSVWrongFieldCountNamesTheLine() throws {
    let path = try file("bad.csv", "a,b\n1,2\n\"multi\nline\",3\n4,5,6\n")
    XCTAssertEqual(
      readError(path), "bad.csv:5: this row has 3 fields but the header has 2; quote fields that contain commas")
  }

  func testCSVUnterminatedQuoteNamesTheLine() throws {
    let path = try file("bad.csv", "a,b\n1,2\n3,\"open\n4,5\n")
    XCTAssertEqual(
      readError(path),
      "bad.csv:3: a quoted field is not closed; end it with '\"' (and write a quote inside as \"\")")
  }

  func testCSVTextAfterClosingQuoteIsAnError() throws {
    let path = try file("bad.csv", "a\n\"x\"y\n")
    XCTAssertTrue(readError(path)?.hasPrefix("bad.csv:2: unexpected text after a closing quote") == true)
  }

  func testCSVRecordsLongerThanTheBuffer() throws {
    let long = String(repeating: "x", count: 3 << 20)
    let path = try file("long.csv", "a,b\n\"\(long)\",1\n2,3\n")
    let (_, rows) = try rows(path)
    XCTAssertEqual(rows.count, 2)
    XCTAssertEqual(rows[0][0].count, long.count)
    XCTAssertEqual(rows[1], ["2", "3"])
  }

  func testJSONLTypesEscapesAndColumnsInFirstSeenOrder() throws {
    let path = try file(
      "a.jsonl",
      #"""
      {"id": 1, "name": "a\"b\\c\n", "ok": true, "x": null, "tags": ["t", {"k": 1}]}

      {"emoji": "\ud83d\ude00 \u00e9\/", "id": -2.5e3}
        
      {}
      """#)
    let (columns, rows) = try rows(path)
    XCTAssertEqual(columns, ["id", "name", "ok", "x", "tags", "emoji"])
    XCTAssertEqual(rows[0], ["1", "a\"b\\c\n", "true", "<null>", #"["t", {"k": 1}]"#, "<missing>"])
    XCTAssertEqual(rows[1], ["-2.5e3", "<missing>", "<missing>", "<missing>", "<missing>", "😀 é/"])
    XCTAssertEqual(rows[2], Array(repeating: "<missing>", count: 6))
    XCTAssertEqual(rows.count, 3)
  }

  func testJSONLKindsAndNumbers() throws {
    let path = try file("a.jsonl", #"{"n": 42, "f": 0.125, "s": "17", "b": false, "o": {}}"# + "\n")
    let reader = try TableReader(path: path, displayName: "a.jsonl")
    XCTAssertTrue(try reader.next())
    XCTAssertEqual(reader.field(0).kind, .number)
    XCTAssertEqual(reader.field(0).integer(), 42)
    XCTAssertEqual(reader.field(1).double(), 0.125)
    XCTAssertEqual(reader.field(2).kind, .string)
    XCTAssertEqual(reader.field(2).integer(), 17)
    XCTAssertEqual(reader.field(3).kind, .bool)
    XCTAssertEqual(reader.field(4).kind, .nested)
    XCTAssertEqual(reader.field(9).kind, .missing)
    XCTAssertEqual(reader.columnIndex("s"), 2)
    XCTAssertFalse(try reader.next())
  }

  func testJSONLInvalidLinesNameTheLine() throws {
    let cases: [(String, String)] = [
      (#"{"a": 1,}"#, "bad.jsonl:2: invalid JSON at column 9: expected a quoted key"),
      (#"{"a": tru}"#, "bad.jsonl:2: invalid JSON at column 7: unexpected character"),
      (#"{"a": "x}"#, "bad.jsonl:2: invalid JSON at column 7: unterminated string"),
      (#"{"a": 01}"#, "bad.jsonl:2: invalid JSON at column 8: expected ',' or '}'"),
      (#"{"a": [1, 2}"#, "bad.jsonl:2: invalid JSON at column 12: expected ',' or ']'"),
      (#"{"a": 1} x"#, "bad.jsonl:2: invalid JSON at column 10: unexpected text after the object"),
      (#"[1, 2]"#, "bad.jsonl:2: invalid JSON at column 1: the line is an array"),
    ]
    for (line, expected) in cases {
      let path = try file("bad.jsonl", "{\"a\": 0}\n" + line + "\n")
      XCTAssertEqual(readError(path), expected + "; each line must be one JSON object", line)
    }
  }

  func testGzipInputIsInflated() throws {
    let path = try file("a.csv.gz", "a,b\n1,2\n3,4\n")
    XCTAssertEqual(try rows(path).rows, [["1", "2"], ["3", "4"]])
  }

  func testCorruptGzipIsAnIOError() throws {
    let path = try file("a.csv.gz", "not gzip at all\n")
    try Data("garbage that is not gzip".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertTrue(readError(path)?.hasPrefix("a.csv.gz: is not valid gzip data") == true, readError(path) ?? "")
  }

  func testMissingFileAndUnknownExtension() throws {
    XCTAssertTrue(readError(directory + "/none.csv")?.hasPrefix("none.csv: cannot open") == true)
    let text = try file("a.txt", "x")
    XCTAssertTrue(readError(text)?.contains("is not a table file") == true)
  }

  func testByteOrderMarkCRLFJSONLAndEmptyTables() throws {
    let csv = try file("bom.csv", "\u{FEFF}a,b\r\n1,2\r\n")
    XCTAssertEqual(try rows(csv).columns, ["a", "b"])
    let jsonl = try file("crlf.jsonl", "{\"a\": 1}\r\n\r\n{\"a\": 2}\r\n")
    XCTAssertEqual(try rows(jsonl).rows, [["1"], ["2"]])
    let headerOnly = try file("header.csv", "a,b\n")
    XCTAssertEqual(try rows(headerOnly).columns, ["a", "b"])
    XCTAssertEqual(try rows(headerOnly).rows, [])
    let empty = try file("empty.jsonl", "")
    XCTAssertEqual(try rows(empty).rows, [])
    XCTAssertEqual(try rows(try file("empty.csv", "")).columns, [])
  }

  func testConcatenatedAndTruncatedGzip() throws {
    let first = try file("one.csv.gz", "a\n1\n")
    let second = try file("two.csv.gz", "2\n3\n")
    var both = try Data(contentsOf: URL(fileURLWithPath: first))
    both.append(try Data(contentsOf: URL(fileURLWithPath: second)))
    let joined = directory + "/both.csv.gz"
    try both.write(to: URL(fileURLWithPath: joined))
    XCTAssertEqual(try rows(joined).rows, [["1"], ["2"], ["3"]])
    let truncated = directory + "/cut.csv.gz"
    try both.prefix(both.count - 30).write(to: URL(fileURLWithPath: truncated))
    XCTAssertEqual(readError(truncated), "cut.csv.gz: the gzip data ends early; the file is truncated")
  }

  func testLinesOnlyModeKeepsRowsAndRawRecords() throws {
    let path = try file("a.jsonl", "{\"a\": 1}\n\n{\"a\": 2}\n")
    let reader = try TableReader(path: path, displayName: "a.jsonl")
    reader.parsesFields = false
    var raw: [String] = []
    while try reader.next() {
      raw.append(String(decoding: reader.rawRecord, as: UTF8.self))
      XCTAssertEqual(reader.field(0).kind, .missing)
    }
    XCTAssertEqual(raw, ["{\"a\": 1}", "{\"a\": 2}"])
    XCTAssertEqual(reader.rowNumber, 2)
  }
}
