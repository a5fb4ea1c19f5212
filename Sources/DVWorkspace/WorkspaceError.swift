import DVBasics

/// Errors of workspace operations: bad workspace files, bad targets, refusals that protect data.
public enum WorkspaceError: DVError {
  /// No `.pipeline/` in the current directory or above.
  case notAWorkspace(String)
  /// `dv init` where `.pipeline/` already exists.
  case alreadyInitialized(String)
  /// `dv init` outside a git repository without `--no-scm`.
  case notAGitRepository(String)
  /// The path lies inside a directory that is already tracked.
  case insideTrackedDirectory(String, trackedBy: String)
  /// The directory contains data tracked by another pointer.
  case containsTrackedData(String, pointer: String)
  /// The target is a symbolic link.
  case targetIsSymlink(String)
  /// The target is itself a `.dv` pointer file.
  case targetIsPointer(String)
  /// The target matches a `.dvignore` pattern.
  case ignoredTarget(String)
  /// The workspace root itself cannot be tracked.
  case cannotTrackRoot
  /// A checkout target is not tracked by any pointer or stages.lock.
  case notTracked(String)
  /// Files would be overwritten or deleted although their content is not in the cache.
  case wouldLoseData([String])
  /// Objects needed by a checkout are not in the cache.
  case missingFromCache([String])
  /// A command compares with git HEAD outside a git repository.
  case needsGit
  /// Corrupt objects were found (and moved aside) by fsck.
  case corruptObjects(Int)

  public var kind: FailureKind {
    switch self {
    case .wouldLoseData, .missingFromCache, .corruptObjects: return .failed
    default: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .notAWorkspace(let dir):
      return "'\(dir)' is not inside a dv workspace (no .pipeline/ here or above); run `dv init` first"
    case .alreadyInitialized(let dir):
      return "'\(dir)' is already a dv workspace (.pipeline/ exists); nothing to do"
    case .notAGitRepository(let dir):
      return
        "'\(dir)' is not inside a git repository; run `git init` first, or `dv init --no-scm` to use dv without git"
    case .insideTrackedDirectory(let path, let pointer):
      return "'\(path)' is inside a directory tracked by '\(pointer)'; add the whole directory again instead"
    case .containsTrackedData(let path, let pointer):
      return
        "'\(path)' contains data already tracked by '\(pointer)'; remove that pointer first or add a different directory"
    case .targetIsSymlink(let path):
      return "'\(path)' is a symbolic link; add the file or directory it points to"
    case .targetIsPointer(let path):
      return "'\(path)' is a pointer file; add the data it points to instead"
    case .ignoredTarget(let path):
      return "'\(path)' matches a pattern in .dvignore; remove the pattern to track it"
    case .cannotTrackRoot:
      return "the workspace root cannot be tracked; add a file or directory inside it"
    case .notTracked(let path):
      return "'\(path)' is not tracked by any .dv file or stages.lock; check the path or run `dv add` first"
    case .wouldLoseData(let paths):
      return "refusing to overwrite or delete \(Self.list(paths)): their content is not in the cache; "
        + "run `dv add` on them to keep it, or `dv checkout --force` to discard it"
    case .missingFromCache(let paths):
      return
        "\(Self.list(paths)) \(paths.count == 1 ? "is" : "are") not in the cache; run `dv pull` (or `dv add` again)"
    case .needsGit:
      return "this compares with git HEAD, and the workspace is not in a git repository"
    case .corruptObjects(let count):
      return
        "\(count) corrupt object\(count == 1 ? "" : "s") found and moved aside to .pipeline/cache/corrupt; run `dv pull` or `dv add` to restore them"
    }
  }

  private static func list(_ paths: [String]) -> String {
    let shown = paths.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
    return paths.count > 5 ? "\(shown) and \(paths.count - 5) more" : shown
  }
}
