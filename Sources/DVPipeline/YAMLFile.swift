import CYaml
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
    try Self.checkAliasExpansion(text, name: name)
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

extension YAMLFile {
  /// How many values beyond the file's own size its aliases may add.
  static let aliasAllowance = 100_000

  /// Refuses a document whose aliases (`*name`) expand it far beyond its size, as in "billion
  /// laughs": composing it (Yams hashes mapping keys in full) and every walk over it would take
  /// time exponential in its length. One pass over libyaml's events, which share nothing.
  static func checkAliasExpansion(_ text: String, name: String) throws {
    guard text.utf8.contains(UInt8(ascii: "*")) else { return }
    let limit = text.utf8.count + aliasAllowance
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else { return }
    defer { yaml_parser_delete(&parser) }
    let bytes = Array(text.utf8)
    try bytes.withUnsafeBufferPointer { buffer in
      yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      var sizes: [String: Int] = [:]
      // Open collections: values so far (the collection itself counts one) and their anchor.
      var open: [(size: Int, anchor: String?)] = []
      var event = yaml_event_t()
      func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
      }
      // Adds a finished value of `size` to its parent; false when that grows past the limit.
      func finish(_ size: Int, anchor: String?) -> Bool {
        if let anchor { sizes[anchor] = size }
        guard !open.isEmpty else { return size <= limit }
        open[open.count - 1].size = min(open[open.count - 1].size + size, limit + 1)
        return open[open.count - 1].size <= limit
      }
      while true {
        // Syntax errors are left to the composer, which reports them with their place.
        guard yaml_parser_parse(&parser, &event) == 1 else { return }
        defer { yaml_event_delete(&event) }
        let within: Bool
        switch event.type {
        case YAML_STREAM_END_EVENT: return
        case YAML_SCALAR_EVENT: within = finish(1, anchor: anchorName(event.data.scalar.anchor))
        case YAML_ALIAS_EVENT:
          within = finish(anchorName(event.data.alias.anchor).flatMap { sizes[$0] } ?? 1, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
          open.append((1, anchorName(event.data.sequence_start.anchor)))
          within = true
        case YAML_MAPPING_START_EVENT:
          open.append((1, anchorName(event.data.mapping_start.anchor)))
          within = true
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
          guard let done = open.popLast() else { return }
          within = finish(done.size, anchor: done.anchor)
        default: within = true
        }
        if !within {
          let mark = event.start_mark
          throw FileFormatError.invalid(
            SourceLocation(file: name, line: Int(mark.line) + 1, column: Int(mark.column) + 1),
            "aliases (*name) expand the document to more than \(limit) values; write the values out or use fewer aliases"
          )
        }
      }
    }
  }
}
