import DVBasics
import Foundation
import Yams

/// `${...}` interpolation of YAML values: `${a.b.c}` names a value of params.yaml, `vars`, or the
/// `item`/`key` of a `foreach`/`matrix` stage. A value that is exactly `${x}` keeps x's shape (a
/// list or mapping); inside longer text only scalars may be used.
struct Templating {
  let file: YAMLFile
  let context: ConfigValue
  let locals: [String: ConfigValue]
  var interpolate = true

  /// The node as a value, interpolated.
  func value(_ node: Node) throws -> ConfigValue {
    if let scalar = node.scalar { return try interpolated(scalar.string, node: node) }
    if let sequence = node.sequence { return .list(try sequence.map { try value($0) }) }
    if let mapping = node.mapping {
      return .map(
        try mapping.map { pair in
          guard let key = pair.key.scalar?.string else { throw file.error(pair.key, "mapping keys must be strings") }
          return (key, try value(pair.value))
        })
    }
    return .null
  }

  private func interpolated(_ text: String, node: Node) throws -> ConfigValue {
    guard interpolate, text.contains("${") else { return .scalar(text) }
    if text.hasPrefix("${"), text.hasSuffix("}"), text.firstIndex(of: "}") == text.index(before: text.endIndex) {
      return try lookup(String(text.dropFirst(2).dropLast()), in: text, node: node)
    }
    var out = ""
    var rest = Substring(text)
    while let start = rest.range(of: "${") {
      out += rest[..<start.lowerBound]
      guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
        throw file.error(node, "unterminated '${' in '\(text)'")
      }
      let expression = String(rest[start.upperBound..<end])
      guard case .scalar(let s) = try lookup(expression, in: text, node: node) else {
        throw file.error(node, "'${\(expression)}' is a list or mapping and cannot stand inside text")
      }
      out += s
      rest = rest[rest.index(after: end)...]
    }
    return .scalar(out + rest)
  }

  private func lookup(_ expression: String, in text: String, node: Node) throws -> ConfigValue {
    let parts = expression.trimmingCharacters(in: .whitespaces)
      .replacingOccurrences(of: "[", with: ".").replacingOccurrences(of: "]", with: "")
      .split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    guard let first = parts.first, !first.isEmpty, !parts.contains(where: \.isEmpty) else {
      throw file.error(node, "'${\(expression)}' is not a variable name")
    }
    var current: ConfigValue
    if let local = locals[first] {
      current = local
    } else if let top = Self.child(context, first) {
      current = top
    } else {
      throw file.error(node, "undefined variable '\(expression)' in '\(text)'; define it in params.yaml or 'vars'")
    }
    for part in parts.dropFirst() {
      guard let next = Self.child(current, part) else {
        throw file.error(node, "undefined variable '\(expression)' in '\(text)'; define it in params.yaml or 'vars'")
      }
      current = next
    }
    return current
  }

  static func child(_ value: ConfigValue, _ name: String) -> ConfigValue? {
    switch value {
    case .map(let pairs): return pairs.first { $0.0 == name }?.1
    case .list(let items): return Int(name).flatMap { items.indices.contains($0) ? items[$0] : nil }
    default: return nil
    }
  }
}
