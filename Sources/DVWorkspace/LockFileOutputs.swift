import DVBasics
import DVPipeline
import DVStorage
import Yams

/// The outputs recorded in `stages.lock` (DESIGN.md §4): what `checkout` restores and `gc` keeps.
///
/// Only the parts of the lock file that the object store needs are read here; the pipeline layer
/// owns the full format.
struct LockFileOutputs {
  static let version = 1

  /// One recorded output (or dependency) with its hash.
  struct Output {
    var path: RelativePath
    var hash: ObjectID
    var kind: DataKind
  }

  /// Outputs of every stage, in file order.
  var outputs: [Output] = []
  /// Hashes of recorded dependencies (kept by gc as well).
  var dependencyHashes: [ObjectID] = []

  static func load(root: String) throws -> LockFileOutputs {
    guard let text = try FileSystem.readTextIfPresent(root + "/stages.lock") else { return LockFileOutputs() }
    let file = try YAMLFile(text: text, name: "stages.lock")
    var result = LockFileOutputs()
    guard file.root != nil else { return result }
    let entries = try file.rootMapping(allowed: ["version", "stages"], what: "stages.lock")
    try file.checkVersion(entries, supported: version)
    guard let stages = entries.first(where: { $0.key == "stages" })?.value else { return result }
    guard let stageMap = stages.mapping else { throw file.error(stages, "'stages' must be a mapping of stage names") }
    for (_, stage) in stageMap {
      guard let fields = stage.mapping else { throw file.error(stage, "a stage entry must be a mapping") }
      for (key, value) in fields {
        guard let name = key.string, name == "outs" || name == "deps" else { continue }
        guard let list = value.sequence else { throw file.error(value, "'\(name)' must be a list") }
        for item in list {
          guard let map = item.mapping else { throw file.error(item, "each entry of '\(name)' must be a mapping") }
          guard let pathText = map["path"]?.string, let path = RelativePath(validating: pathText), path != .root else {
            throw file.error(item, "entry without a valid relative 'path'")
          }
          guard let hashText = map["hash"]?.string, let hash = ObjectID(hashText) else {
            continue  // uncached outputs and untracked dependencies carry no object
          }
          if name == "outs" {
            let isDir = map["files"] != nil || map["kind"]?.string == "dir"
            result.outputs.append(Output(path: path, hash: hash, kind: isDir ? .dir : .file))
          } else {
            result.dependencyHashes.append(hash)
          }
        }
      }
    }
    return result
  }
}
