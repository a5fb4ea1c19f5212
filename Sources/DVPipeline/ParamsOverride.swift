import DVBasics
import Foundation
import Yams

/// Errors of `-S` overrides.
public enum OverrideError: DVError {
  /// The override is not `[file:][+|~]key[=value]`, or its value or range is malformed.
  case malformed(String, String)
  /// `key=value` of a key the params file does not have.
  case missingKey(String, file: String)
  /// `+key=value` of a key the params file has.
  case existingKey(String, file: String)
  /// The file is not a params file (not YAML, or not a mapping at its top).
  case notAParamsFile(String, String)
  /// A sweep (`a=1,2`, `range(...)`) where one value is needed.
  case sweepNeedsQueue(String)

  public var kind: FailureKind { .badInput }

  public var description: String {
    switch self {
    case .malformed(let text, let why): return "-S '\(text)': \(why)"
    case .missingKey(let key, let file):
      return "-S: \(file) has no key '\(key)'; write +\(key)=VALUE to add it"
    case .existingKey(let key, let file): return "-S: \(file) has '\(key)' already; write \(key)=VALUE to change it"
    case .notAParamsFile(let file, let why): return "-S: \(file) is not a params file (\(why))"
    case .sweepNeedsQueue(let text):
      return "-S '\(text)' is a sweep of several values; queue it with `dv exp run --queue`, then `dv queue start`"
    }
  }
}

/// One `-S` override of `dv exp run`, in DVC's syntax: `key=value` changes a key, `+key=value`
/// adds one, `~key` removes one, `file:` names a params file other than params.yaml; `a=1,2`
/// and `a=range(10,50,10)` are sweeps of several values.
public struct ParamsOverride: Sendable, Equatable {
  public enum Action: Sendable, Equatable { case change, add, remove }

  /// The params file, workspace-relative.
  public var file: String
  /// The dotted key.
  public var key: String
  public var action: Action
  /// Each value as YAML text; more than one is a sweep; none for `~key`.
  public var values: [String]
  /// As the user wrote it, for messages and the ledger.
  public var text: String

