import DVBasics
import DVPipeline
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Checks a CSV or JSON Lines table against a schema file (see `Schema` for its format) and
/// writes a report listing every violation:
///
/// ```yaml
/// with: {input: data/raw/queries.jsonl, schema: schemas/queries.yaml, report: reports/validation.json,
///        on_error: fail}
/// ```
///
/// `report` defaults to the stage's single `metrics:` output; without either no report is
/// written. `on_error: fail` (the default) fails the stage after writing the report; `warn` logs
/// the same summary and succeeds. The report is JSON: input, schema, rows, valid_rows,
/// violations_count, by_rule (count per rule) and violations, each `{row, line, column, rule,
/// value, message}` (row and line are null for checks about the whole file). Violations stream
/// through a temporary file, so memory stays bounded however many there are.
public struct ValidatePlugin: StagePlugin {
  public static let kind = "validate"
  public static let version = "1"

  static let options = [
    OptionSpec("input", .string, required: true),
    OptionSpec("schema", .string, required: true),
    OptionSpec("report", .string),
    OptionSpec("on_error", .string, allowed: ["fail", "warn"]),
  ]

  public init() {}

  public func validate(config: PluginConfig) throws {
    try config.check(plugin: Self.kind, options: Self.options)
    try checkTableInput(config, option: "input")
    let schema = try config.path("schema")!
    _ = try config.path("report")
    // The schema is usually a committed file: a mistake in it is reported now, at its
    // line:column, before anything runs. One that an earlier stage writes is checked when it runs.
    if let root = currentWorkspaceRoot(),
      let text = try? FileSystem.readTextIfPresent(schema.absolute(under: root))
    {
      _ = try Schema(text: text, name: schema.value)
    }
  }

  public func run(_ context: StageContext) async throws {
    let config = context.config
    let input = try config.path("input")!
    let schemaPath = try config.path("schema")!
    let report = try reportPath(context)
    guard let text = try FileSystem.readTextIfPresent(context.absolute(schemaPath)) else {
      throw StageRunError.failed("\(schemaPath.value): no such schema file; create it or fix the 'schema' option")
    }
    let schema: Schema
    do {
      schema = try Schema(text: text, name: schemaPath.value)
    } catch let error as FileFormatError {
      throw StageRunError.failed(error.description)
    }
    let tmp = context.workspaceRoot + "/.pipeline/tmp"
    try FileSystem.createDirectory(tmp)
    var validator = try TableValidator(
      schema: schema, inputPath: context.absolute(input), inputName: input.value, temporaryDirectory: tmp)
    defer { validator.removeTemporaryFiles() }
    let result = try tableErrors { try validator.run() }
    if let report {
      try validator.writeReport(
        to: context.absolute(report), input: input.value, schema: schemaPath.value, result: result)
    }
    context.log(
      "\(input.value): \(result.rows) row\(result.rows == 1 ? "" : "s") checked against \(schemaPath.value), "
        + "\(result.violationsCount) violation\(result.violationsCount == 1 ? "" : "s")"
    )
    guard result.violationsCount > 0 else { return }
    let message = result.summary(input: input.value, schema: schemaPath.value, report: report?.value)
    if config.string("on_error") == "warn" {
      context.log("warning: " + message)
    } else {
      throw StageRunError.failed(message)
    }
  }
}

/// What a validation found, in numbers.
struct ValidationResult {
  var rows = 0
  var invalidRows = 0
  var violationsCount = 0
  var fileViolations = 0
  var byRule: [String: Int] = [:]
  /// The earliest violation, as the one-line summary shows it.
  var first: String?

  var validRows: Int { rows - invalidRows }

  func summary(input: String, schema: String, report: String?) -> String {
    var text: String
    if invalidRows > 0 {
      text =
        "\(input): \(invalidRows) row\(invalidRows == 1 ? "" : "s") violate\(invalidRows == 1 ? "s" : "") \(schema)"
      if fileViolations > 0 { text += " and \(fileViolations) file check\(fileViolations == 1 ? "" : "s") fail" }
    } else {
      text = "\(input) violates \(schema)"
    }
    if let first { text += " (first: \(first))" }
    if let report { text += "; see \(report)" }
    return text
  }
}

/// One broken rule.
struct Violation {
  /// Nil for checks about the whole file (header, row count).
  var row: Int?
  var line: Int?
  var column: String?
  var rule: String
  /// The offending value's text; nil for null or absent values.
  var value: String?
  var message: String

