import CDVSystem
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Thin, throwing wrappers over the POSIX calls dv uses; every error names the path and action.
public enum FileSystem {
  /// The current working directory.
  public static func currentDirectory() throws -> String {
    guard let p = getcwd(nil, 0) else { throw SystemError("reading the current directory", errno: errno) }
    defer { free(p) }
    return String(cString: p)
  }

  /// True when something (of any kind, links not followed) exists at `path`.
  public static func exists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
  }

  /// True when `path` is a directory (following links).
  public static func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
  }

  /// Creates `path` and its missing parents.
  public static func createDirectory(_ path: String, mode: mode_t = 0o755) throws {
    if mkdir(path, mode) == 0 { return }
    let err = errno
    if err == EEXIST, isDirectory(path) { return }
    if err == ENOENT {
      let parent = (path as NSString).deletingLastPathComponent
      if !parent.isEmpty, parent != path {
        try createDirectory(parent, mode: mode)
        if mkdir(path, mode) == 0 || (errno == EEXIST && isDirectory(path)) { return }
      }
    }
    throw SystemError("creating directory '\(path)'", errno: err == ENOENT ? errno : err)
  }

  /// Reads a whole (small) file; nil when it does not exist. A directory at `path` is
  /// `PathError.notAFile`.
  public static func readFileIfPresent(_ path: String) throws -> [UInt8]? {
    let fd = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
    if fd < 0 {
      // A name too long for the system cannot name an existing file.
      if errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG { return nil }
      throw SystemError("opening '\(path)'", errno: errno)
    }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        // A directory where a file belongs is the user's input, not a failing disk.
        if errno == EISDIR { throw PathError.notAFile(path) }
        throw SystemError("reading '\(path)'", errno: errno)
      }
      if n == 0 { break }
      result.append(contentsOf: chunk[0..<n])
    }
    return result
  }

  /// Reads `length` bytes of a file from `offset`; fewer when the file ends first.
  public static func readRange(of path: String, offset: Int64, length: Int) throws -> [UInt8] {
    let fd = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
    if fd < 0 { throw SystemError("opening '\(path)'", errno: errno) }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: length)
    var done = 0
    try bytes.withUnsafeMutableBytes { out in
      while done < out.count {
        let n = pread(fd, out.baseAddress! + done, out.count - done, off_t(offset) + off_t(done))
        if n < 0 {
          if errno == EINTR { continue }
          throw SystemError("reading '\(path)'", errno: errno)
        }
        if n == 0 { break }
        done += n
      }
    }
    if done < length { bytes.removeLast(length - done) }
    return bytes
  }

  /// Reads a whole (small) text file; nil when it does not exist.
  public static func readTextIfPresent(_ path: String) throws -> String? {
    guard let bytes = try readFileIfPresent(path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Writes every byte of `buffer` to `fd`, retrying short writes.
  public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
    var offset = 0
    while offset < buffer.count {
      let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("writing '\(path)'", errno: errno)
      }
      offset += n
    }
  }

  /// Creates (or truncates) `path` and writes `bytes` to it, without syncing: for temporary
  /// files that something else makes durable or throws away.
  public static func writeFile(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    try FailPoint.beforeWrite()
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    if fd < 0 { throw SystemError("creating '\(path)'", errno: errno) }
    defer { close(fd) }
    try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
  }

  /// Replaces `path` with `bytes` atomically: a temporary file beside it, fsync, rename, fsync of
  /// the directory. Readers see the old content or the new, never a mix.
  public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let tmp = TemporaryFiles.sibling(of: path)
    try FailPoint.beforeWrite()
    let fd = dv_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, UInt32(mode))
    if fd < 0 { throw SystemError("creating '\(tmp)'", errno: errno) }
    var ok = false
    defer {
      if !ok { unlink(tmp) }
    }
    do {
      try bytes.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
      if fsync(fd) != 0 { throw SystemError("syncing '\(tmp)'", errno: errno) }
      if fchmod(fd, mode) != 0 { throw SystemError("setting the mode of '\(tmp)'", errno: errno) }
    } catch {
      close(fd)
      throw error
    }
    close(fd)
    try FailPoint.hit("atomic-write:before-rename")
    try FailPoint.beforeWrite()
    if rename(tmp, path) != 0 { throw SystemError("replacing '\(path)'", errno: errno) }
    ok = true
    syncDirectory(dir.isEmpty ? "." : dir)
  }

  /// Writes a text file atomically.
  public static func writeAtomically(_ text: String, to path: String, mode: mode_t = 0o644) throws {
    try writeAtomically(Array(text.utf8), to: path, mode: mode)
  }

  /// fsync of a directory, making renames in it durable; best effort.
  public static func syncDirectory(_ path: String) {
    let fd = dv_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
    if fd >= 0 {
      fsync(fd)
      close(fd)
    }
  }

  /// syncfs(2) on the filesystem holding `path`: one call makes every object written so far
  /// durable, instead of an fsync per object.
  public static func syncFileSystem(containing path: String) throws {
    let fd = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
    if fd < 0 { throw SystemError("opening '\(path)' to sync it", errno: errno) }
    defer { close(fd) }
    if dv_syncfs(fd) != 0 { throw SystemError("syncing the filesystem of '\(path)'", errno: errno) }
  }

  /// The name of the filesystem type holding `path` (`ext4`, `btrfs`, `xfs`, `tmpfs`, ...), from
  /// statfs(2)'s magic number; `0x...` for one dv does not name, `unknown` when statfs fails.
  public static func filesystemType(of path: String) -> String {
    let type = dv_filesystem_magic(path)
    guard type >= 0 else { return "unknown" }
    let names: [UInt: String] = [
      0xEF53: "ext4", 0x9123_683E: "btrfs", 0x5846_5342: "xfs", 0x0102_1994: "tmpfs", 0x794C_7630: "overlay",
      0x6969: "nfs", 0x2FC1_2FC1: "zfs", 0x6573_5546: "fuse", 0xFF53_4D42: "cifs", 0x5346_544E: "ntfs",
      0x4D44: "vfat", 0xF2F5_2010: "f2fs", 0x0BD0_0BD0: "lustre", 0x4750_4653: "gpfs", 0x0000_0BAD: "beegfs",
    ]
    let magic = UInt(UInt32(truncatingIfNeeded: type))
    return names[magic] ?? "0x" + String(magic, radix: 16)
  }

  /// The names in a directory (without "." and ".."), unsorted.
  public static func listDirectory(_ path: String) throws -> [(name: String, type: UInt8)] {
    guard let dir = opendir(path) else { throw SystemError("listing '\(path)'", errno: errno) }
    defer { closedir(dir) }
    var result: [(String, UInt8)] = []
    while let entry = readdir(dir) {
      let type = entry.pointee.d_type
      let name = withUnsafePointer(to: &entry.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
      }
      if name == "." || name == ".." { continue }
      result.append((name, type))
    }
    return result
  }

  /// Removes a file, or a directory and everything in it. Read-only cache links are removed too.
  public static func removeTree(_ path: String) throws {
    try FailPoint.beforeWrite()
    var st = stat()
    if lstat(path, &st) != 0 {
      if errno == ENOENT { return }
      throw SystemError("removing '\(path)'", errno: errno)
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      try path.withCString { try removeContents(of: AT_FDCWD, $0, shownAs: path) }
      if rmdir(path) != 0 { throw SystemError("removing directory '\(path)'", errno: errno) }
    } else if unlink(path) != 0, errno != ENOENT {
      throw SystemError("removing '\(path)'", errno: errno)
    }
  }

  /// Empties the directory `name` (relative to `parent`) by its entries' raw names, so names that
  /// are not UTF-8 (which a String cannot carry) go too; symbolic links are removed, not followed.
  private static func removeContents(of parent: Int32, _ name: UnsafePointer<CChar>, shownAs shown: String) throws {
    let fd = dv_openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    if fd < 0 { throw SystemError("opening directory '\(shown)'", errno: errno) }
    guard let dir = fdopendir(fd) else {
      close(fd)
      throw SystemError("listing '\(shown)'", errno: errno)
    }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
      let type = entry.pointee.d_type
      try withUnsafePointer(to: &entry.pointee.d_name) { raw in
        try raw.withMemoryRebound(to: CChar.self, capacity: 256) { entryName in
          if strcmp(entryName, ".") == 0 || strcmp(entryName, "..") == 0 { return }
          var isDirectory = type == UInt8(DT_DIR)
          if type == UInt8(DT_UNKNOWN) {
            var st = stat()
            isDirectory = fstatat(fd, entryName, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
          }
          let child =
            shown + "/"
            + String(decoding: UnsafeRawBufferPointer(start: entryName, count: strlen(entryName)), as: UTF8.self)
          try FailPoint.beforeWrite()
          if isDirectory {
            try removeContents(of: fd, entryName, shownAs: child)
            if unlinkat(fd, entryName, AT_REMOVEDIR) != 0 {
              throw SystemError("removing directory '\(child)'", errno: errno)
            }
          } else if unlinkat(fd, entryName, 0) != 0, errno != ENOENT {
            throw SystemError("removing '\(child)'", errno: errno)
          }
        }
      }
    }
  }

  /// Removes a file; a missing file is not an error.
  public static func removeFile(_ path: String) throws {
    try FailPoint.beforeWrite()
    if unlink(path) != 0, errno != ENOENT { throw SystemError("removing '\(path)'", errno: errno) }
  }

  /// Removes `directory` and its parents up to (not including) `stop` while they are empty.
  public static func removeEmptyDirectories(from directory: String, upTo stop: String) {
    var dir = directory
    while dir.count > stop.count, dir.hasPrefix(stop), rmdir(dir) == 0 {
      dir = (dir as NSString).deletingLastPathComponent
    }
  }

  /// Resolves symlinks and `..` of an existing path.
  public static func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
  }
}
