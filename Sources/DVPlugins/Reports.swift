import DVBasics
import DVPipeline

/// Where a plugin writes its JSON report: the path in option `option` when given; otherwise the
/// stage's only `metrics:` output, when it declares exactly one; otherwise nowhere (nil).
public func reportPath(_ context: StageContext, option: String = "report") throws -> RelativePath? {
  if let explicit = try context.config.path(option) { return explicit }
  let metrics = context.stage.outs.filter(\.isMetric)
  return metrics.count == 1 ? metrics[0].path : nil
}

/// A JSON value for reports; objects print with sorted keys so reruns give identical files.
public indirect enum JSONValue: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral,
  ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
  case null
  case bool(Bool)
  case integer(Int64)
  /// Not-finite numbers print as null: JSON has no spelling for them.
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  public init(nilLiteral: ()) { self = .null }
  public init(stringLiteral value: String) { self = .string(value) }
  public init(integerLiteral value: Int64) { self = .integer(value) }
  public init(floatLiteral value: Double) { self = .number(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
  }

  /// An integer from a Swift `Int`.
  public static func int(_ value: Int) -> JSONValue { .integer(Int64(value)) }

  /// A string, or null when nil.
  public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }

  /// Pretty-printed JSON: two-space indentation, keys sorted by their UTF-8 bytes, a final newline.
  public var prettyPrinted: String {
    var out = ""
    write(into: &out, indent: "")
    return out + "\n"
  }

  private func write(into out: inout String, indent: String) {
    switch self {
    case .null: out += "null"
    case .bool(let value): out += value ? "true" : "false"
    case .integer(let value): out += String(value)
    case .number(let value):
      if !value.isFinite {
        out += "null"
      } else if value == value.rounded(), abs(value) < 1e15 {
        out += String(Int64(value))
      } else {
        out += "\(value)"
      }
    case .string(let value): out += JSONText.quoted(value)
    case .array(let items):
      guard !items.isEmpty else { return out += "[]" }
      out += "[\n"
      for (i, item) in items.enumerated() {
        out += indent + "  "
        item.write(into: &out, indent: indent + "  ")
        out += i == items.count - 1 ? "\n" : ",\n"
      }
      out += indent + "]"
    case .object(let members):
      guard !members.isEmpty else { return out += "{}" }
      out += "{\n"
      let keys = members.keys.sorted(by: utf8Precedes)
      for (i, key) in keys.enumerated() {
        out += indent + "  " + JSONText.quoted(key) + ": "
        members[key]!.write(into: &out, indent: indent + "  ")
        out += i == keys.count - 1 ? "\n" : ",\n"
      }
      out += indent + "}"
    }
  }
}

/// Writes a report atomically (creating its directory), so `dv metrics show` reads it; a failure
/// is a `StageRunError` naming the file.
public func writeJSONReport(_ report: JSONValue, to path: RelativePath, context: StageContext) throws {
  let absolute = context.absolute(path)
  do {
    try FileSystem.createDirectory(path.parent.absolute(under: context.workspaceRoot))
    try FileSystem.writeAtomically(report.prettyPrinted, to: absolute)
  } catch {
    throw StageRunError.failed("\(path): cannot write the report: \(error); check that the directory is writable")
  }
}