  /// The violation as one JSON object.
  var json: String {
    var out = "{\"row\":" + (row.map(String.init) ?? "null")
    out += ",\"line\":" + (line.map(String.init) ?? "null")
    out += ",\"column\":" + (column.map(JSONText.quoted) ?? "null")
    out += ",\"rule\":" + JSONText.quoted(rule)
    out += ",\"value\":" + (value.map(JSONText.quoted) ?? "null")
    out += ",\"message\":" + JSONText.quoted(message) + "}"
    return out
  }

  /// How the stage's one-line summary names it.
  var summary: String { row.map { "row \($0), \(message)" } ?? message }
}

/// Runs a schema over one table: a scan with every per-row rule, then (only when `unique` found
/// repeats) a second scan that lists the repeated values. A struct: the per-field checks mutate
/// its state, and a class's stored properties would pay for a dynamic exclusivity check on each
/// access.
struct TableValidator {
  private let schema: Schema
  private let inputPath: String
  private let inputName: String
  private let temporaryDirectory: String
  private let reader: TableReader
  private let isCSV: Bool

  /// Per schema column: its index in the reader's columns, once known.
  private var indexes: [Int?]
  private var knownColumnCount = -1
  /// Reader columns that the schema names (for `strict`).
  private var inSchema: [Bool] = []
  /// CSV columns missing from the header: their rules are not checked row by row.
  private var absent: [Bool]
  private var duplicates: [DuplicateFinder?]
  private var regexScratch: [CChar] = []

  private var fileViolations: [Violation] = []
  private let rowLog: ViolationFile
  private var duplicateLog: ViolationFile?
  /// Both logs in row order, when `unique` found repeats.
  private var mergedLog: ViolationFile?
  private var result = ValidationResult()
  private var firstRow: (row: Int, text: String)?

  init(schema: Schema, inputPath: String, inputName: String, temporaryDirectory: String) throws {
    self.schema = schema
    self.inputPath = inputPath
    self.inputName = inputName
    self.temporaryDirectory = temporaryDirectory
    reader = try tableErrors { try TableReader(path: inputPath, displayName: inputName) }
    isCSV = reader.type.format == .csv
    indexes = Array(repeating: nil, count: schema.columns.count)
    absent = Array(repeating: false, count: schema.columns.count)
    duplicates = Array(repeating: nil, count: schema.columns.count)
    rowLog = try ViolationFile(directory: temporaryDirectory)
    // Each finder spills to disk past its budget; together they stay well under the 200 MB a
    // stage may use.
    let budget = max(8 << 20, (64 << 20) / max(1, schema.columns.filter(\.unique).count))
    for (i, column) in schema.columns.enumerated() where column.unique {
      duplicates[i] = try DuplicateFinder(temporaryDirectory: temporaryDirectory, memoryBudget: budget)
    }
  }

  func removeTemporaryFiles() {
    rowLog.remove()
    duplicateLog?.remove()
    mergedLog?.remove()
  }

  /// Scans the table and returns the counts; the violations wait in temporary files for
  /// `writeReport`.
  mutating func run() throws -> ValidationResult {
    if isCSV { checkHeader() }
    let strictKeys = schema.strict && !isCSV
    try schema.columns.withUnsafeBufferPointer { columns in
      while try reader.next() {
        if reader.columns.count != knownColumnCount { bindColumns() }
        var rowHadViolation = false
        for c in columns.indices where !absent[c] {
          if try check(columns.baseAddress! + c, at: c) { rowHadViolation = true }
        }
        if strictKeys && checkUnexpectedKeys() { rowHadViolation = true }
        if rowHadViolation { result.invalidRows += 1 }
      }
    }
    result.rows = reader.rowNumber
    if let min = schema.minRows, result.rows < min {
      addFileViolation(
        rule: "rows", column: nil, value: String(result.rows), "has \(result.rows) rows, fewer than the minimum \(min)")
    }
    if let max = schema.maxRows, result.rows > max {
      addFileViolation(
        rule: "rows", column: nil, value: String(result.rows), "has \(result.rows) rows, more than the maximum \(max)")
    }
    try rowLog.flush()
    try listDuplicates()
    try mergeLogs()
    result.fileViolations = fileViolations.count
    // A file-level problem (a column missing from the header) usually explains the row ones.
    result.first = fileViolations.first?.summary ?? firstRow.map { "row \($0.row), \($0.text)" }
    return result
  }

