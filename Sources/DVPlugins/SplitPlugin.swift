import COpenSSL
import DVBasics
import DVPipeline

/// Splits a table into named parts (train/val/test) by deterministic hashing, one output file per
/// part in `outdir`, named `<part><input extensions>`.
///
/// A row's place is SHA-256 of `seed` followed by its key value (the `key` column's value as the
/// reader gives it: unescaped text, or a number's literal; empty when missing or null; the raw
/// record when no key is given): the first 8 bytes as a fraction in [0, 1), compared with the
/// cumulative ratios in the order written. A row's part depends on nothing else, so appending rows
/// never moves existing ones.
///
/// With `stratify`, each distinct value of that column is split in the ratios on its own: a first
/// pass counts, per stratum, the rows in each of 1024 equal slices of the fraction range, and
/// places the part boundaries at the slice edges whose counts come closest to the ratios. Rows in
/// one slice stay together, so a stratum's parts are exact to within the rows of one slice, and
/// appending rows can move rows only in slices next to a boundary. At most 10,000 strata.
public struct SplitPlugin: StagePlugin {
  public static let kind = "split"
  public static let version = "1"

  public init() {}

  static let options: [OptionSpec] = [
    OptionSpec("input", .string, required: true),
    OptionSpec("outdir", .string, required: true),
    OptionSpec("ratios", .numberMap, required: true),
    OptionSpec("key", .string),
    OptionSpec("stratify", .string),
    OptionSpec("seed", .string),
    OptionSpec("report", .string),
  ]

  /// Slices of the hash fraction counted per stratum.
  static let resolution = 1024
  /// More distinct `stratify` values than this is a failure, not a huge histogram.
  static let maximumStrata = 10_000
  /// Per-stratum counts are reported up to this many strata.
  static let reportedStrata = 100

  /// The checked options of one stage.
  struct Settings: Sendable {
    var input: RelativePath
    var inputType: TableFileType
    var outdir: RelativePath
    var parts: [(name: String, ratio: Double)]
    var key: String?
    var stratify: String?
    var seed: String

    init(_ config: PluginConfig) throws {
      try config.check(plugin: SplitPlugin.kind, options: SplitPlugin.options)
      (input, inputType) = try tableOption(config, "input")
      outdir = try config.path("outdir")!
      parts = (config.numberMap("ratios") ?? []).map { (name: $0.0, ratio: $0.1) }
      for part in parts {
        guard !part.name.isEmpty, !part.name.hasPrefix("."), !part.name.contains("/") else {
          throw config.error("ratios.\(part.name)", "'\(part.name)' cannot name a file; use a plain name like 'train'")
        }
        guard part.ratio > 0 && part.ratio <= 1 else {
          throw config.error(
            "ratios.\(part.name)", "ratio '\(part.name)' is \(part.ratio); each ratio must be in (0, 1]")
        }
      }
      let sum = parts.reduce(0) { $0 + $1.ratio }
      guard abs(sum - 1) <= 1e-9 else {
        throw config.error("ratios", "the ratios add up to \(sum); they must add up to 1")
      }
      key = config.string("key")
      stratify = config.string("stratify")
      for name in ["key", "stratify"] where config.string(name) == "" {
        throw config.error(name, "'\(name)' is empty; name a column")
      }
      seed = config.string("seed") ?? ""
      _ = try config.path("report")
    }

    var extensions: String { TableFileType.extensions(of: input.value)! }
  }

  public func validate(config: PluginConfig) throws { _ = try Settings(config) }

  public func run(_ context: StageContext) async throws {
    let settings = try Settings(context.config)
    let report = try reportPath(context)
    let result = try await runBlocking { try Self.split(settings, context: context) }
    let total = max(result.inputRows, 1)
    context.log(
      "split: \(result.inputRows) rows into "
        + settings.parts.enumerated().map { "\($1.name) \(result.rows[$0])" }.joined(separator: ", "))
    if result.rowsWithoutKey > 0, let key = settings.key {
      context.log(
        "split: warning: \(result.rowsWithoutKey) rows have no value for '\(key)' (missing or null); "
          + "they all go to the same part")
    }
    guard let report else { return }
    var splits: [String: JSONValue] = [:]
    for (i, part) in settings.parts.enumerated() {
      splits[part.name] = ["rows": .int(result.rows[i]), "fraction": .number(Double(result.rows[i]) / Double(total))]
    }
    var object: [String: JSONValue] = [
      "input_rows": .int(result.inputRows), "splits": .object(splits), "key": .optional(settings.key),
      "stratify": .optional(settings.stratify),
    ]
    if settings.stratify != nil {
      object["strata_count"] = .int(result.strata.count)
      if result.strata.count <= Self.reportedStrata {
        var strata: [String: JSONValue] = [:]
        for stratum in result.strata {
          strata[stratum.name] = .object(
            Dictionary(uniqueKeysWithValues: settings.parts.enumerated().map { ($1.name, .int(stratum.rows[$0])) }))
        }
        object["strata"] = .object(strata)
      }
    }
    try writeJSONReport(.object(object), to: report, context: context)
  }

