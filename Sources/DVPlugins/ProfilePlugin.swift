import DVBasics
import DVPipeline

/// Summarizes every column of a CSV or JSON Lines table into a JSON metrics file that
/// `dv metrics show` can read:
///
/// ```yaml
/// with: {input: data/splits/train.jsonl, output: reports/profile.json, columns: [age, city], top: 10,
///        percentiles: [0.5, 0.9], distinct_exact_limit: 100000}
/// ```
///
/// `output` defaults to the stage's single `metrics:` output. The report is
/// `{"input", "rows", "columns": {"<name>": {...}}}` with, per column: `type` (int, float, string,
/// bool, nested, mixed, or null when every value is null), `count` (non-null values), `nulls`
/// (null or absent), `distinct` (exact up to `distinct_exact_limit` values — lowered for tables
/// wider than 40 columns, to 4M hashes in all — then a HyperLogLog estimate with 0.8 % standard
/// error, `distinct_approximate: true`), for numbers `min`, `max`, `mean`, `std` (sample) and
/// `percentiles` (`p50`, `p99_9`, …: exact while the column's values fit a fixed budget, then a
/// KLL sketch, `percentiles_approximate: true`), for strings `length` {min, max, mean} in
/// characters, for booleans `true` and `false` counts, and `top`: the most frequent values with
/// counts (exact while there are few distinct values, then Misra-Gries, `top_approximate: true`).
/// In CSV, which is untyped, a column is a number column when every non-null value parses as one.
public struct ProfilePlugin: StagePlugin {
  public static let kind = "profile"
  public static let version = "1"

  static let options = [
    OptionSpec("input", .string, required: true),
    OptionSpec("output", .string),
    OptionSpec("columns", .stringList),
    OptionSpec("top", .integer),
    OptionSpec("percentiles", .any),
    OptionSpec("distinct_exact_limit", .integer),
  ]

  static let defaultPercentiles = [0.25, 0.5, 0.75, 0.9, 0.99]

  public init() {}

  public func validate(config: PluginConfig) throws {
    try config.check(plugin: Self.kind, options: Self.options)
    try checkTableInput(config, option: "input")
    _ = try config.path("output")
    if let top = config.integer("top"), top < 0 {
      throw config.error("top", "option 'top' of plugin 'profile' must be 0 or more")
    }
    if let limit = config.integer("distinct_exact_limit"), limit < 0 {
      throw config.error("distinct_exact_limit", "option 'distinct_exact_limit' of plugin 'profile' must be 0 or more")
    }
    _ = try percentiles(config)
  }

  /// The `percentiles` option: a list of numbers in [0, 1].
  private func percentiles(_ config: PluginConfig) throws -> [Double] {
    guard let value = config["percentiles"] else { return Self.defaultPercentiles }
    guard case .list(let items) = value else {
      throw config.error(
        "percentiles", "option 'percentiles' of plugin 'profile' must be a list of numbers between 0 and 1")
    }
    return try items.enumerated().map { i, item in
      guard case .scalar(let text) = item, let number = Double(text), number >= 0, number <= 1 else {
        throw config.error("percentiles.\(i)", "each entry of 'percentiles' must be a number between 0 and 1")
      }
      return number
    }
  }

  public func run(_ context: StageContext) async throws {
    let config = context.config
    let input = try config.path("input")!
    guard let output = try reportPath(context, option: "output") else {
      throw StageRunError.failed(
        "stage '\(context.stage.name)': profile needs an 'output' option or exactly one 'metrics:' output")
    }
    let profiler = try tableErrors {
      try TableProfiler(
        path: context.absolute(input), name: input.value, columns: config.stringList("columns"),
        top: config.integer("top") ?? 10, percentiles: try percentiles(config),
        distinctExactLimit: config.integer("distinct_exact_limit") ?? 100_000)
    }
    try tableErrors { try profiler.scan() }
    try writeJSONReport(try profiler.report(), to: output, context: context)
    context.log(
      "\(input.value): profiled \(profiler.rows) rows, \(profiler.profiles.count) columns into \(output.value)")
  }
}

/// Streams a table once, feeding each profiled column's summaries.
final class TableProfiler {
  private let reader: TableReader
  private let name: String
  private let wanted: [String]?
  private let top: Int
  private let fractions: [Double]
  private let distinctExactLimit: Int
  private(set) var profiles: [ColumnProfile] = []
  private var knownColumnCount = 0
  private(set) var rows = 0

