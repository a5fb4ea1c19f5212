import DVBasics
import Yams

/// A malformed file dv reads: YAML syntax, a wrong key or value, an unknown version.
public enum FileFormatError: DVError {
  /// Something at this place is wrong; the message says what and what to do.
  case invalid(SourceLocation, String)
  /// A persisted file has a `version` this dv does not know.
  case unsupportedVersion(SourceLocation, found: String, supported: Int)

  public var kind: FailureKind { .badInput }

  public var description: String {
    switch self {
    case .invalid(let location, let message):
      return "\(location): \(message)"
    case .unsupportedVersion(let location, let found, let supported):
      return "\(location): unsupported version \(found) (this dv reads version \(supported)); upgrade dv"
    }
  }
}

/// A parsed YAML file that remembers where each node came from, so every complaint about its
/// content names file:line:column.
package struct YAMLFile {
  /// The path shown in messages (workspace-relative).
  package let name: String
  /// The document's root node; nil for an empty file.
  package let root: Node?

  /// Parses `text`; a syntax error becomes a one-line `FileFormatError.invalid`.
  package init(text: String, name: String) throws {
    self.name = name
    do {
      // The basic resolver: dv reads every scalar itself, and the default one compiles a dozen
      // regular expressions at startup (milliseconds on every command).
      root = try Yams.compose(yaml: text, .basic)
    } catch let error as YamlError {
      throw FileFormatError.invalid(Self.location(of: error, file: name), "invalid YAML: \(Self.problem(of: error))")
    }
  }

  private static func location(of error: YamlError, file: String) -> SourceLocation {
    switch error {
    case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
      return SourceLocation(file: file, line: mark.line, column: mark.column)
    case .duplicatedKeysInMapping(_, let context):
      return SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
    default:
      return SourceLocation(file: file, line: 1, column: 1)
    }
  }

  private static func problem(of error: YamlError) -> String {
    switch error {
    case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
      .composer(let context, let problem, _, _):
      return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
    case .reader(let problem, _, _, _): return problem
    case .duplicatedKeysInMapping(let duplicates, _): return "duplicated keys \(duplicates.joined(separator: ", "))"
    default: return "\(error)"
    }
  }

  /// Where `node` starts.
  package func location(_ node: Node?) -> SourceLocation {
    guard let mark = node?.mark else { return SourceLocation(file: name, line: 1, column: 1) }
    return SourceLocation(file: name, line: mark.line, column: mark.column)
  }

  /// An error at `node`.
  package func error(_ node: Node?, _ message: String) -> FileFormatError {
    .invalid(location(node), message)
  }

  /// The root as a mapping of string keys, rejecting keys outside `allowed`.
  package func rootMapping(allowed: Set<String>, what: String) throws -> [(key: String, keyNode: Node, value: Node)] {
    guard let root else { throw error(nil, "the file is empty; expected a \(what)") }
    return try mapping(root, allowed: allowed, what: what)
  }

  /// A mapping's entries in file order, rejecting unknown keys with their location.
  package func mapping(_ node: Node, allowed: Set<String>, what: String) throws -> [(
    key: String, keyNode: Node, value: Node
  )] {
    guard let map = node.mapping else { throw error(node, "expected a mapping for \(what)") }
    var result: [(String, Node, Node)] = []
    for (keyNode, value) in map {
      guard let key = keyNode.string else { throw error(keyNode, "expected a string key in \(what)") }
      guard allowed.contains(key) else {
        throw error(keyNode, "unknown key '\(key)' in \(what) (allowed: \(allowed.sorted().joined(separator: ", ")))")
      }
      result.append((key, keyNode, value))
    }
    return result
  }

  /// A scalar string value.
  package func string(_ node: Node, key: String) throws -> String {
    guard let s = node.scalar?.string else { throw error(node, "'\(key)' must be a string") }
    return s
  }

  /// A non-negative integer value.
  package func integer(_ node: Node, key: String) throws -> Int64 {
    guard let text = node.scalar?.string, let value = Int64(text), value >= 0 else {
      throw error(node, "'\(key)' must be a non-negative integer")
    }
    return value
  }

  /// A boolean value.
  package func boolean(_ node: Node, key: String) throws -> Bool {
    guard let value = node.bool else { throw error(node, "'\(key)' must be true or false") }
    return value
  }

  /// Checks `version:` first, as every persisted dv format carries one.
  package func checkVersion(_ entries: [(key: String, keyNode: Node, value: Node)], supported: Int) throws {
    guard let entry = entries.first(where: { $0.key == "version" }) else {
      throw error(root, "missing 'version' (this dv writes version \(supported))")
    }
    guard let text = entry.value.scalar?.string else { throw error(entry.value, "'version' must be a number") }
    guard Int(text) == supported else {
      throw FileFormatError.unsupportedVersion(location(entry.value), found: text, supported: supported)
    }
  }
}
