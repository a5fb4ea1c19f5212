import DVBasics
import DVPipeline

/// Removes duplicate rows from a CSV or JSON Lines table, keeping the first occurrence of each
/// in input order and copying kept records byte for byte.
///
/// Rows are compared by the values of `keys`, or by every field when no keys are given. Values,
/// not spellings, are compared: a CSV field quoted or not, a JSON string escaped or not, and a
/// JSON object's keys in any order and with any spacing compare equal (`{"a":1,"b":2}` repeats
/// `{"b": 2, "a": 1}`). Kinds stay apart: the JSON number 1 differs from the string "1", and a
/// missing key differs from `null`. In CSV, an empty field equals a quoted empty one. Nested
/// values are compared as written. Two passes over the input (hash, then copy) keep memory bounded:
/// `DuplicateFinder` spills to `.pipeline/tmp/` when the hashes outgrow its budget.
public struct DedupPlugin: StagePlugin {
  public static let kind = "dedup"
  public static let version = "1"

  public init() {}

  static let options: [OptionSpec] = [
    OptionSpec("input", .string, required: true),
    OptionSpec("output", .string, required: true),
    OptionSpec("keys", .stringList),
    OptionSpec("trim", .boolean),
    OptionSpec("ignore_case", .boolean),
    OptionSpec("report", .string),
  ]

  /// The checked options of one stage.
  struct Settings: Sendable {
    var input: RelativePath
    var inputType: TableFileType
    var output: RelativePath
    var outputType: TableFileType
    /// Empty: compare whole records.
    var keys: [String]
    var trim: Bool
    var ignoreCase: Bool

    init(_ config: PluginConfig) throws {
      try config.check(plugin: DedupPlugin.kind, options: DedupPlugin.options)
      (input, inputType) = try tableOption(config, "input")
      (output, outputType) = try tableOption(config, "output")
      guard outputType.format == inputType.format else {
        throw config.error(
          "output", "the output must have the input's format ('\(input.basename)'); only '.gz' may differ")
      }
      guard output != input else { throw config.error("output", "the output must be another file than the input") }
      let keys = config.stringList("keys") ?? []
      if config["keys"] != nil && keys.isEmpty {
        throw config.error(
          "keys", "'keys' is empty; name the columns to compare, or leave it out to compare whole rows")
      }
      for (i, key) in keys.enumerated() where key.isEmpty || keys[..<i].contains(key) {
        throw config.error("keys.\(i)", key.isEmpty ? "a key is empty" : "key '\(key)' is listed twice")
      }
      self.keys = keys
      trim = config.boolean("trim") ?? false
      ignoreCase = config.boolean("ignore_case") ?? false
      _ = try config.path("report")
    }
  }

  public func validate(config: PluginConfig) throws { _ = try Settings(config) }

  public func run(_ context: StageContext) async throws {
    let settings = try Settings(context.config)
    let report = try reportPath(context)
    let summary = try await runBlocking { try Self.deduplicate(settings, context: context) }
    context.log(
      "dedup: \(summary.inputRows) rows, \(summary.inputRows - summary.outputRows) duplicates removed, "
        + "\(summary.outputRows) written to \(settings.output)")
    if let report {
      try writeJSONReport(
        [
          "input_rows": .int(summary.inputRows), "output_rows": .int(summary.outputRows),
          "duplicates_removed": .int(summary.inputRows - summary.outputRows),
          "keys": settings.keys.isEmpty ? .null : .array(settings.keys.map { .string($0) }),
        ], to: report, context: context)
    }
  }

  /// Hashes every row, then copies the rows that do not repeat an earlier one.
  static func deduplicate(_ settings: Settings, context: StageContext) throws -> (inputRows: Int, outputRows: Int) {
    do {
      let inputPath = context.absolute(settings.input)
      let duplicates = try findDuplicates(settings, path: inputPath, context: context)
      let reader = try TableReader(path: inputPath, displayName: settings.input.value)
      // The first pass validated every line; the copy pass only needs line boundaries.
      reader.parsesFields = false
      try FileSystem.createDirectory(settings.output.parent.absolute(under: context.workspaceRoot))
      let writer = try TableWriter(
        path: context.absolute(settings.output), type: settings.outputType, columns: reader.columns)
      while try reader.next() {
        if !duplicates.contains(reader.rowNumber) { try writer.writeRaw(reader.rawRecord) }
      }
      try writer.commit()
      return (reader.rowNumber, writer.rowsWritten)
    } catch let error as TableError {
      throw StageRunError.failed(error.description)
    } catch let error as SystemError {
      throw StageRunError.failed("\(error)")
    }
  }

