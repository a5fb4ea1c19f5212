import DVBasics

#if canImport(Glibc)
  import Glibc
#endif

/// A regular file found under a tracked directory, with the stat that keys the stat cache.
public struct ScannedFile: Sendable {
  /// Path relative to the scanned directory, `/`-separated.
  public var path: String
  public var stat: FileStat
}

/// Lists every regular file under a directory, on all cores, honouring `.dvignore`.
///
/// Directories are read level by level; each level's directories are listed and their files
/// stat'ed in parallel. Symlinks to files inside the workspace count as the file they point at;
/// symlinks to directories or outside the workspace, sockets and devices are errors, as are
/// names that are not UTF-8 (they cannot be written to a manifest). dv's own temporary files
/// (`TemporaryFiles`) are not listed.
public struct DirectoryScanner: Sendable {
  public let workspaceRoot: String
  public let ignore: IgnoreRules

  public init(workspaceRoot: String, ignore: IgnoreRules) {
    self.workspaceRoot = workspaceRoot
    self.ignore = ignore
  }

  private struct Listing {
    var files: [ScannedFile] = []
    var subdirectories: [String] = []
    /// Files and subdirectories in path byte order: a file sorts by its name, a directory by its
    /// name followed by "/", which makes a depth-first walk emit paths in byte order.
    var order: [Child] = []
    /// Index (in the scan's list of all directories) of the first subdirectory's listing.
    var firstChild = 0
  }

  private enum Child {
    case file(Int)
    case directory(Int)
  }

  /// Every file under `directory`, sorted by path bytes.
  ///
  /// Each directory's entries are sorted by the worker that listed it; a depth-first pass then
  /// emits the global order without comparing full paths.
  public func scan(_ directory: RelativePath) throws -> [ScannedFile] {
    let base = directory.absolute(under: workspaceRoot)
    var level = [""]
    var all: [Listing] = []
    while !level.isEmpty {
      var listings = [Listing](repeating: Listing(), count: level.count)
      try listings.withUnsafeMutableBufferPointer { out in
        let out = UnsafeSendableBox(out)
        try parallelForEach(level.count) { i in
          out.value[i] = try list(base: base, directory: directory, sub: level[i])
        }
      }
      level = []
      var next = all.count + listings.count
      for i in listings.indices {
        listings[i].firstChild = next
        next += listings[i].subdirectories.count
        level.append(contentsOf: listings[i].subdirectories)
      }
      all.append(contentsOf: listings)
    }
    var files: [ScannedFile] = []
    files.reserveCapacity(all.reduce(0) { $0 + $1.files.count })
    var stack: [(listing: Int, position: Int)] = all.isEmpty ? [] : [(0, 0)]
    while let top = stack.popLast() {
      let listing = all[top.listing]
      var position = top.position
      while position < listing.order.count {
        switch listing.order[position] {
        case .file(let f):
          files.append(listing.files[f])
          position += 1
        case .directory(let d):
          stack.append((top.listing, position + 1))
          stack.append((listing.firstChild + d, 0))
          position = listing.order.count + 1
        }
      }
    }
    return files
  }

  /// Sorts a directory's entries by name bytes, a directory's name counting with a trailing "/".
  private static func sortedChildren(files: [ScannedFile], subdirectories: [String], prefixLength: Int) -> [Child] {
    var keys: [UInt8] = []
    var spans: [(start: Int, count: Int, child: Child)] = []
    spans.reserveCapacity(files.count + subdirectories.count)
    for (i, f) in files.enumerated() {
      let start = keys.count
      keys.append(contentsOf: f.path.utf8.dropFirst(prefixLength))
      spans.append((start, keys.count - start, .file(i)))
    }
    for (i, d) in subdirectories.enumerated() {
      let start = keys.count
      keys.append(contentsOf: d.utf8.dropFirst(prefixLength))
      keys.append(UInt8(ascii: "/"))
      spans.append((start, keys.count - start, .directory(i)))
    }
    keys.withUnsafeBufferPointer { k in
      let base = k.baseAddress!
      spans.sort { a, b in
        let c = memcmp(base + a.start, base + b.start, min(a.count, b.count))
        return c < 0 || (c == 0 && a.count < b.count)
      }
    }
    return spans.map(\.child)
  }

  private func list(base: String, directory: RelativePath, sub: String) throws -> Listing {
    let dirPath = sub.isEmpty ? base : base + "/" + sub
    guard let dir = opendir(dirPath) else { throw SystemError("listing '\(dirPath)'", errno: errno) }
    defer { closedir(dir) }
    let fd = dirfd(dir)
    var listing = Listing()
    let prefix = sub.isEmpty ? "" : sub + "/"
    let atRoot = directory == .root && sub.isEmpty
    while let entry = readdir(dir) {
      let type = entry.pointee.d_type
      let name: String? = withUnsafePointer(to: &entry.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: 256) { cname -> String? in
          if cname[0] == 0x2E && (cname[1] == 0 || (cname[1] == 0x2E && cname[2] == 0)) { return "" }
          return String(validatingCString: cname)
        }
      }
      guard let name else {
        let raw = withUnsafePointer(to: &entry.pointee.d_name) {
          $0.withMemoryRebound(to: UInt8.self, capacity: 256) { p in
            (0..<strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))).map { String(p[$0], radix: 16) }
          }
        }
        throw StorageError.invalidFileName(directory: dirPath, bytes: "bytes " + raw.joined(separator: " "))
      }
      if name.isEmpty { continue }
      if name == ".git" || (atRoot && name == ".pipeline") { continue }
      // A dv temporary file (an interrupted checkout's partial copy) is never data: it is
      // skipped, and removed once the process that wrote it is gone.
      if name.utf8.first == UInt8(ascii: "."), let writer = TemporaryFiles.writerOfSibling(name) {
        if TemporaryFiles.isGone(writer) { unlinkat(fd, name, 0) }
        continue
      }
      let rel = prefix + name
      var st = stat()
      let isDir: Bool
      if type == DT_DIR {
        isDir = true
      } else {
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
          if errno == ENOENT { continue }  // removed while we looked
          throw SystemError("reading the status of '\(dirPath)/\(name)'", errno: errno)
        }
        isDir = (st.st_mode & S_IFMT) == S_IFDIR
      }
      if !ignore.isEmpty {
        let workspaceRelative = directory == .root ? rel : directory.value + "/" + rel
        if ignore.isIgnored(workspaceRelative, isDirectory: isDir) { continue }
      }
      if isDir {
        listing.subdirectories.append(rel)
        continue
      }
      switch st.st_mode & S_IFMT {
      case S_IFREG:
        listing.files.append(ScannedFile(path: rel, stat: FileStat(st)))
      case S_IFLNK:
        let full = dirPath + "/" + name
        guard let target = FileSystem.realPath(full),
          target.hasPrefix(workspaceRoot + "/"),
          let targetStat = try FileStat.of(target), targetStat.kind == .file
        else { throw StorageError.unsupportedSymlink(directory.appending(rel).value) }
        listing.files.append(ScannedFile(path: rel, stat: targetStat))
      default:
        throw StorageError.unsupportedFileType(directory.appending(rel).value)
      }
    }
    if !listing.files.isEmpty || !listing.subdirectories.isEmpty {
      listing.order = Self.sortedChildren(
        files: listing.files, subdirectories: listing.subdirectories, prefixLength: prefix.utf8.count)
    }
    return listing
  }
}
