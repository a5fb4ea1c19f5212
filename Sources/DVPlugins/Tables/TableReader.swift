import CDVSystem
import DVPipeline

#if canImport(Glibc)
  import Glibc
#endif

/// Reads a CSV or JSON Lines table (optionally gzip-compressed) record by record. Memory is one
/// read buffer (1 MiB) plus the longest record; fields are views into it, valid until `next()`.
public final class TableReader {
  public let type: TableFileType
  /// CSV: the header row's names. JSONL: the keys seen so far, in first-seen order.
  public private(set) var columns: [String] = []
  /// The 1-based data row of the current record (the CSV header is not a row).
  public private(set) var rowNumber = 0
  /// The 1-based physical line where the current record starts.
  public private(set) var lineNumber = 0

  private let displayName: String
  private let source: ByteSource
  private var buffer: UnsafeMutablePointer<UInt8>
  private var capacity = 1 << 20
  /// The unconsumed bytes are buffer[start..<end].
  private var start = 0
  private var end = 0
  private var atEndOfInput = false
  /// The physical line at `start`.
  private var nextLine = 1
  private var recordStart = 0
  private var recordLength = 0
  /// The current record's fields by column; a pointer, not an array, so that the parsing loops
  /// pay no exclusivity or uniqueness checks per field.
  private var slots: UnsafeMutablePointer<Slot>
  private var slotCapacity = 64
  private var slotCount = 0
  /// Internal: when false, JSONL lines are only split, not parsed (a second pass over input
  /// already validated); `rawRecord` and `rowNumber` still work, fields are all missing.
  var parsesFields = true
  private var scratch = ScratchBuffer()
  private var columnIndexes: [String: Int] = [:]
  /// JSONL keys as bytes, to match a line's keys against the columns without making strings.
  private var columnBytes: [[UInt8]] = []

  /// Where one field's bytes are: in the read buffer, or unescaped into the scratch buffer.
  private struct Slot {
    var kind: Field.Kind
    var inScratch: Bool
    var start: Int
    var count: Int
    static let missing = Slot(kind: .missing, inScratch: false, start: 0, count: 0)
  }

  /// Opens `path`; `displayName` (the workspace-relative path) names it in messages. The type
  /// comes from the file name; a CSV file's header is read now.
  public init(path: String, displayName: String) throws {
    guard let type = TableFileType(path: path) else {
      throw TableError.io(
        file: displayName, message: "is not a table file; name it with one of \(TableFileType.supported)")
    }
    self.type = type
    self.displayName = displayName
    let file = try FileByteSource(path: path, displayName: displayName)
    source = type.gzip ? try GzipByteSource(input: file, displayName: displayName) : file
    buffer = .allocate(capacity: capacity)
    slots = .allocate(capacity: slotCapacity)
    if try fill() && end - start >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF {
      start = 3
    }
    if type.format == .csv { try readHeader() }
  }

  deinit {
    buffer.deallocate()
    slots.deallocate()
    scratch.free()
    source.close()
  }

  /// The index of a column in `columns`; nil when there is no such column (yet, for JSONL).
  public func columnIndex(_ name: String) -> Int? { columnIndexes[name] }

