import DVBasics
import DVPipeline
import DVPlugins
import DVStorage
import Foundation

/// A dv workspace: the directory holding `.pipeline/`, its configuration and its stores.
///
/// Each user-facing operation is an extension in `Workspace+<Operation>.swift` that returns a
/// result value; nothing here prints.
public final class Workspace: @unchecked Sendable {
  /// dv's version, recorded with every run in the ledger.
  public static let dvVersion = "0.1.0"

  /// The absolute, symlink-free root (the directory holding `.pipeline/`).
  public let root: String
  /// `root/.pipeline`.
  public let pipelineDirectory: String
  public let config: WorkspaceConfig
  /// Resolves command-line paths against the current directory.
  public let resolver: PathResolver
  /// Receives progress of long work.
  public let progress: ProgressReporter

  /// Seconds a writer waits for another dv process before giving up.
  public var lockTimeout: Double = {
    Double(ProcessInfo.processInfo.environment["DV_LOCK_TIMEOUT"] ?? "") ?? 3
  }()

  private var _state: StateCache?
  private var _ignore: IgnoreRules?

  /// Opens the workspace that contains `directory` (searching upwards).
  public init(containing directory: String, progress: ProgressReporter = SilentProgress()) throws {
    let start = FileSystem.realPath(directory) ?? directory
    var candidate = start
    while true {
      if FileSystem.isDirectory(candidate + "/.pipeline") { break }
      if candidate == "/" || candidate.isEmpty { throw WorkspaceError.notAWorkspace(start) }
      candidate = (candidate as NSString).deletingLastPathComponent
    }
    root = candidate
    pipelineDirectory = candidate + "/.pipeline"
    config = try WorkspaceConfig.load(pipelineDirectory: pipelineDirectory)
    resolver = PathResolver(root: candidate, currentDirectory: start)
    self.progress = progress
  }

  /// The plugins this workspace's stages can use: built-in ones, then `dv-plugin-<kind>`
  /// executables in `.pipeline/plugins/` and on PATH. One registry per workspace value, so an
  /// external plugin's `--describe` runs once per command however often stages are resolved.
  public lazy var plugins = BuiltInPlugins.registry(
    searchPath: PluginRegistry.searchPath(workspaceRoot: root, environment: ProcessInfo.processInfo.environment))

  /// The local object store.
  public lazy var cache = ObjectCache(root: pipelineDirectory + "/cache", tmp: pipelineDirectory + "/tmp")

  /// The stat cache, opened on first use.
  ///
  /// The stat cache only saves work: a damaged one (not a database, corrupt) is deleted and
  /// rebuilt rather than reported, since everything in it can be recomputed.
  func state() throws -> StateCache {
    if let _state { return _state }
    let path = pipelineDirectory + "/state.db"
    let opened: StateCache
    do {
      opened = try StateCache(path: path)
    } catch StorageError.stateDatabase {
      for suffix in ["", "-wal", "-shm"] { try FileSystem.removeFile(path + suffix) }
      opened = try StateCache(path: path)
    }
    _state = opened
    return opened
  }

  /// `.dvignore` rules, read on first use.
  func ignoreRules() throws -> IgnoreRules {
    if let _ignore { return _ignore }
    let rules = try IgnoreRules.load(workspaceRoot: root)
    _ignore = rules
    return rules
  }

  /// Hashing and ingesting over this workspace's stores.
  func builder() throws -> DataBuilder {
    DataBuilder(workspaceRoot: root, ignore: try ignoreRules(), state: try state(), cache: cache, progress: progress)
  }

  /// Takes the writer lock (`.pipeline/lock`); readers such as `status` never take it. The lock
  /// is an flock, which the kernel drops when its holder dies, so a `kill -9` never blocks the
  /// next command; what the dead one left in `.pipeline/tmp` is removed here.
  func lockForWriting() throws -> FileLock {
    let lock = try FileLock(path: pipelineDirectory + "/lock", timeout: lockTimeout)
    removeAbandonedWorkFiles()
    return lock
  }

  /// The kinds of work files in `.pipeline/tmp`, each named `<kind>.<pid>.<rest>`: pending cache
  /// objects, packs being built and their indexes, run records being pushed, downloads.
  static let workFileKinds = ["obj", "pack", "run", "download", "download.run"]

  /// Deletes the work files in `.pipeline/tmp` (and the temporary files of atomic writes in
  /// `.pipeline/tmp/leftovers`) whose writer is gone (killed, crashed). Files of
  /// a live dv are left alone, so this is safe without the writer lock (push does not take it).
  func removeAbandonedWorkFiles() {
    TemporaryFiles.removeAbandoned(in: pipelineDirectory + "/tmp") {
      TemporaryFiles.writerOfWorkFile($0, kinds: Self.workFileKinds)
    }
    TemporaryFiles.removeAbandoned(in: pipelineDirectory + "/tmp/leftovers", writer: TemporaryFiles.writerOfSibling)
  }
}
