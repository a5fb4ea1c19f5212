import DVBasics
import DVStorage
import Yams

/// `stages.lock` (docs/architecture.md §4): what every stage's dependencies, params and outputs were at its
/// last run. Committed; written atomically.
public struct LockFile: Sendable, Equatable {
  public static let fileName = "stages.lock"
  public static let version = 1

  /// A recorded dependency or output.
  public struct Entry: Sendable, Equatable {
    public var path: RelativePath
    public var hash: ObjectID
    public var size: Int64
    /// Number of files, for directories.
    public var files: Int?

    public init(path: RelativePath, hash: ObjectID, size: Int64, files: Int?) {
      self.path = path
      self.hash = hash
      self.size = size
      self.files = files
    }

    /// Whether the entry is a directory (it lists `files`).
    public var kind: DataKind { files == nil ? .file : .dir }
  }

  /// One stage's record.
  public struct StageRecord: Sendable, Equatable {
    /// The command after interpolation, or for plugins `plugin:<kind>` and the config digest.
    public var cmd: String
    public var deps: [Entry]
    /// params file -> key -> value, in the order written.
    public var params: [(file: String, values: [(key: String, value: ConfigValue)])]
    public var outs: [Entry]
    /// The version of an input outside the workspace that the run used (a URL's ETag).
    public var source: String?

    public init(
      cmd: String, deps: [Entry], params: [(file: String, values: [(key: String, value: ConfigValue)])], outs: [Entry],
      source: String? = nil
    ) {
      self.cmd = cmd
      self.deps = deps
      self.params = params
      self.outs = outs
      self.source = source
    }

    public static func == (a: StageRecord, b: StageRecord) -> Bool {
      a.cmd == b.cmd && a.deps == b.deps && a.outs == b.outs && a.source == b.source
        && a.params.map(\.file) == b.params.map(\.file)
        && zip(a.params, b.params).allSatisfy { x, y in
          x.values.map(\.key) == y.values.map(\.key) && x.values.map(\.value) == y.values.map(\.value)
        }
    }

    /// The recorded value of a param.
    public func value(of key: String, in file: String) -> ConfigValue? {
      params.first { $0.file == file }?.values.first { $0.key == key }?.value
    }
  }

  /// Stage name -> record, in file order.
  public var stages: [(name: String, record: StageRecord)] = []

  public init() {}

  public static func == (a: LockFile, b: LockFile) -> Bool {
    a.stages.map(\.name) == b.stages.map(\.name) && a.stages.map(\.record) == b.stages.map(\.record)
  }

  /// The record of a stage.
  public func record(for name: String) -> StageRecord? { stages.first { $0.name == name }?.record }

  /// Sets a stage's record, keeping the position of an existing one.
  public mutating func set(_ record: StageRecord, for name: String) {
    if let i = stages.firstIndex(where: { $0.name == name }) {
      stages[i].record = record
    } else {
      stages.append((name, record))
    }
  }

  // MARK: - Reading

  /// Reads `stages.lock` at the workspace root; an empty lock when there is none.
  public static func load(workspaceRoot root: String) throws -> LockFile {
    guard let text = try FileSystem.readTextIfPresent(root + "/" + fileName) else { return LockFile() }
    return try parse(text)
  }

  package static func parse(_ text: String) throws -> LockFile {
    let file = try YAMLFile(text: text, name: fileName)
    var lock = LockFile()
    guard file.root != nil else { return lock }
    let top = try file.rootMapping(allowed: ["version", "stages"], what: fileName)
    try file.checkVersion(top, supported: version)
    // `stages:` with nothing under it is what `text` writes for a lock without stages.
    guard let stagesNode = top.first(where: { $0.key == "stages" })?.value,
      stagesNode.scalar.map({ !$0.string.isEmpty }) ?? true
    else { return lock }
    guard let map = stagesNode.mapping else {
      throw file.error(stagesNode, "'stages' must be a mapping of stage names")
    }
    for (nameNode, body) in map {
      guard let name = nameNode.scalar?.string else { throw file.error(nameNode, "stage names must be strings") }
      var record = StageRecord(cmd: "", deps: [], params: [], outs: [])
      for entry in try file.mapping(
        body, allowed: ["cmd", "source", "deps", "params", "outs"], what: "stage '\(name)'")
      {
        switch entry.key {
        case "cmd": record.cmd = try file.string(entry.value, key: "cmd")
        case "source": record.source = try file.string(entry.value, key: "source")
        case "deps": record.deps = try entries(entry.value, key: "deps", file: file)
        case "outs": record.outs = try entries(entry.value, key: "outs", file: file)
        case "params":
          guard let files = entry.value.mapping else {
            throw file.error(entry.value, "'params' must map files to values")
          }
          for (fileNode, values) in files {
            guard let paramsFile = fileNode.scalar?.string, let valueMap = values.mapping else {
              throw file.error(fileNode, "'params' must map files to mappings of values")
            }
            let templating = Templating(file: file, context: .map([]), locals: [:], interpolate: false)
            record.params.append(
              (
                paramsFile,
                try valueMap.map { pair in (pair.key.scalar?.string ?? "", try templating.value(pair.value)) }
              ))
          }
        default: break
        }
      }
      lock.stages.append((name, record))
    }
    return lock
  }

