import CDVSystem

#if canImport(Glibc)
  import Glibc
#endif

/// What `stat(2)` says of a file, reduced to what dv needs.
public struct FileStat: Sendable, Equatable {
  /// The kind of a directory entry.
  public enum Kind: Sendable, Equatable { case file, directory, symlink, other }

  public var kind: Kind
  public var device: UInt64
  public var inode: UInt64
  public var size: Int64
  /// Modification time in nanoseconds since the epoch.
  public var mtimeNs: Int64
  public var mode: UInt32

  /// True when any execute bit is set.
  public var isExecutable: Bool { mode & 0o111 != 0 }

  package init(_ st: stat) {
    switch st.st_mode & S_IFMT {
    case S_IFREG: kind = .file
    case S_IFDIR: kind = .directory
    case S_IFLNK: kind = .symlink
    default: kind = .other
    }
    device = UInt64(st.st_dev)
    inode = UInt64(st.st_ino)
    size = Int64(st.st_size)
    mtimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    mode = UInt32(st.st_mode)
  }

  /// A regular file's stat from remembered values (stat cache lookups).
  package init(device: UInt64, inode: UInt64, size: Int64, mtimeNs: Int64) {
    kind = .file
    self.device = device
    self.inode = inode
    self.size = size
    self.mtimeNs = mtimeNs
    mode = 0o100644
  }

  /// `stat` (following links) of an absolute path; nil when nothing is there.
  public static func of(_ path: String, followLinks: Bool = true) throws -> FileStat? {
    var st = stat()
    let rc = followLinks ? stat(path, &st) : lstat(path, &st)
    if rc != 0 {
      if errno == ENOENT || errno == ENOTDIR { return nil }
      throw SystemError("reading the status of '\(path)'", errno: errno)
    }
    return FileStat(st)
  }

  /// `fstat` of an open descriptor.
  public static func of(descriptor fd: Int32, path: String) throws -> FileStat {
    var st = stat()
    if fstat(fd, &st) != 0 { throw SystemError("reading the status of '\(path)'", errno: errno) }
    return FileStat(st)
  }
}

/// File timestamps come from a coarse clock; a file whose mtime falls in the tick of a moment
/// may still be changed later in that same tick without its mtime moving.
public enum FileClock {
  /// The granularity of file timestamps (the coarse clock's resolution), in nanoseconds.
  public static let tickNs: Int64 = max(dv_coarse_clock_resolution_ns(), 1_000_000)

  /// The coarse realtime clock now, in nanoseconds since the epoch.
  public static func nowNs() -> Int64 { dv_coarse_now_ns() }

  /// True when a stat taken with `mtimeNs` can be trusted for content read at or after
  /// `readStartNs`: the file's last change lies in an earlier tick, so any later change moves
  /// the mtime.
  public static func isSettled(mtimeNs: Int64, readStartNs: Int64) -> Bool {
    mtimeNs < readStartNs - tickNs
  }
}