  /// The current record's bytes exactly as in the (decompressed) file, without the line terminator.
  public var rawRecord: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: buffer + recordStart, count: recordLength)
  }

  /// The field of a column in the current record; `.missing` when the record has none.
  public func field(_ column: Int) -> Field {
    guard column >= 0 && column < slotCount else {
      return Field(kind: .missing, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
    }
    let slot = slots[column]
    let base = slot.inScratch ? scratch.base : buffer
    return Field(kind: slot.kind, bytes: UnsafeRawBufferPointer(start: base + slot.start, count: slot.count))
  }

  /// Advances to the next record; false at the end. Malformed input throws
  /// `TableError.malformed` naming the line where the record starts. Blank lines are skipped.
  /// Throws `StageRunError.interrupted` once dv has received SIGINT/SIGTERM/SIGHUP.
  public func next() throws -> Bool {
    start += consumed
    consumed = 0
    while true {
      let complete: Bool
      switch type.format {
      case .csv: complete = try parseCSVRecord(header: false)
      case .jsonl: complete = try parseJSONLine()
      }
      if complete {
        if recordLength == 0 && isBlank { continue }
        rowNumber += 1
        return true
      }
      if !(try fill()) && start == end { return false }
    }
  }

  // MARK: - Buffering

  /// Bytes of the current record and its terminator, consumed on the next call.
  private var consumed = 0
  /// True when the record just parsed was an empty line (skipped, its bytes consumed).
  private var isBlank = false

  /// Moves the unconsumed bytes to the front and reads more; grows the buffer when one record
  /// fills it. False at the end of the input.
  private func fill() throws -> Bool {
    if atEndOfInput { return false }
    // Checked once per read: a stage reading gigabytes stops soon after Ctrl-C.
    if dv_received_signal() != 0 { throw StageRunError.interrupted }
    if start > 0 {
      if end > start { buffer.update(from: buffer + start, count: end - start) }
      end -= start
      start = 0
    }
    if end == capacity {
      let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
      grown.update(from: buffer, count: end)
      buffer.deallocate()
      buffer = grown
      capacity *= 2
    }
    let n = try source.read(into: buffer + end, count: capacity - end)
    if n == 0 {
      atEndOfInput = true
      return false
    }
    end += n
    return true
  }

  private func malformed(_ line: Int, _ message: String) -> TableError {
    .malformed(file: displayName, line: line, message: message)
  }

  /// Makes room for `count` slots, keeping the current ones.
  private func reserveSlots(_ count: Int) {
    guard count > slotCapacity else { return }
    var newCapacity = slotCapacity * 2
    while newCapacity < count { newCapacity *= 2 }
    let grown = UnsafeMutablePointer<Slot>.allocate(capacity: newCapacity)
    grown.moveInitialize(from: slots, count: slotCapacity)
    slots.deallocate()
    slots = grown
    slotCapacity = newCapacity
  }

  // MARK: - CSV

  private func readHeader() throws {
    while true {
      if try parseCSVRecord(header: true) {
        if recordLength == 0 && isBlank { continue }
        break
      }
      if !(try fill()) && start == end { return }
    }
    columns = (0..<slotCount).map { field($0).string }
    for (i, name) in columns.enumerated() where columnIndexes[name] == nil { columnIndexes[name] = i }
    start += consumed
    consumed = 0
  }

  /// Parses one CSV record at `start`. False when the buffer ends inside it (and more input may
  /// follow); on success sets the record's range, its fields and `consumed`.
  private func parseCSVRecord(header: Bool) throws -> Bool {
    // Locals, not properties, in the loops: class properties cost an exclusivity check per access.
    let buffer = self.buffer
    let start = self.start
    let end = self.end
    let atEnd = atEndOfInput
    var slots = self.slots
    var slotCapacity = self.slotCapacity
    var scratch = self.scratch
    defer { self.scratch = scratch }
    scratch.count = 0
    isBlank = false
    var i = start
    var lines = 0
    var fieldIndex = 0
    if i == end { return false }
    // A line with nothing on it is not a record of one empty field.
    if buffer[i] == 0x0A || (buffer[i] == 0x0D && i + 1 < end && buffer[i + 1] == 0x0A) {
      self.start += buffer[i] == 0x0A ? 1 : 2
      nextLine += 1
      recordLength = 0
      isBlank = true
      consumed = 0
      return true
    }
    if buffer[i] == 0x0D && i + 1 == end && !atEnd { return false }
    var recordEnd = 0
    var recordConsumed = 0
    while true {
      if fieldIndex == slotCapacity {
        reserveSlots(fieldIndex + 1)
        slots = self.slots
        slotCapacity = self.slotCapacity
      }
      if i < end && buffer[i] == UInt8(ascii: "\"") {
        let contentStart = i + 1
        var j = contentStart
        var escaped = false
        var closed = false
        while j < end {
          let b = buffer[j]
          if b == UInt8(ascii: "\"") {
            if j + 1 < end && buffer[j + 1] == UInt8(ascii: "\"") {
              escaped = true
              j += 2
              continue
            }
            if j + 1 == end && !atEnd { return false }
            closed = true
            break
          }
          if b == 0x0A { lines += 1 }
          j += 1
        }
        if !closed {
          guard atEnd else { return false }
          throw malformed(nextLine, "a quoted field is not closed; end it with '\"' (and write a quote inside as \"\")")
        }
        if escaped {
          let scratchStart = scratch.count
          var k = contentStart
          while k < j {
            scratch.append(buffer[k])
            k += buffer[k] == UInt8(ascii: "\"") ? 2 : 1
          }
          slots[fieldIndex] = Slot(
            kind: .string, inScratch: true, start: scratchStart, count: scratch.count - scratchStart)
        } else {
          slots[fieldIndex] = Slot(kind: .string, inScratch: false, start: contentStart, count: j - contentStart)
        }
        fieldIndex += 1
        i = j + 1
        if i == end {
          guard atEnd else { return false }
          recordEnd = i
          recordConsumed = i - start
          break
        }
        let b = buffer[i]
        if b == UInt8(ascii: ",") {
          i += 1
          continue
        }
        if b == 0x0A {
          recordEnd = i
          recordConsumed = i + 1 - start
          break
        }
        if b == 0x0D {
          if i + 1 == end && !atEnd { return false }
          if i + 1 == end || buffer[i + 1] == 0x0A {
            recordEnd = i
            recordConsumed = min(i + 2, end) - start
            break
          }
        }
        throw malformed(
          nextLine + lines,
          "unexpected text after a closing quote; quote the whole field and write inner quotes as \"\"")
      } else {
        let fieldStart = i
        while i < end {
          let b = buffer[i]
          if b == UInt8(ascii: ",") || b == 0x0A { break }
          i += 1
        }
        if i == end && !atEnd { return false }
        var fieldEnd = i
        let terminatesRecord = i == end || buffer[i] == 0x0A
        if terminatesRecord && fieldEnd > fieldStart && buffer[fieldEnd - 1] == 0x0D { fieldEnd -= 1 }
        let kind: Field.Kind = fieldEnd == fieldStart ? .null : .string
        slots[fieldIndex] = Slot(kind: kind, inScratch: false, start: fieldStart, count: fieldEnd - fieldStart)
        fieldIndex += 1
        if terminatesRecord {
          recordEnd = fieldEnd
          recordConsumed = min(i + 1, end) - start
          break
        }
        i += 1
        if i == end && !atEnd { return false }
      }
    }
    consumed = recordConsumed
    slotCount = fieldIndex
    recordStart = start
    recordLength = recordEnd - start
    lineNumber = nextLine
    nextLine += lines + 1
    if !header && fieldIndex != columns.count {
      throw malformed(
        lineNumber,
        "this row has \(fieldIndex) field\(fieldIndex == 1 ? "" : "s") but the header has \(columns.count); "
          + "quote fields that contain commas")
    }
    return true
  }

  // MARK: - JSON Lines

  /// Parses the line at `start`. False when the buffer holds no complete line yet.
  private func parseJSONLine() throws -> Bool {
    // Locals, not properties, in the loops: class properties cost an exclusivity check per access.
    let buffer = self.buffer
    let start = self.start
    isBlank = false
    let available = end - start
    guard available > 0 else { return false }
    var lineEnd: Int
    var terminator = 1
    if let newline = memchr(buffer + start, 0x0A, available) {
      lineEnd = buffer.distance(to: newline.assumingMemoryBound(to: UInt8.self))
    } else {
      guard atEndOfInput else { return false }
      lineEnd = end
      terminator = 0
    }
    consumed = lineEnd + terminator - start
    if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
    lineNumber = nextLine
    nextLine += 1
    recordStart = start
    recordLength = lineEnd - start
    let scanner = JSONScanner(bytes: UnsafePointer(buffer), end: lineEnd)
    var i = scanner.skipSpace(start)
    if i == lineEnd {
      // Whitespace only: skipped like an empty line.
      self.start += consumed
      consumed = 0
      recordLength = 0
      isBlank = true
      return true
    }
    var slots = self.slots
    (slots).update(repeating: .missing, count: slotCount)
    guard parsesFields else { return true }
    var scratch = self.scratch
    defer { self.scratch = scratch }
    scratch.count = 0
    do {
      guard buffer[i] == UInt8(ascii: "{") else {
        let what: String
        switch buffer[i] {
        case UInt8(ascii: "["): what = "an array"
        case UInt8(ascii: "\""): what = "a string"
        default: what = "not a JSON object"
        }
        _ = try scanner.scanValue(i, depth: 0)
        throw JSONSyntaxError(offset: i, message: "the line is \(what)")
      }
      i = scanner.skipSpace(i + 1)
      var previousColumn = -1
      if i < lineEnd && buffer[i] == UInt8(ascii: "}") {
        i += 1
      } else {
        while true {
          guard i < lineEnd && buffer[i] == UInt8(ascii: "\"") else {
            throw JSONSyntaxError(offset: i, message: "expected a quoted key")
          }
          let (keyEnd, keyEscaped) = try scanner.scanString(i)
          let knownColumns = slotCount
          let column = self.column(keyStart: i + 1, keyEnd: keyEnd - 1, escaped: keyEscaped, after: previousColumn)
          if slotCount != knownColumns { slots = self.slots }
          previousColumn = column
          i = scanner.skipSpace(keyEnd)
          guard i < lineEnd && buffer[i] == UInt8(ascii: ":") else {
            throw JSONSyntaxError(offset: i, message: "expected ':'")
          }
          i = scanner.skipSpace(i + 1)
          guard i < lineEnd else { throw JSONSyntaxError(offset: i, message: "a value is missing") }
          let valueStart = i
          let slot: Slot
          switch buffer[i] {
          case UInt8(ascii: "\""):
            let (stringEnd, escaped) = try scanner.scanString(i)
            i = stringEnd
            if escaped {
              let scratchStart = scratch.count
              JSONScanner.unescape(buffer + valueStart + 1, count: stringEnd - valueStart - 2, into: &scratch)
              slot = Slot(kind: .string, inScratch: true, start: scratchStart, count: scratch.count - scratchStart)
            } else {
              slot = Slot(kind: .string, inScratch: false, start: valueStart + 1, count: stringEnd - valueStart - 2)
            }
          case UInt8(ascii: "{"), UInt8(ascii: "["):
            i = try scanner.scanContainer(i, depth: 1)
            slot = Slot(kind: .nested, inScratch: false, start: valueStart, count: i - valueStart)
          case UInt8(ascii: "t"), UInt8(ascii: "f"):
            i = try scanner.scanLiteral(i, buffer[i] == UInt8(ascii: "t") ? "true" : "false")
            slot = Slot(kind: .bool, inScratch: false, start: valueStart, count: i - valueStart)
          case UInt8(ascii: "n"):
            i = try scanner.scanLiteral(i, "null")
            slot = Slot(kind: .null, inScratch: false, start: valueStart, count: i - valueStart)
          default:
            i = try scanner.scanNumber(i)
            slot = Slot(kind: .number, inScratch: false, start: valueStart, count: i - valueStart)
          }
          slots[column] = slot
          i = scanner.skipSpace(i)
          guard i < lineEnd else { throw JSONSyntaxError(offset: i, message: "unterminated object") }
          if buffer[i] == UInt8(ascii: "}") {
            i += 1
            break
          }
          guard buffer[i] == UInt8(ascii: ",") else { throw JSONSyntaxError(offset: i, message: "expected ',' or '}'") }
          i = scanner.skipSpace(i + 1)
        }
      }
      i = scanner.skipSpace(i)
      if i != lineEnd { throw JSONSyntaxError(offset: i, message: "unexpected text after the object") }
    } catch let error as JSONSyntaxError {
      throw malformed(
        lineNumber,
        "invalid JSON at column \(error.offset - start + 1): \(error.message); each line must be one JSON object")
    }
    return true
  }

  /// The column of a key, adding it when new. Keys usually come in the same order on every line,
  /// so the column after the previous key is tried first, without making a string.
  private func column(keyStart: Int, keyEnd: Int, escaped: Bool, after previous: Int) -> Int {
    let length = keyEnd - keyStart
    if !escaped {
      let guess = previous + 1
      if guess < columnBytes.count, columnBytes[guess].count == length,
        length == 0
          || columnBytes[guess].withUnsafeBufferPointer({ memcmp($0.baseAddress!, buffer + keyStart, length) == 0 })
      {
        return guess
      }
    }
    let name: String
    if escaped {
      var unescaped = ScratchBuffer(capacity: max(16, length))
      defer { unescaped.free() }
      JSONScanner.unescape(buffer + keyStart, count: length, into: &unescaped)
      name = String(decoding: UnsafeBufferPointer(start: unescaped.base, count: unescaped.count), as: UTF8.self)
    } else {
      name = String(decoding: UnsafeBufferPointer(start: buffer + keyStart, count: length), as: UTF8.self)
    }
    if let known = columnIndexes[name] { return known }
    let index = columns.count
    columns.append(name)
    columnIndexes[name] = index
    columnBytes.append(Array(name.utf8))
    reserveSlots(index + 1)
    slots[index] = .missing
    slotCount = index + 1
    return index
  }
}
