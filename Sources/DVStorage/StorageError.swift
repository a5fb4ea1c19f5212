import DVBasics

/// Errors of the object store and the stat cache.
public enum StorageError: DVError {
  /// A cached directory manifest is not valid manifest JSON.
  case corruptManifest(ObjectID)
  /// A cached object's content does not match its name; it was moved aside to `movedTo`.
  case corruptObject(ObjectID, movedTo: String)
  /// An object that should be in the cache is not there.
  case missingObject(ObjectID, forPath: String)
  /// A file or directory name is not valid UTF-8 and cannot be written to a manifest.
  case invalidFileName(directory: String, bytes: String)
  /// No configured link strategy could place a file.
  case linkFailed(path: String, tried: [String], reason: String)
  /// A symlink inside a tracked directory points at a directory or outside the workspace.
  case unsupportedSymlink(String)
  /// Something other than a regular file, directory or link (a socket, a device).
  case unsupportedFileType(String)
  /// A file changed while it was being added.
  case changedWhileAdding(String)
  /// The stat cache database failed.
  case stateDatabase(String)

  public var kind: FailureKind {
    switch self {
    case .invalidFileName, .unsupportedSymlink, .unsupportedFileType: return .badInput
    default: return .failed
    }
  }

  public var description: String {
    switch self {
    case .corruptManifest(let id):
      return "the cached directory manifest \(id.short) is corrupt; run `dv fsck`, then `dv add` or `dv pull` again"
    case .corruptObject(let id, let moved):
      return "the cached object \(id.short) is corrupt (content does not match its hash); moved aside to '\(moved)'"
    case .missingObject(let id, let path):
      return "'\(path)' (\(id.short)) is not in the cache; run `dv pull` or `dv add` it again"
    case .invalidFileName(let dir, let bytes):
      return "a file name in '\(dir)' is not valid UTF-8 (\(bytes)); rename it so it can be tracked"
    case .linkFailed(let path, let tried, let reason):
      return "could not place '\(path)' with cache.type \(tried.joined(separator: ", ")): \(reason)"
    case .unsupportedSymlink(let path):
      return
        "'\(path)' is a symlink to a directory or to a place outside the workspace; dv tracks the files themselves, replace the link with its target"
    case .unsupportedFileType(let path):
      return
        "'\(path)' is not a regular file or directory (a socket, pipe or device); remove it or list it in .dvignore"
    case .changedWhileAdding(let path):
      return "'\(path)' changed while it was being added; run `dv add` again once nothing writes to it"
    case .stateDatabase(let message):
      return "the stat cache .pipeline/state.db failed: \(message); delete it, dv rebuilds it"
    }
  }
}