  private static func findDuplicates(_ settings: Settings, path: String, context: StageContext) throws -> RowBitmap {
    let reader = try TableReader(path: path, displayName: settings.input.value)
    var keyColumns: [Int?] = settings.keys.map { reader.columnIndex($0) }
    if reader.type.format == .csv, let missing = settings.keys.first(where: { reader.columnIndex($0) == nil }) {
      throw StageRunError.failed(
        "\(settings.input):1: no column '\(missing)' in the header (columns: \(reader.columns.joined(separator: ", "))); "
          + "fix 'keys' of stage '\(context.stage.name)'")
    }
    let temporary = context.workspaceRoot + "/.pipeline/tmp"
    try FileSystem.createDirectory(temporary)
    let finder = try DuplicateFinder(temporaryDirectory: temporary)
    var normalizer = ValueNormalizer(trim: settings.trim, ignoreCase: settings.ignoreCase)
    defer { normalizer.free() }
    let isCSV = reader.type.format == .csv
    var knownColumns = reader.columns.count
    var unresolved = keyColumns.contains(nil)
    while try reader.next() {
      if unresolved && reader.columns.count != knownColumns {
        // JSONL keys appear as rows are read.
        knownColumns = reader.columns.count
        keyColumns = settings.keys.map { reader.columnIndex($0) }
        unresolved = keyColumns.contains(nil)
      }
      var hash = Hash128(high: 0x6465_6475_7031, low: UInt64(keyColumns.count))
      if settings.keys.isEmpty {
        for column in 0..<reader.columns.count {
          let field = reader.field(column)
          if field.kind == .missing { continue }
          normalizer.combine(field, csv: isCSV, column: column, into: &hash)
        }
      } else {
        for (i, column) in keyColumns.enumerated() {
          let field =
            column.map(reader.field) ?? Field(kind: .missing, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
          normalizer.combine(field, csv: isCSV, column: i, into: &hash)
        }
      }
      try finder.add(hash, row: reader.rowNumber)
    }
    if reader.rowNumber > 0, let index = keyColumns.firstIndex(of: nil) {
      throw StageRunError.failed(
        "\(settings.input): no row has the key '\(settings.keys[index])'; fix 'keys' of stage '\(context.stage.name)'")
    }
    return try finder.finish()
  }
}

/// Folds a field into a row's hash, trimmed and case-folded as configured, through one reused buffer.
struct ValueNormalizer {
  let trim: Bool
  let ignoreCase: Bool
  private var buffer = ScratchBuffer(capacity: 256)

  init(trim: Bool, ignoreCase: Bool) {
    self.trim = trim
    self.ignoreCase = ignoreCase
  }

  func free() { buffer.free() }

  mutating func combine(_ field: Field, csv: Bool, column: Int, into hash: inout Hash128) {
    var kind = field.kind
    // CSV is untyped text: an empty field is the empty string whether quoted or not.
    if csv && kind == .null { kind = .string }
    var bytes = field.bytes
    if kind == .string {
      if trim { bytes = Field.trimmed(bytes) }
      if ignoreCase { bytes = folded(bytes) }
    }
    hash.combine(bytes, tag: UInt64(column) << 3 | Self.tag(kind))
  }

  private static func tag(_ kind: Field.Kind) -> UInt64 {
    switch kind {
    case .missing: return 0
    case .null: return 1
    case .string: return 2
    case .number: return 3
    case .bool: return 4
    case .nested: return 5
    }
  }

  /// Lowercased bytes: ASCII in place in the buffer; other text through Swift's Unicode lowercasing.
  private mutating func folded(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    buffer.count = 0
    if bytes.allSatisfy({ $0 < 0x80 }) {
      buffer.reserve(bytes.count)
      for byte in bytes { buffer.append(byte &- 65 < 26 ? byte | 0x20 : byte) }
    } else {
      for byte in String(decoding: bytes, as: UTF8.self).lowercased().utf8 { buffer.append(byte) }
    }
    return UnsafeRawBufferPointer(start: buffer.base, count: buffer.count)
  }
}

/// A path option naming a table file: workspace-relative, with a table extension.
func tableOption(_ config: PluginConfig, _ name: String) throws -> (RelativePath, TableFileType) {
  guard let path = try config.path(name) else { throw config.error("", "option '\(name)' is missing") }
  guard let type = TableFileType(path: path.value) else {
    throw config.error(name, "'\(path)' is not a table file; name it with one of \(TableFileType.supported)")
  }
  return (path, type)
}