  init(path: String, name: String, columns: [String]?, top: Int, percentiles: [Double], distinctExactLimit: Int) throws
  {
    reader = try TableReader(path: path, displayName: name)
    self.name = name
    wanted = columns
    self.top = top
    fractions = percentiles
    self.distinctExactLimit = distinctExactLimit
    if reader.type.format == .csv, let columns {
      for column in columns where reader.columnIndex(column) == nil {
        throw StageRunError.failed(
          "\(name): no column '\(column)' (it has: \(reader.columns.joined(separator: ", "))); fix the 'columns' option"
        )
      }
    }
  }

  /// Profiles for columns that appeared (all CSV columns at once; JSONL keys as they are met).
  private func addColumns(to profiles: inout [ColumnProfile]) {
    let isCSV = reader.type.format == .csv
    let total = wanted?.count ?? reader.columns.count
    // Exact percentiles keep every value and exact distinct counts every hash: budgets shared by
    // the columns, so that a wide table stays within memory (4M values, 4M hashes in all).
    let exactValues = max(10_000, 4_000_000 / max(1, total))
    let exactDistinct = min(distinctExactLimit, max(1000, 4_000_000 / max(1, total)))
    for index in knownColumnCount..<reader.columns.count {
      let column = reader.columns[index]
      if let wanted, !wanted.contains(column) { continue }
      profiles.append(
        ColumnProfile(
          name: column, index: index, isCSV: isCSV, top: top, distinctExactLimit: exactDistinct,
          percentileExactLimit: exactValues))
    }
    knownColumnCount = reader.columns.count
  }

  func scan() throws {
    var profiles: [ColumnProfile] = []
    addColumns(to: &profiles)
    let reader = self.reader
    while try reader.next() {
      if reader.columns.count != knownColumnCount { addColumns(to: &profiles) }
      profiles.withUnsafeMutableBufferPointer { columns in
        for i in columns.indices { columns[i].add(reader.field(columns[i].index)) }
      }
    }
    rows = reader.rowNumber
    if let wanted {
      for column in wanted where !profiles.contains(where: { $0.name == column }) {
        throw StageRunError.failed("\(name): no row has the key '\(column)'; fix the 'columns' option")
      }
      profiles.sort { wanted.firstIndex(of: $0.name)! < wanted.firstIndex(of: $1.name)! }
    }
    self.profiles = profiles
  }

  func report() throws -> JSONValue {
    .object([
      "input": .string(name),
      "rows": .int(rows),
      "columns": .object(
        Dictionary(
          profiles.map { ($0.name, $0.summary(rows: rows, top: top, fractions: fractions)) },
          uniquingKeysWith: { first, _ in first })),
    ])
  }
}

/// The running summaries of one column. Adding a value allocates nothing: hashing reads the
/// field's bytes in place, and the sketches have fixed storage. A struct, mutated in place in an
/// array: a class's stored properties would pay for a dynamic exclusivity check on every access.
struct ColumnProfile {
  let name: String
  let index: Int
  private let isCSV: Bool
  private var count = 0
  private var strings = 0
  private var numbers = 0
  private var bools = 0
  private var nested = 0
  private var trues = 0
  /// CSV: true while every value parsed as a number. JSONL: numbers are JSON numbers.
  private var allNumeric = true
  private var allIntegers = true
  private var numeric = 0
  private var minimum = Double.infinity
  private var maximum = -Double.infinity
  private var mean = 0.0
  private var squares = 0.0
  private var percentiles: PercentileEstimator
  private var lengthMinimum = Int.max
  private var lengthMaximum = 0
  private var lengthSum = 0
  private var distinct: DistinctCounter
  private var topValues: TopValues?

  init(name: String, index: Int, isCSV: Bool, top: Int, distinctExactLimit: Int, percentileExactLimit: Int) {
    self.name = name
    self.index = index
    self.isCSV = isCSV
    percentiles = PercentileEstimator(exactLimit: percentileExactLimit)
    distinct = DistinctCounter(exactLimit: distinctExactLimit)
    if top > 0 {
      let capacity = max(1024, top * 20)
      topValues = TopValues(exactLimit: max(4096, capacity), capacity: capacity)
    }
  }

