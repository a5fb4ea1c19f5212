import DVBasics
import DVPipeline
import DVStorage

#if canImport(Glibc)
  import Glibc
#endif

/// A file or directory whose content dv records: through a pointer file or as a stage output.
public struct TrackedData: Sendable {
  /// Where the record lives.
  public enum Source: Sendable, Equatable {
    case pointer(RelativePath)
    case lockFile
  }

  public var path: RelativePath
  public var kind: DataKind
  public var hash: ObjectID
  public var source: Source

  /// The file that records it, for messages.
  public var recordedIn: String {
    switch source {
    case .pointer(let p): return p.value
    case .lockFile: return "stages.lock"
    }
  }
}

extension Workspace {
  /// Every `.dv` pointer file in the workspace, sorted. The walk skips `.git`, `.pipeline`,
  /// paths in `.dvignore`, and the tracked directories themselves (a directory `x` beside `x.dv`);
  /// it removes the temporary files of atomic writes whose writer is gone (a `kill -9`).
  func pointerFiles() throws -> [RelativePath] {
    let ignore = try ignoreRules()
    var found: [RelativePath] = []
    var level: [RelativePath] = [.root]
    while !level.isEmpty {
      var next: [RelativePath] = []
      for dir in level {
        let entries: [(name: String, type: UInt8)]
        do {
          entries = try FileSystem.listDirectory(dir.absolute(under: root))
        } catch let error as SystemError where error.code == EACCES {
          continue
        }
        let names = Set(entries.map(\.name))
        for entry in entries {
          if dir == .root && (entry.name == ".pipeline" || entry.name == ".git") { continue }
          if entry.name == ".git" { continue }
          if entry.name.utf8.first == UInt8(ascii: "."), let writer = TemporaryFiles.writerOfSibling(entry.name) {
            // An interrupted atomic write (a pointer, stages.lock, .gitignore): nobody's now.
            if TemporaryFiles.isGone(writer) { unlink(dir.appending(entry.name).absolute(under: root)) }
            continue
          }
          let path = dir.appending(entry.name)
          var type = entry.type
          if type == DT_UNKNOWN {
            switch try FileStat.of(path.absolute(under: root), followLinks: false)?.kind {
            case .directory: type = UInt8(DT_DIR)
            case .file: type = UInt8(DT_REG)
            default: type = UInt8(DT_LNK)
            }
          }
          if type == DT_DIR {
            if names.contains(entry.name + PointerFile.suffix) { continue }
            if ignore.isIgnored(path.value, isDirectory: true) { continue }
            next.append(path)
          } else if type == DT_REG, entry.name.hasSuffix(PointerFile.suffix),
            entry.name.count > PointerFile.suffix.count
          {
            if ignore.isIgnored(path.value, isDirectory: false) { continue }
            found.append(path)
          }
        }
      }
      level = next
    }
    return found.sorted()
  }

  /// Every pointer, parsed.
  func pointers() throws -> [PointerFile] {
    try pointerFiles().map { try PointerFile.load($0, root: root) }
  }

  /// Data recorded by pointers and by `stages.lock`.
  func trackedData(includeLockFile: Bool = true) throws -> [TrackedData] {
    var items = try pointers().map {
      TrackedData(path: $0.path, kind: $0.kind, hash: $0.hash, source: .pointer($0.location))
    }
    if includeLockFile {
      let lock = try LockFile.load(workspaceRoot: root)
      if !lock.stages.isEmpty {
        // Outputs declared `cache: false` (metrics by default) are recorded but never cached.
        let uncached = Set((try pipeline())?.stages.flatMap { $0.outs.filter { !$0.cache }.map(\.path) } ?? [])
        for (_, record) in lock.stages {
          for out in record.outs where !uncached.contains(out.path) {
            items.append(TrackedData(path: out.path, kind: out.kind, hash: out.hash, source: .lockFile))
          }
        }
      }
    }
    return items
  }
}