  private static func entries(_ node: Node, key: String, file: YAMLFile) throws -> [Entry] {
    guard let list = node.sequence else { throw file.error(node, "'\(key)' must be a list") }
    return try list.map { item in
      let fields = try file.mapping(item, allowed: ["path", "hash", "size", "files"], what: "an entry of '\(key)'")
      guard let pathNode = fields.first(where: { $0.key == "path" })?.value,
        let path = RelativePath(validating: try file.string(pathNode, key: "path")), path != .root,
        !(try file.string(pathNode, key: "path")).hasPrefix("/")
      else { throw file.error(item, "an entry of '\(key)' needs a relative 'path' inside the workspace") }
      guard let hashNode = fields.first(where: { $0.key == "hash" })?.value,
        let hash = ObjectID(try file.string(hashNode, key: "hash"))
      else { throw file.error(item, "entry '\(path)' needs 'hash: sha256:<64 hex>'") }
      let size = try fields.first(where: { $0.key == "size" }).map { try file.integer($0.value, key: "size") } ?? 0
      let files = try fields.first(where: { $0.key == "files" }).map { Int(try file.integer($0.value, key: "files")) }
      return Entry(path: path, hash: hash, size: size, files: files)
    }
  }

  // MARK: - Writing

  /// The YAML text: stable, one line per entry, so diffs in git stay small.
  public var text: String {
    var out = "version: \(Self.version)\nstages:\n"
    for (name, record) in stages {
      out += "  \(YAMLText.scalar(name)):\n"
      out += "    cmd: \(YAMLText.scalar(record.cmd))\n"
      if let source = record.source { out += "    source: \(YAMLText.scalar(source))\n" }
      for (key, list) in [("deps", record.deps), ("outs", record.outs)] where !list.isEmpty {
        out += "    \(key):\n"
        for e in list {
          out += "    - {path: \(YAMLText.scalar(e.path.value)), hash: \(e.hash), size: \(e.size)"
          out += (e.files.map { ", files: \($0)" } ?? "") + "}\n"
        }
      }
      if !record.params.isEmpty {
        out += "    params:\n"
        for (file, values) in record.params {
          out += "      \(YAMLText.scalar(file)):\n"
          for (key, value) in values { out += "        \(YAMLText.scalar(key)): \(YAMLText.flow(value))\n" }
        }
      }
    }
    return out
  }

  /// Writes the lock atomically.
  public func write(workspaceRoot root: String) throws {
    try FileSystem.writeAtomically(text, to: root + "/" + Self.fileName)
  }
}

/// YAML text for values dv writes: plain scalars where YAML reads them back unchanged, else
/// double-quoted.
package enum YAMLText {
  package static func scalar(_ s: String) -> String {
    let safe =
      !s.isEmpty
      && s.unicodeScalars.allSatisfy { c in
        (c.value >= 0x30 && c.value <= 0x39) || (c.value >= 0x41 && c.value <= 0x5A)
          || (c.value >= 0x61 && c.value <= 0x7A)
          || "._/-@+=".unicodeScalars.contains(c) || c == " "
      }
      && !s.hasPrefix(" ") && !s.hasSuffix(" ") && !s.hasPrefix("-") && !s.hasPrefix("@")
      && !["true", "false", "yes", "no", "on", "off", "null", "~"].contains(s.lowercased())
    if safe { return s }
    var out = "\""
    for c in s.unicodeScalars {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      default:
        if c.value < 0x20 {
          out += "\\x" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
        } else if (0x7F...0x9F).contains(c.value) || [0x2028, 0x2029, 0xFEFF].contains(c.value) {
          // YAML reads these raw as line breaks (NEL, LS, PS), or refuses them: escape them.
          let hex = String(c.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(c)
        }
      }
    }
    return out + "\""
  }

  /// The canonical flow form of a configuration: mapping keys sorted by their UTF-8 bytes, so
  /// that reordering options does not change a stage's identity.
  package static func canonical(_ value: ConfigValue) -> String {
    switch value {
    case .map(let pairs):
      return "{"
        + pairs.sorted { utf8Precedes($0.0, $1.0) }.map { scalar($0.0) + ": " + canonical($0.1) }
        .joined(separator: ", ") + "}"
    case .list(let items): return "[" + items.map(canonical).joined(separator: ", ") + "]"
    default: return flow(value)
    }
  }

  /// A value in flow style: `1`, `[a, b]`, `{k: v}`.
  package static func flow(_ value: ConfigValue) -> String {
    switch value {
    case .scalar(let s): return scalar(s)
    case .null: return "null"
    case .list(let items): return "[" + items.map(flow).joined(separator: ", ") + "]"
    case .map(let pairs): return "{" + pairs.map { scalar($0.0) + ": " + flow($0.1) }.joined(separator: ", ") + "}"
    }
  }
}