  @inline(__always)
  mutating func add(_ field: Field) {
    let seed: UInt64
    switch field.kind {
    case .missing, .null: return
    case .string:
      strings += 1
      seed = 2
      // Lengths are kept for every CSV value, in case a later value shows the column is text;
      // a number's text is ASCII, so its length is its byte count.
      var length = -1
      if isCSV && allNumeric {
        if allIntegers, let integer = field.integer() {
          addNumber(Double(integer))
          length = field.bytes.count
        } else if let number = field.double() {
          allIntegers = false
          addNumber(number)
          length = field.bytes.count
        } else {
          allNumeric = false
        }
      }
      if length < 0 { length = TableValidator.characterCount(field.bytes) }
      lengthSum += length
      if length < lengthMinimum { lengthMinimum = length }
      if length > lengthMaximum { lengthMaximum = length }
    case .number:
      numbers += 1
      seed = 3
      if allIntegers, let integer = field.integer() {
        addNumber(Double(integer))
      } else if let number = field.double() {
        allIntegers = false
        addNumber(number)
      }
    case .bool:
      bools += 1
      seed = 4
      if field.bytes.first == UInt8(ascii: "t") { trues += 1 }
    case .nested:
      nested += 1
      seed = 5
    }
    count += 1
    let hash = fieldHash(field.bytes, seed: seed)
    distinct.add(hash: hash)
    topValues?.add(hash: hash, bytes: field.bytes)
  }

  @inline(__always)
  private mutating func addNumber(_ value: Double) {
    numeric += 1
    if value < minimum { minimum = value }
    if value > maximum { maximum = value }
    // Welford's update: stable for large counts, unlike a sum of squares.
    let delta = value - mean
    mean += delta / Double(numeric)
    squares += delta * (value - mean)
    percentiles.add(value)
  }

  private var type: String {
    if count == 0 { return "null" }
    if isCSV { return allNumeric ? (allIntegers ? "int" : "float") : "string" }
    let kinds = [strings, numbers, bools, nested].filter { $0 > 0 }.count
    if kinds > 1 { return "mixed" }
    if numbers > 0 { return allIntegers ? "int" : "float" }
    if strings > 0 { return "string" }
    return bools > 0 ? "bool" : "nested"
  }

  func summary(rows: Int, top: Int, fractions: [Double]) -> JSONValue {
    var fields: [(String, JSONValue)] = [
      ("type", .string(type)),
      ("count", .int(count)),
      ("nulls", .int(rows - count)),
      ("distinct", .int(distinct.count)),
      ("distinct_approximate", .bool(!distinct.isExact)),
    ]
    let hasNumbers = isCSV ? allNumeric && numeric > 0 : numeric > 0
    if hasNumbers {
      fields.append(("min", .number(minimum)))
      fields.append(("max", .number(maximum)))
      fields.append(("mean", .number(mean)))
      fields.append(("std", .number(numeric > 1 ? (squares / Double(numeric - 1)).squareRoot() : 0)))
      if let values = percentiles.percentiles(fractions) {
        fields.append(
          (
            "percentiles",
            .object(
              Dictionary(
                zip(fractions, values).map { (Self.percentileKey($0), .number($1)) }, uniquingKeysWith: { a, _ in a }))
          ))
        fields.append(("percentiles_approximate", .bool(percentiles.isApproximate)))
      }
    }
    let hasStrings = isCSV ? !allNumeric : strings > 0
    if hasStrings {
      let lengths = max(1, isCSV ? count : strings)
      fields.append(
        (
          "length",
          .object([
            "min": .int(lengthMinimum), "max": .int(lengthMaximum),
            "mean": .number(Double(lengthSum) / Double(lengths)),
          ])
        ))
    }
    if bools > 0 {
      fields.append(("true", .int(trues)))
      fields.append(("false", .int(bools - trues)))
    }
    if let topValues {
      fields.append(
        (
          "top",
          .array(
            topValues.top(top).map {
              .object(["value": .string(String(decoding: $0.value, as: UTF8.self)), "count": .int($0.count)])
            })
        ))
      fields.append(("top_approximate", .bool(!topValues.isExact)))
    }
    return .object(Dictionary(fields, uniquingKeysWith: { first, _ in first }))
  }

  /// `p50` for 0.5, `p99_9` for 0.999: keys without dots, so that `dv metrics show`'s dotted
  /// paths stay unambiguous.
  static func percentileKey(_ fraction: Double) -> String {
    let percent = (fraction * 100 * 1e6).rounded() / 1e6
    return "p" + String(JSONValue.number(percent).prettyPrinted.dropLast().map { $0 == "." ? "_" : $0 })
  }
}
