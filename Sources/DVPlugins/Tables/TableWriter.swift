import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Writes a CSV or JSON Lines table (gzip when the name ends in `.gz`) into a temporary file
/// beside `path`; `commit()` renames it into place, so a failed run leaves no partial output.
public final class TableWriter {
  public let type: TableFileType
  public let columns: [String]
  /// Data rows written so far (the CSV header is not counted).
  public private(set) var rowsWritten = 0

  private let path: String
  private let temporaryPath: String
  private var fd: Int32
  private let sink: ByteSink
  private let buffer: UnsafeMutablePointer<UInt8>
  private let capacity = 1 << 20
  private var count = 0
  private var finished = false

  /// Creates the temporary file; a CSV table gets its header row now.
  public init(path: String, type: TableFileType, columns: [String]) throws {
    self.path = path
    self.type = type
    self.columns = columns
    let directory = (path as NSString).deletingLastPathComponent
    let name = (path as NSString).lastPathComponent
    temporaryPath =
      (directory.isEmpty ? "" : directory + "/") + ".\(name).dvtmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 {
      throw TableError.io(file: path, message: "cannot create a file beside it: \(errnoText()); check the directory")
    }
    do {
      sink = try ByteSink(fd: fd, path: path, gzip: type.gzip)
    } catch {
      Glibc.close(fd)
      unlink(temporaryPath)
      throw error
    }
    buffer = .allocate(capacity: capacity)
    if type.format == .csv { try writeCSV(columns.map { Optional($0) }) }
  }

  deinit {
    abandon()
    buffer.deallocate()
  }

  /// Appends a record's bytes and a newline: a record from a reader of the same format.
  public func writeRaw(_ record: UnsafeRawBufferPointer) throws {
    try append(record)
    try append(0x0A)
    rowsWritten += 1
  }

  /// Appends a row of values, one per column. CSV: quoted where needed, nil is an empty field
  /// (and "" a quoted empty one). JSONL: an object of strings, nil is `null`.
  public func writeRow(_ values: [String?]) throws {
    switch type.format {
    case .csv: try writeCSV(values)
    case .jsonl: try writeJSON(values)
    }
    rowsWritten += 1
  }

  /// Flushes, ends the gzip stream, syncs, renames into place and syncs the directory.
  public func commit() throws {
    guard !finished else { return }
    try flush()
    try sink.finish()
    if fsync(fd) != 0 { throw TableError.io(file: path, message: "cannot sync: \(errnoText())") }
    Glibc.close(fd)
    fd = -1
    if rename(temporaryPath, path) != 0 {
      let reason = errnoText()
      unlink(temporaryPath)
      finished = true
      throw TableError.io(file: path, message: "cannot move the finished file into place: \(reason)")
    }
    finished = true
    let directory = (path as NSString).deletingLastPathComponent
    FileSystem.syncDirectory(directory.isEmpty ? "." : directory)
  }

  /// Removes the temporary file; nothing is left at `path`. Also done on deinit without commit.
  public func abandon() {
    guard !finished else { return }
    finished = true
    if fd >= 0 {
      Glibc.close(fd)
      fd = -1
    }
    unlink(temporaryPath)
  }

  // MARK: - Buffering

  private func flush() throws {
    guard count > 0 else { return }
    try sink.write(UnsafeRawBufferPointer(start: buffer, count: count))
    count = 0
  }

  private func append(_ byte: UInt8) throws {
    if count == capacity { try flush() }
    buffer[count] = byte
    count += 1
  }

  private func append(_ bytes: UnsafeRawBufferPointer) throws {
    guard bytes.count > 0 else { return }
    if bytes.count > capacity - count {
      try flush()
      if bytes.count >= capacity { return try sink.write(bytes) }
    }
    (UnsafeMutableRawPointer(buffer) + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    count += bytes.count
  }

  private func append(_ text: String) throws {
    var text = text
    try text.withUTF8 { try append(UnsafeRawBufferPointer($0)) }
  }

  // MARK: - Formats

  private func writeCSV(_ values: [String?]) throws {
    for (i, value) in values.enumerated() {
      if i > 0 { try append(UInt8(ascii: ",")) }
      guard let value else { continue }
      let needsQuotes =
        value.isEmpty
        || value.utf8.contains {
          $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D
        }
      if needsQuotes {
        try append(UInt8(ascii: "\""))
        try append(value.replacingOccurrences(of: "\"", with: "\"\""))
        try append(UInt8(ascii: "\""))
      } else {
        try append(value)
      }
    }
    try append(0x0A)
  }

  private func writeJSON(_ values: [String?]) throws {
    try append(UInt8(ascii: "{"))
    for (i, name) in columns.enumerated() {
      if i > 0 { try append(UInt8(ascii: ",")) }
      try append(JSONText.quoted(name))
      try append(UInt8(ascii: ":"))
      if i < values.count, let value = values[i] {
        try append(JSONText.quoted(value))
      } else {
        try append("null")
      }
    }
    try append("}\n")
  }
}

/// JSON text for strings, as the writers and reports need it.
enum JSONText {
  /// A JSON string literal: quotes, backslashes and control characters escaped.
  static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}