  /// What a run produced: rows per part, and per stratum when stratified.
  struct Result: Sendable {
    var inputRows = 0
    var rows: [Int]
    var rowsWithoutKey = 0
    var strata: [(name: String, rows: [Int])] = []
  }

  static func split(_ settings: Settings, context: StageContext) throws -> Result {
    do {
      return try SplitRun(settings, context: context).run()
    } catch let error as TableError {
      throw StageRunError.failed(error.description)
    } catch let error as SystemError {
      throw StageRunError.failed("\(error)")
    }
  }
}

/// One execution of a split stage.
private final class SplitRun {
  let settings: SplitPlugin.Settings
  let context: StageContext
  let inputPath: String
  let hasher: FractionHasher
  /// The fraction below which a row belongs to each part but the last.
  let cumulative: [Double]

  init(_ settings: SplitPlugin.Settings, context: StageContext) throws {
    self.settings = settings
    self.context = context
    inputPath = context.absolute(settings.input)
    hasher = FractionHasher(seed: settings.seed)
    var sum = 0.0
    cumulative = settings.parts.map {
      sum += $0.ratio
      return sum
    }
  }

  func open() throws -> TableReader { try TableReader(path: inputPath, displayName: settings.input.value) }

  /// A column's index; a CSV header without it is a failure. JSONL columns may appear later.
  func column(_ name: String?, option: String, of reader: TableReader) throws -> Int? {
    guard let name else { return nil }
    if let index = reader.columnIndex(name) { return index }
    if reader.type.format == .csv {
      throw StageRunError.failed(
        "\(settings.input):1: no column '\(name)' in the header (columns: \(reader.columns.joined(separator: ", "))); "
          + "fix '\(option)' of stage '\(context.stage.name)'")
    }
    return nil
  }

  /// Rows of the last pass without a key value (missing or null): they all land in one part.
  var rowsWithoutKey = 0

  /// The hash fraction of the current row.
  func fraction(_ reader: TableReader, keyColumn: inout Int?) -> Double {
    if settings.key == nil { return hasher.fraction(reader.rawRecord) }
    if keyColumn == nil { keyColumn = reader.columnIndex(settings.key!) }
    let field = keyColumn.map(reader.field)
    guard let field, field.kind != .missing && field.kind != .null else {
      rowsWithoutKey += 1
      return hasher.fraction(UnsafeRawBufferPointer(start: nil, count: 0))
    }
    return hasher.fraction(field.bytes)
  }

  func run() throws -> SplitPlugin.Result {
    let strata = settings.stratify == nil ? nil : try countStrata()
    let reader = try open()
    var keyColumn = try column(settings.key, option: "key", of: reader)
    var stratifyColumn = try column(settings.stratify, option: "stratify", of: reader)
    try FileSystem.createDirectory(settings.outdir.absolute(under: context.workspaceRoot))
    let writers = try settings.parts.map {
      try TableWriter(
        path: context.absolute(settings.outdir.appending($0.name + settings.extensions)), type: settings.inputType,
        columns: reader.columns)
    }
    var result = SplitPlugin.Result(rows: Array(repeating: 0, count: writers.count))
    rowsWithoutKey = 0
    var stratumRows = Array(repeating: 0, count: (strata?.names.count ?? 0) * writers.count)
    while try reader.next() {
      let fraction = fraction(reader, keyColumn: &keyColumn)
      let part: Int
      if let strata {
        let stratum = strata.index(of: reader, column: &stratifyColumn, name: settings.stratify!)!
        let bucket = min(Int(fraction * Double(SplitPlugin.resolution)), SplitPlugin.resolution - 1)
        part = strata.part(stratum: stratum, bucket: bucket)
        stratumRows[stratum * writers.count + part] += 1
      } else {
        part = cumulative.firstIndex { fraction < $0 } ?? writers.count - 1
      }
      try writers[part].writeRaw(reader.rawRecord)
      result.rows[part] += 1
    }
    for writer in writers { try writer.commit() }
    result.inputRows = reader.rowNumber
    result.rowsWithoutKey = rowsWithoutKey
    if let strata {
      result.strata = strata.names.enumerated().map { s, name in
        (name, Array(stratumRows[s * writers.count..<(s + 1) * writers.count]))
      }
    }
    return result
  }

