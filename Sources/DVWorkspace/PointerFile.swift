import DVBasics
import DVPipeline
import DVStorage
import Foundation

/// A `PATH.dv` file: the committed record of a file or directory added with `dv add`.
///
/// ```yaml
/// version: 1
/// path: raw
/// hash: sha256:…
/// kind: dir
/// size: 104857600
/// files: 10000
/// ```
public struct PointerFile: Sendable, Equatable {
  /// The format version written by this dv.
  public static let version = 1
  /// The extension of pointer files.
  public static let suffix = ".dv"

  /// The pointer file itself.
  public var location: RelativePath
  /// The tracked data, resolved against the pointer's directory.
  public var path: RelativePath
  public var hash: ObjectID
  public var kind: DataKind
  public var size: Int64
  public var files: Int?

  /// The pointer file that tracks `path` (`data/raw` -> `data/raw.dv`).
  public static func location(for path: RelativePath) -> RelativePath {
    path.parent.appending(path.basename + suffix)
  }

  init(for data: BuiltData) {
    location = Self.location(for: data.path)
    path = data.path
    hash = data.hash
    kind = data.kind
    size = data.size
    files = data.files
  }

  /// Reads and validates a pointer file.
  static func load(_ location: RelativePath, root: String) throws -> PointerFile {
    let absolute = location.absolute(under: root)
    guard let text = try FileSystem.readTextIfPresent(absolute) else { throw PathError.missing(location.value) }
    return try parse(text, location: location)
  }

  static func parse(_ text: String, location: RelativePath) throws -> PointerFile {
    let file = try YAMLFile(text: text, name: location.value)
    let entries = try file.rootMapping(
      allowed: ["version", "path", "hash", "kind", "size", "files"], what: "a .dv pointer file")
    try file.checkVersion(entries, supported: version)
    var path: RelativePath?
    var hash: ObjectID?
    var kind: DataKind?
    var size: Int64 = 0
    var files: Int?
    for entry in entries {
      switch entry.key {
      case "path":
        let text = try file.string(entry.value, key: "path")
        guard !text.hasPrefix("/"), let resolved = RelativePath(validating: location.parent.value + "/" + text),
          resolved != .root, !resolved.isInside(RelativePath(validating: ".pipeline")!)
        else { throw file.error(entry.value, "'path' must be a relative path inside the workspace, got '\(text)'") }
        path = resolved
      case "hash":
        let text = try file.string(entry.value, key: "hash")
        guard let id = ObjectID(text) else {
          throw file.error(entry.value, "'hash' must be sha256: followed by 64 lowercase hex digits")
        }
        hash = id
      case "kind":
        let text = try file.string(entry.value, key: "kind")
        guard let k = DataKind(rawValue: text) else { throw file.error(entry.value, "'kind' must be file or dir") }
        kind = k
      case "size": size = try file.integer(entry.value, key: "size")
      case "files": files = Int(try file.integer(entry.value, key: "files"))
      default: break
      }
    }
    guard let path else { throw file.error(file.root, "missing 'path'") }
    guard let hash else { throw file.error(file.root, "missing 'hash'") }
    return PointerFile(location: location, path: path, hash: hash, kind: kind ?? .file, size: size, files: files)
  }

  init(location: RelativePath, path: RelativePath, hash: ObjectID, kind: DataKind, size: Int64, files: Int?) {
    self.location = location
    self.path = path
    self.hash = hash
    self.kind = kind
    self.size = size
    self.files = files
  }

  /// The YAML text, with `path` relative to the pointer's directory.
  var text: String {
    var lines = [
      "version: \(Self.version)",
      "path: \(YAMLText.scalar(path.basename))",
      "hash: \(hash)",
      "kind: \(kind.rawValue)",
      "size: \(size)",
    ]
    if let files { lines.append("files: \(files)") }
    return lines.joined(separator: "\n") + "\n"
  }
}