  private mutating func checkHeader() {
    let header = Set(reader.columns)
    for (c, column) in schema.columns.enumerated() where !header.contains(column.name) {
      absent[c] = true
      if column.required {
        addFileViolation(
          rule: "required", column: column.name, value: nil, "column '\(column.name)' is missing from the header")
      }
    }
    if schema.strict {
      let names = Set(schema.columns.map(\.name))
      for name in reader.columns where !names.contains(name) {
        addFileViolation(rule: "strict", column: name, value: nil, "column '\(name)' is not in the schema")
      }
    }
  }

  /// JSON Lines keys appear as rows are read: the schema's columns are looked up again when new
  /// ones arrive.
  private mutating func bindColumns() {
    knownColumnCount = reader.columns.count
    for (c, column) in schema.columns.enumerated() where indexes[c] == nil {
      indexes[c] = reader.columnIndex(column.name)
    }
    let names = Set(schema.columns.map(\.name))
    while inSchema.count < reader.columns.count { inSchema.append(names.contains(reader.columns[inSchema.count])) }
  }

  private mutating func checkUnexpectedKeys() -> Bool {
    var found = false
    for i in inSchema.indices where !inSchema[i] && reader.field(i).kind != .missing {
      let name = reader.columns[i]
      addRowViolation(rule: "strict", column: name, value: reader.field(i), "'\(name)' is not in the schema")
      found = true
    }
    return found
  }