  public static func parse(_ text: String) throws -> ParamsOverride {
    var rest = Substring(text)
    var file = "params.yaml"
    // `file:key=value`: a colon before the `=` that is not inside the value.
    let head = rest.prefix { $0 != "=" }
    if let colon = head.lastIndex(of: ":") {
      file = String(rest[..<colon])
      rest = rest[rest.index(after: colon)...]
      guard !file.isEmpty, RelativePath(validating: file) != nil, !file.hasPrefix("/") else {
        throw OverrideError.malformed(text, "'\(file)' is not a path inside the workspace")
      }
    }
    var action = Action.change
    if rest.hasPrefix("+") {
      action = .add
      rest = rest.dropFirst()
    } else if rest.hasPrefix("~") {
      action = .remove
      rest = rest.dropFirst()
    }
    let key = String(rest.prefix { $0 != "=" })
    guard !key.isEmpty, key.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty }) else {
      throw OverrideError.malformed(text, "expected [file:][+|~]key=value with a dotted key")
    }
    let hasValue = rest.count > key.count
    let value = hasValue ? String(rest.dropFirst(key.count + 1)) : nil
    switch (action, value) {
    case (.remove, nil):
      return ParamsOverride(file: file, key: key, action: action, values: [], text: text)
    case (.remove, _):
      throw OverrideError.malformed(text, "~key removes a key and takes no value")
    case (_, nil):
      throw OverrideError.malformed(text, "expected \(key)=VALUE")
    case (_, let value?):
      return ParamsOverride(file: file, key: key, action: action, values: try sweep(value, text: text), text: text)
    }
  }

  /// The values a value text stands for: `range(start, stop[, step])` (stop excluded), a
  /// comma-separated choice outside brackets and quotes, or the one value.
  static func sweep(_ value: String, text: String) throws -> [String] {
    let trimmed = value.trimmingCharacters(in: .whitespaces)
    if trimmed.hasPrefix("range(") {
      guard trimmed.hasSuffix(")") else { throw OverrideError.malformed(text, "range(start, stop[, step]) is not closed") }
      let numbers = trimmed.dropFirst("range(".count).dropLast().split(separator: ",").map {
        Double($0.trimmingCharacters(in: .whitespaces))
      }
      guard (2...3).contains(numbers.count), numbers.allSatisfy({ $0 != nil }) else {
        throw OverrideError.malformed(text, "range takes two or three numbers: range(start, stop[, step])")
      }
      let start = numbers[0]!
      let stop = numbers[1]!
      let step = numbers.count == 3 ? numbers[2]! : 1
      guard step != 0, (stop - start) / step > 0, (stop - start) / step <= 10_000 else {
        throw OverrideError.malformed(text, "range(\(start), \(stop), \(step)) has no values, or more than 10,000")
      }
      let integral = numbers.allSatisfy { $0!.rounded() == $0! }
      var values: [String] = []
      var x = start
      while step > 0 ? x < stop : x > stop {
        values.append(integral ? String(Int(x)) : String(x))
        x += step
      }
      return values
    }
    var parts: [String] = []
    var depth = 0
    var quote: Character?
    var current = ""
    for c in value {
      if let q = quote {
        if c == q { quote = nil }
      } else if c == "\"" || c == "'" {
        quote = c
      } else if c == "[" || c == "{" {
        depth += 1
      } else if c == "]" || c == "}" {
        depth -= 1
      } else if c == ",", depth == 0 {
        parts.append(current)
        current = ""
        continue
      }
      current.append(c)
    }
    parts.append(current)
    for part in parts {
      do {
        _ = try Yams.compose(yaml: part)
      } catch {
        throw OverrideError.malformed(text, "'\(part)' is not a YAML value")
      }
    }
    return parts
  }

  /// `text` (a params file's YAML, nil when absent) with this override applied, with its one
  /// value. Keys keep their order; comments do not survive the rewrite.
  public func applied(to text: String?) throws -> String {
    guard values.count <= 1 else { throw OverrideError.sweepNeedsQueue(self.text) }
    var root: Node
    do {
      root = try text.flatMap { try Yams.compose(yaml: $0) } ?? Node.mapping([:])
    } catch {
      throw OverrideError.notAParamsFile(file, "not valid YAML")
    }
    guard root.mapping != nil else { throw OverrideError.notAParamsFile(file, "its top is not a mapping of keys") }
    let value = try values.first.map { text -> Node in
      guard let node = try Yams.compose(yaml: text) else { return Node("") }
      return node
    }
    root = try Self.edit(root, path: key.split(separator: ".").map(String.init), value: value, override: self)
    return try Yams.serialize(node: root, sortKeys: false)
  }

  private static func edit(_ node: Node, path: [String], value: Node?, override: ParamsOverride) throws -> Node {
    guard var mapping = node.mapping else {
      throw OverrideError.missingKey(override.key, file: override.file)
    }
    let name = path[0]
    let existing = mapping[Node(name)]
    if path.count == 1 {
      switch override.action {
      case .change:
        guard existing != nil else { throw OverrideError.missingKey(override.key, file: override.file) }
        mapping[Node(name)] = value
      case .add:
        guard existing == nil else { throw OverrideError.existingKey(override.key, file: override.file) }
        mapping[Node(name)] = value
      case .remove:
        guard existing != nil else { throw OverrideError.missingKey(override.key, file: override.file) }
        mapping[Node(name)] = nil
      }
      return .mapping(mapping)
    }
    let child: Node
    if let existing {
      child = existing
    } else if override.action == .add {
      child = .mapping([:])
    } else {
      throw OverrideError.missingKey(override.key, file: override.file)
    }
    mapping[Node(name)] = try edit(child, path: Array(path.dropFirst()), value: value, override: override)
    return .mapping(mapping)
  }
}
