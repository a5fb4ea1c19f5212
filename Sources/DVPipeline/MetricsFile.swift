import DVBasics
import Foundation

/// Flat views of metrics and params files (JSON or YAML) for `dv metrics` and `dv params`.
public enum MetricsFile {
  /// Leaves of a JSON or YAML document as dotted keys (`train.loss`, `layers.0.size`), in order.
  public static func flatten(text: String, name: String) throws -> [(key: String, value: String)] {
    let value: ConfigValue
    if let data = text.data(using: .utf8),
      let json = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    {
      value = convert(json)
    } else {
      let file = try YAMLFile(text: text, name: name)
      guard let root = file.root else { return [] }
      value = try Templating(file: file, context: .map([]), locals: [:], interpolate: false).value(root)
    }
    var out: [(String, String)] = []
    walk(value, prefix: "", into: &out)
    return out
  }

  private static func convert(_ json: Any) -> ConfigValue {
    switch json {
    case let dict as [String: Any]: return .map(dict.keys.sorted().map { ($0, convert(dict[$0]!)) })
    case let list as [Any]: return .list(list.map(convert))
    // JSON true/false arrive as a boolean NSNumber (objCType "c"): show them as words.
    case let number as NSNumber where String(cString: number.objCType) == "c":
      return .scalar(number.boolValue ? "true" : "false")
    case let number as NSNumber: return .scalar(number.stringValue)
    case let string as String: return .scalar(string)
    default: return .null
    }
  }

  private static func walk(_ value: ConfigValue, prefix: String, into out: inout [(String, String)]) {
    switch value {
    case .scalar(let s): out.append((prefix, s))
    case .null: out.append((prefix, "null"))
    case .list(let items):
      for (i, item) in items.enumerated() { walk(item, prefix: prefix.isEmpty ? "\(i)" : "\(prefix).\(i)", into: &out) }
    case .map(let pairs):
      for (k, v) in pairs { walk(v, prefix: prefix.isEmpty ? k : "\(prefix).\(k)", into: &out) }
    }
  }

  /// One changed value between two versions.
  public struct Change: Sendable {
    public var path: String
    public var key: String
    public var old: String?
    public var new: String?
    /// new - old, when both are numbers.
    public var delta: Double? {
      guard let old, let new, let a = Double(old), let b = Double(new) else { return nil }
      return b - a
    }
  }

  /// The keys whose values differ (or exist on one side only).
  public static func diff(path: String, old: [(key: String, value: String)], new: [(key: String, value: String)])
    -> [Change]
  {
    var changes: [Change] = []
    let oldMap = Dictionary(old.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    let newMap = Dictionary(new.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    for (key, value) in new where oldMap[key] != value {
      changes.append(Change(path: path, key: key, old: oldMap[key], new: value))
    }
    for (key, value) in old where newMap[key] == nil {
      changes.append(Change(path: path, key: key, old: value, new: nil))
    }
    return changes
  }
}