  /// Checks one column of the current row; true when a rule is broken. The rules are read in
  /// place through a pointer: copying a Column per field would retain every reference it holds.
  private mutating func check(_ rules: UnsafePointer<Schema.Column>, at c: Int) throws -> Bool {
    let field =
      indexes[c].map { reader.field($0) } ?? Field(kind: .missing, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
    switch field.kind {
    case .missing:
      if rules.pointee.required {
        addRowViolation(rule: "required", column: rules.pointee.name, value: nil, "'\(rules.pointee.name)' is missing")
        return true
      }
      return false
    case .null:
      if !rules.pointee.nullable {
        addRowViolation(rule: "nullable", column: rules.pointee.name, value: nil, "'\(rules.pointee.name)' is null")
        return true
      }
      return false
    default: break
    }
    var number: Double?
    var boolText: String?
    switch rules.pointee.type {
    case .int?:
      guard isCSV ? field.kind == .string : field.kind == .number, let value = field.integer() else {
        return typeViolation(rules, field)
      }
      number = Double(value)
    case .float?:
      guard isCSV ? field.kind == .string : field.kind == .number, let value = field.double() else {
        return typeViolation(rules, field)
      }
      number = value
    case .string?:
      if !isCSV && field.kind != .string { return typeViolation(rules, field) }
    case .bool?:
      guard
        let value = isCSV
          ? Self.csvBool(field.bytes) : (field.kind == .bool ? field.bytes.first == UInt8(ascii: "t") : nil)
      else { return typeViolation(rules, field) }
      boolText = value ? "true" : "false"
    case nil: break
    }
    var broken = false
    if let allowed = rules.pointee.allowedNumbers, let number, !allowed.contains(number) {
      broken = true
      addRowViolation(
        rule: "allowed", column: rules.pointee.name, value: field,
        "'\(rules.pointee.name)' is not one of: \(rules.pointee.allowedDescription)")
    }
    if let allowed = rules.pointee.allowedTexts {
      let matches: Bool
      if let boolText {
        matches = allowed.contains(Array(boolText.utf8))
      } else {
        matches = allowed.contains { $0.withUnsafeBytes { $0.elementsEqual(field.bytes) } }
      }
      if !matches {
        broken = true
        addRowViolation(
          rule: "allowed", column: rules.pointee.name, value: field,
          "'\(rules.pointee.name)' is not one of: \(rules.pointee.allowedDescription)")
      }
    }
    if let number {
      if let min = rules.pointee.min, number < min {
        broken = true
        addRowViolation(
          rule: "min", column: rules.pointee.name, value: field,
          "'\(rules.pointee.name)' is below min \(Schema.format(min))")
      }
      if let max = rules.pointee.max, number > max {
        broken = true
        addRowViolation(
          rule: "max", column: rules.pointee.name, value: field,
          "'\(rules.pointee.name)' is above max \(Schema.format(max))")
      }
    }
    if field.kind == .string {
      if rules.pointee.minLength != nil || rules.pointee.maxLength != nil {
        let length = Self.characterCount(field.bytes)
        if let min = rules.pointee.minLength, length < min {
          broken = true
          addRowViolation(
            rule: "min_length", column: rules.pointee.name, value: field,
            "'\(rules.pointee.name)' is shorter than min_length \(min)")
        }
        if let max = rules.pointee.maxLength, length > max {
          broken = true
          addRowViolation(
            rule: "max_length", column: rules.pointee.name, value: field,
            "'\(rules.pointee.name)' is longer than max_length \(max)")
        }
      }
      if let regex = rules.pointee.regex, !regex.matches(field.bytes, scratch: &regexScratch) {
        broken = true
        addRowViolation(
          rule: "regex", column: rules.pointee.name, value: field,
          "'\(rules.pointee.name)' does not match regex '\(regex.pattern)'")
      }
    }
    if let finder = duplicates[c] {
      try finder.add(Self.uniqueKey(field, type: rules.pointee.type, number: number), row: reader.rowNumber)
    }
    return broken
  }

  /// Equal values hash equally: ints and floats by value (`1` and `1.0` in a float column are the
  /// same number), everything else by its bytes and JSON kind.
  private static func uniqueKey(_ field: Field, type: Schema.ColumnType?, number: Double?) -> Hash128 {
    if var number, type == .int || type == .float {
      if number == 0 { number = 0 }
      var bits = number.bitPattern
      return withUnsafeBytes(of: &bits) { Hash128($0, seed: 1) }
    }
    let seed: UInt64
    switch field.kind {
    case .string: seed = 2
    case .number: seed = 3
    case .bool: seed = 4
    default: seed = 5
    }
    return Hash128(field.bytes, seed: seed)
  }

  private mutating func typeViolation(_ rules: UnsafePointer<Schema.Column>, _ field: Field) -> Bool {
    let column = rules.pointee
    let article = column.type == .int ? "an" : "a"
    addRowViolation(
      rule: "type", column: column.name, value: field, "'\(column.name)' is not \(article) \(column.type!.rawValue)")
    return true
  }

  /// CSV spellings of booleans: true/false in lower, title or upper case.
  private static func csvBool(_ bytes: UnsafeRawBufferPointer) -> Bool? {
    switch String(decoding: bytes, as: UTF8.self) {
    case "true", "True", "TRUE": return true
    case "false", "False", "FALSE": return false
    default: return nil
    }
  }

  /// Unicode scalars in UTF-8 bytes (every byte that does not continue a sequence).
  static func characterCount(_ bytes: UnsafeRawBufferPointer) -> Int {
    var count = 0
    for byte in bytes where byte & 0xC0 != 0x80 { count += 1 }
    return count
  }

  private mutating func addFileViolation(rule: String, column: String?, value: String?, _ message: String) {
    fileViolations.append(Violation(row: nil, line: nil, column: column, rule: rule, value: value, message: message))
    result.violationsCount += 1
    result.byRule[rule, default: 0] += 1
  }

  private mutating func addRowViolation(rule: String, column: String, value: Field?, _ message: String) {
    let violation = Violation(
      row: reader.rowNumber, line: reader.lineNumber, column: column, rule: rule, value: value.map(reportValue),
      message: message)
    rowLog.append(violation)
    result.violationsCount += 1
    result.byRule[rule, default: 0] += 1
    if firstRow == nil { firstRow = (reader.rowNumber, message) }
  }

  /// Re-reads the table for the rows that `unique` found repeated, to name their values.
  private mutating func listDuplicates() throws {
    var bitmaps: [(column: Int, rows: RowBitmap)] = []
    for (c, finder) in duplicates.enumerated() {
      guard let finder else { continue }
      let rows = try finder.finish()
      if rows.count > 0 { bitmaps.append((c, rows)) }
    }
    guard !bitmaps.isEmpty else { return }
    let log = try ViolationFile(directory: temporaryDirectory)
    duplicateLog = log
    let again = try TableReader(path: inputPath, displayName: inputName)
    while try again.next() {
      let row = again.rowNumber
      for (c, rows) in bitmaps where rows.contains(row) {
        let name = schema.columns[c].name
        let field = again.columnIndex(name).map { again.field($0) }
        let message = "'\(name)' repeats a value of an earlier row"
        log.append(
          Violation(
            row: row, line: again.lineNumber, column: name, rule: "unique", value: field.map(reportValue),
            message: message))
        result.violationsCount += 1
        result.byRule["unique", default: 0] += 1
        if firstRow == nil || row < firstRow!.row { firstRow = (row, message) }
      }
    }
    try log.flush()
  }

  /// Merges the two row-ordered violation lists; a row can break a per-row rule and repeat a
  /// value, so the distinct invalid rows are counted here.
  private mutating func mergeLogs() throws {
    guard let duplicateLog else { return }
    let out = try ViolationFile(directory: temporaryDirectory)
    mergedLog = out
    var invalid = 0
    var lastRow = -1
    try mergeByRow(rowLog.path, duplicateLog.path) { line, row in
      if row != lastRow {
        invalid += 1
        lastRow = row
      }
      out.appendLine(line)
    }
    try out.flush()
    result.invalidRows = invalid
  }

  /// Writes the report atomically: the summary, then the file-level violations, then the row
  /// violations of both scans merged in row order.
  func writeReport(to path: String, input: String, schema: String, result: ValidationResult) throws {
    let writer = try AtomicFileWriter(path: path)
    var head = "{\n  \"input\": \(JSONText.quoted(input)),\n  \"schema\": \(JSONText.quoted(schema)),\n"
    head += "  \"rows\": \(result.rows),\n  \"valid_rows\": \(result.validRows),\n"
    head += "  \"violations_count\": \(result.violationsCount),\n  \"by_rule\": {"
    head += result.byRule.keys.sorted().map { "\(JSONText.quoted($0)): \(result.byRule[$0]!)" }.joined(separator: ", ")
    head += "},\n  \"violations\": ["
    try writer.write(head)
    var separator = "\n    "
    for violation in fileViolations {
      try writer.write(separator + violation.json)
      separator = ",\n    "
    }
    try forEachLine(of: mergedLog?.path ?? rowLog.path) { line in
      try writer.write(separator)
      try writer.write(line)
      separator = ",\n    "
    }
    try writer.write(separator == "\n    " ? "]\n}\n" : "\n  ]\n}\n")
    try writer.commit()
  }
}

/// A field's text as a report shows it: at most 200 bytes.
private func reportValue(_ field: Field) -> String {
  let limit = 200
  if field.bytes.count <= limit { return field.string }
  return String(decoding: UnsafeRawBufferPointer(rebasing: field.bytes[0..<limit]), as: UTF8.self) + "…"
}

/// Turns table-layer errors into one-line stage failures.
func tableErrors<T>(_ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as TableError {
    throw StageRunError.failed(error.description)
  }
}

/// Checks that a path option names a table file (.csv, .jsonl, .ndjson, optionally .gz).
func checkTableInput(_ config: PluginConfig, option: String) throws {
  guard let path = try config.path(option) else { return }
  guard TableFileType(path: path.value) != nil else {
    throw config.error(option, "'\(path.value)' is not a table file; name it with one of \(TableFileType.supported)")
  }
}

/// The workspace containing the current directory, found as dv finds it (the nearest directory
/// upwards with a `.pipeline/`); nil outside one. `validate(config:)` gets no workspace root,
/// and uses this to read a schema file early.
func currentWorkspaceRoot() -> String? {
  guard var candidate = try? FileSystem.currentDirectory() else { return nil }
  while true {
    if FileSystem.isDirectory(candidate + "/.pipeline") { return candidate }
    if candidate == "/" || candidate.isEmpty { return nil }
    candidate = (candidate as NSString).deletingLastPathComponent
  }
}

// MARK: - Streams of violations

/// A temporary file of violations, one JSON object per line, written through a buffer. Appending
/// cannot throw (it happens deep in the per-field checks); a failed write is kept and thrown by
/// the next `flush()`.
final class ViolationFile {
  let path: String
  private let fd: Int32
  private var buffer: [UInt8] = []
  private var writeError: Error?