  /// First pass of a stratified split: the strata, and per stratum the part boundaries.
  func countStrata() throws -> Strata {
    let reader = try open()
    var keyColumn = try column(settings.key, option: "key", of: reader)
    var stratifyColumn = try column(settings.stratify, option: "stratify", of: reader)
    let strata = Strata(parts: settings.parts.count)
    while try reader.next() {
      let fraction = fraction(reader, keyColumn: &keyColumn)
      guard let stratum = strata.index(of: reader, column: &stratifyColumn, name: settings.stratify!, adding: true)
      else {
        throw StageRunError.failed(
          "\(settings.input):\(reader.lineNumber): column '\(settings.stratify!)' has more than "
            + "\(SplitPlugin.maximumStrata) distinct values; stratify by a column with fewer")
      }
      let bucket = min(Int(fraction * Double(SplitPlugin.resolution)), SplitPlugin.resolution - 1)
      strata.histogram[stratum * SplitPlugin.resolution + bucket] += 1
    }
    strata.placeBoundaries(cumulative: cumulative)
    return strata
  }
}

/// The distinct values of the `stratify` column, their hash-fraction histograms, and the part
/// boundaries (in slices) derived from them.
private final class Strata {
  let parts: Int
  var names: [String] = []
  private var indexes: [Hash128: Int] = [:]
  /// 32-bit counts: 10,000 strata of 1024 slices take 40 MB.
  var histogram: [UInt32] = []
  /// Per stratum, for each part but the last: the first slice past that part.
  private var boundaries: [Int] = []

  init(parts: Int) { self.parts = parts }

  /// The stratum of the current row; with `adding`, a new value becomes a stratum (nil past the limit).
  func index(of reader: TableReader, column: inout Int?, name: String, adding: Bool = false) -> Int? {
    if column == nil { column = reader.columnIndex(name) }
    let field = column.map(reader.field) ?? Field(kind: .missing, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
    var hash = Hash128(high: 0x7374_7261_7461, low: 0)
    let kind: UInt64
    switch field.kind {
    case .missing: kind = 0
    case .null: kind = reader.type.format == .csv ? 2 : 1
    default: kind = 2
    }
    hash.combine(field.bytes, tag: kind)
    if let known = indexes[hash] { return known }
    guard adding, names.count < SplitPlugin.maximumStrata else { return nil }
    indexes[hash] = names.count
    names.append(kind == 0 ? "(missing)" : kind == 1 ? "null" : field.string)
    histogram.append(contentsOf: repeatElement(0, count: SplitPlugin.resolution))
    return names.count - 1
  }

  /// Boundaries at the slice edges whose cumulative counts come closest to each cumulative ratio;
  /// among equally close edges (empty slices between them) the middle one, so that rows added
  /// later in that gap divide between the parts.
  func placeBoundaries(cumulative: [Double]) {
    let slices = SplitPlugin.resolution
    boundaries = []
    for s in 0..<names.count {
      let counts = histogram[s * slices..<(s + 1) * slices]
      let total = counts.reduce(0) { $0 + Int($1) }
      var previous = 0
      for part in 0..<(parts - 1) {
        let target = cumulative[part] * Double(total)
        var below = counts[counts.startIndex..<counts.startIndex + previous].reduce(0) { $0 + Int($1) }
        var best = Double.infinity
        var first = previous
        var last = previous
        for edge in previous...slices {
          if edge > previous { below += Int(counts[counts.startIndex + edge - 1]) }
          let distance = abs(Double(below) - target)
          if distance < best {
            best = distance
            first = edge
            last = edge
          } else if distance == best {
            last = edge
          } else {
            break
          }
        }
        previous = (first + last) / 2
        boundaries.append(previous)
      }
    }
  }

  func part(stratum: Int, bucket: Int) -> Int {
    let base = stratum * (parts - 1)
    for part in 0..<(parts - 1) where bucket < boundaries[base + part] { return part }
    return parts - 1
  }
}

/// SHA-256 of a seed and a value through one reused OpenSSL context (no allocation per row).
private final class FractionHasher {
  private let context: OpaquePointer
  /// Fetched once: `EVP_sha256()` would be looked up behind a lock on every initialisation,
  /// which costs four times the hash of a short key.
  private let method: OpaquePointer
  private let digest: UnsafeMutablePointer<UInt8>
  private let seed: [UInt8]

  init(seed: String) {
    OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_LOAD_CONFIG), nil)
    context = EVP_MD_CTX_new()
    method = EVP_MD_fetch(nil, "SHA256", nil)
    digest = .allocate(capacity: Int(EVP_MAX_MD_SIZE))
    self.seed = Array(seed.utf8)
  }

  deinit {
    EVP_MD_CTX_free(context)
    EVP_MD_free(method)
    digest.deallocate()
  }

  /// The first 8 bytes of SHA-256(seed + value), big-endian, as a fraction in [0, 1).
  func fraction(_ value: UnsafeRawBufferPointer) -> Double {
    EVP_DigestInit_ex2(context, method, nil)
    if !seed.isEmpty { seed.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) } }
    if value.count > 0 { EVP_DigestUpdate(context, value.baseAddress, value.count) }
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, digest, &length)
    var prefix: UInt64 = 0
    for i in 0..<8 { prefix = prefix << 8 | UInt64(digest[i]) }
    // The top 53 bits: every such fraction is exact in a Double and below 1.
    return Double(prefix >> 11) * 0x1p-53
  }
}
