/// The record syntax of a table file.
public enum TableFormat: Sendable {
  /// Comma-separated values with a header row (RFC 4180).
  case csv
  /// JSON Lines: one JSON object per line (`.jsonl`, `.ndjson`).
  case jsonl
}

/// A table file's format and compression, from its name: `.csv`, `.jsonl` or `.ndjson`, each
/// optionally followed by `.gz`.
public struct TableFileType: Sendable, Equatable {
  public var format: TableFormat
  public var gzip: Bool

  public init(format: TableFormat, gzip: Bool) {
    self.format = format
    self.gzip = gzip
  }

  /// The type of a file name; nil for an extension that is not a table's.
  public init?(path: String) {
    guard let (format, gzip, _) = Self.parse(path) else { return nil }
    self.init(format: format, gzip: gzip)
  }

  /// The table extensions of a file name as written (`.jsonl.gz`), for naming files derived
  /// from it; nil for an extension that is not a table's.
  public static func extensions(of path: String) -> String? { parse(path)?.2 }

  /// The names of the extensions dv reads, for messages.
  public static let supported = ".csv, .jsonl, .ndjson (each optionally .gz)"

  private static func parse(_ path: String) -> (TableFormat, Bool, String)? {
    let name = path.split(separator: "/").last.map(String.init) ?? path
    var stem = Substring(name)
    var suffix = ""
    var gzip = false
    if stem.lowercased().hasSuffix(".gz") {
      gzip = true
      suffix = String(stem.suffix(3))
      stem = stem.dropLast(3)
    }
    let lower = stem.lowercased()
    for (ext, format) in [(".csv", TableFormat.csv), (".jsonl", .jsonl), (".ndjson", .jsonl)]
    where lower.hasSuffix(ext) && lower.count > ext.count {
      return (format, gzip, String(stem.suffix(ext.count)) + suffix)
    }
    return nil
  }
}

/// What went wrong reading or writing a table.
public enum TableError: Error, CustomStringConvertible, Sendable {
  /// The content breaks the format at a 1-based physical line of the (decompressed) file.
  case malformed(file: String, line: Int, message: String)
  /// The file could not be opened, read, decompressed or written.
  case io(file: String, message: String)

  public var description: String {
    switch self {
    case .malformed(let file, let line, let message): return "\(file):\(line): \(message)"
    case .io(let file, let message): return "\(file): \(message)"
    }
  }
}