  init(directory: String) throws {
    path = directory + "/validate-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).jsonl"
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    if fd < 0 { throw SystemError("creating '\(path)'", errno: errno) }
    buffer.reserveCapacity(1 << 20)
  }

  deinit { close(fd) }

  func append(_ violation: Violation) { appendLine(violation.json) }

  func appendLine(_ line: String) {
    buffer.append(contentsOf: line.utf8)
    buffer.append(0x0A)
    if buffer.count >= 1 << 20 && writeError == nil {
      do { try writeBuffer() } catch { writeError = error }
    }
  }

  /// Writes what is buffered; throws the first write error since the file was created.
  func flush() throws {
    if let writeError { throw writeError }
    try writeBuffer()
  }

  private func writeBuffer() throws {
    try buffer.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
    buffer.removeAll(keepingCapacity: true)
  }

  func remove() { unlink(path) }
}

/// Calls `body` with every line of a file, read in large chunks.
func forEachLine(of path: String, _ body: (String) throws -> Void) throws {
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  if fd < 0 { throw SystemError("opening '\(path)'", errno: errno) }
  defer { close(fd) }
  var pending: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 1 << 20)
  while true {
    let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    if n < 0 {
      if errno == EINTR { continue }
      throw SystemError("reading '\(path)'", errno: errno)
    }
    if n == 0 { break }
    var lineStart = 0
    for i in 0..<n where chunk[i] == 0x0A {
      if pending.isEmpty {
        try body(String(decoding: chunk[lineStart..<i], as: UTF8.self))
      } else {
        pending.append(contentsOf: chunk[lineStart..<i])
        try body(String(decoding: pending, as: UTF8.self))
        pending.removeAll(keepingCapacity: true)
      }
      lineStart = i + 1
    }
    pending.append(contentsOf: chunk[lineStart..<n])
  }
  if !pending.isEmpty { try body(String(decoding: pending, as: UTF8.self)) }
}

