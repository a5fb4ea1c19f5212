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
/// names that are not UTF-8 (they cannot be written to a manifest).
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
  }

  /// Every file under `directory`, sorted by path bytes.
  public func scan(_ directory: RelativePath) throws -> [ScannedFile] {
    let base = directory.absolute(under: workspaceRoot)
    var level = [""]
    var files: [ScannedFile] = []
    while !level.isEmpty {
      var listings = [Listing](repeating: Listing(), count: level.count)
      try listings.withUnsafeMutableBufferPointer { out in
        let out = UnsafeSendableBox(out)
        try parallelForEach(level.count) { i in
          out.value[i] = try list(base: base, directory: directory, sub: level[i])
        }
      }
      level = []
      for listing in listings {
        files.append(contentsOf: listing.files)
        level.append(contentsOf: listing.subdirectories)
      }
    }
    // Sort indices, not the structs: moving 10,000 strings around costs more than comparing them.
    var order = Array(0..<files.count)
    order.sort { utf8Precedes(files[$0].path, files[$1].path) }
    return order.map { files[$0] }
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
    return listing
  }
}
