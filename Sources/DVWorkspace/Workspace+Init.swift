import DVBasics
import DVStorage
import Foundation

/// What `dv init` created.
public struct InitResult: Sendable {
  public var root: String
  public var noSCM: Bool
  /// Files created, relative to the root.
  public var created: [String]
}

extension Workspace {
  /// Lines of `.pipeline/.gitignore`: everything local to this machine.
  static let pipelineGitignore = """
    /cache/
    /tmp/
    /lock
    /state.db
    /state.db-*
    /lineage.db
    /lineage.db-*
    /config.local.yaml
    /exps/

    """

  /// Makes `directory` a dv workspace: `.pipeline/` with its config and .gitignore, and an empty
  /// `.dvignore`. Inside a git repository unless `noSCM`.
  public static func initialize(at directory: String, noSCM: Bool) throws -> InitResult {
    let root = FileSystem.realPath(directory) ?? directory
    let pipeline = root + "/.pipeline"
    if FileSystem.exists(pipeline) { throw WorkspaceError.alreadyInitialized(root) }
    if !noSCM && !isInsideGitRepository(root) { throw WorkspaceError.notAGitRepository(root) }
    try ObjectCache(root: pipeline + "/cache", tmp: pipeline + "/tmp").prepare()
    try FileSystem.writeAtomically(WorkspaceConfig.initialText(noSCM: noSCM), to: pipeline + "/config.yaml")
    try FileSystem.writeAtomically(pipelineGitignore, to: pipeline + "/.gitignore")
    var created = [".pipeline/config.yaml", ".pipeline/.gitignore"]
    if !FileSystem.exists(root + "/.dvignore") {
      try FileSystem.writeAtomically(
        "# Paths dv leaves out of directory hashing and workspace scans (gitignore syntax).\n",
        to: root + "/.dvignore")
      created.append(".dvignore")
    }
    return InitResult(root: root, noSCM: noSCM, created: created)
  }

  /// True when `directory` or a parent holds `.git` (a directory, or a file for worktrees).
  static func isInsideGitRepository(_ directory: String) -> Bool {
    var dir = directory
    while true {
      if FileSystem.exists(dir + "/.git") { return true }
      if dir == "/" || dir.isEmpty { return false }
      dir = (dir as NSString).deletingLastPathComponent
    }
  }
}