/// Merges two violation files, each in row order, into row order; `body` gets each line and its
/// row.
private func mergeByRow(_ a: String, _ b: String, _ body: (String, Int) throws -> Void) throws {
  // The second file is small next to the table (one line per repeated value) but not bounded:
  // it is read in step with the first through a line iterator over its own chunks.
  let second = try LineIterator(path: b)
  var pendingB = try second.next()
  func row(_ line: String) -> Int {
    // Lines start with {"row":N, as `Violation.json` writes them.
    let digits = line.utf8.dropFirst(7).prefix { $0 >= 48 && $0 <= 57 }
    return Int(String(decoding: digits, as: UTF8.self)) ?? 0
  }
  try forEachLine(of: a) { line in
    let r = row(line)
    while let b = pendingB, row(b) < r {
      try body(b, row(b))
      pendingB = try second.next()
    }
    try body(line, r)
  }
  while let b = pendingB {
    try body(b, row(b))
    pendingB = try second.next()
  }
}

/// Reads a file's lines one at a time.
private final class LineIterator {
  private let fd: Int32
  private let path: String
  private var buffer: [UInt8] = []
  private var position = 0
  private var atEnd = false

  init(path: String) throws {
    self.path = path
    fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError("opening '\(path)'", errno: errno) }
  }

  deinit { close(fd) }

  func next() throws -> String? {
    while true {
      if let newline = buffer[position...].firstIndex(of: 0x0A) {
        let line = String(decoding: buffer[position..<newline], as: UTF8.self)
        position = newline + 1
        return line
      }
      if atEnd {
        if position < buffer.count {
          let line = String(decoding: buffer[position...], as: UTF8.self)
          position = buffer.count
          return line
        }
        return nil
      }
      buffer.removeSubrange(0..<position)
      position = 0
      var chunk = [UInt8](repeating: 0, count: 1 << 16)
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("reading '\(path)'", errno: errno)
      }
      if n == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<n]) }
    }
  }
}

// MARK: - Output shared by validate and profile

/// Writes a file atomically in pieces: into a temporary file beside it, then fsync and rename.
final class AtomicFileWriter {
  private let path: String
  private let temporary: String
  private var fd: Int32
  private var buffer: [UInt8] = []

  init(path: String) throws {
    self.path = path
    let directory = (path as NSString).deletingLastPathComponent
    try FileSystem.createDirectory(directory.isEmpty ? "." : directory)
    temporary =
      (directory.isEmpty ? "" : directory + "/") + ".\((path as NSString).lastPathComponent).dvtmp.\(getpid())."
      + String(UInt32.random(in: 0...UInt32.max))
    fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw SystemError("creating '\(temporary)'", errno: errno) }
  }

  deinit {
    if fd >= 0 {
      close(fd)
      unlink(temporary)
    }
  }

  func write(_ text: String) throws {
    buffer.append(contentsOf: text.utf8)
    if buffer.count >= 1 << 20 { try flush() }
  }

  private func flush() throws {
    try buffer.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: temporary) }
    buffer.removeAll(keepingCapacity: true)
  }

  /// Makes the new content durable and puts it in place.
  func commit() throws {
    try flush()
    if fsync(fd) != 0 { throw SystemError("syncing '\(temporary)'", errno: errno) }
    close(fd)
    fd = -1
    if rename(temporary, path) != 0 {
      let error = SystemError("replacing '\(path)'", errno: errno)
      unlink(temporary)
      throw error
    }
    FileSystem.syncDirectory((path as NSString).deletingLastPathComponent)
  }
}
