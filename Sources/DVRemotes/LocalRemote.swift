import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A remote that is a directory, maybe on a network mount (`/mnt/share/dv`, `file:///srv/dv`).
///
/// Uploads are atomic like the cache's: bytes go to a hidden temporary name in the destination
/// directory, are fsynced, then renamed, so an object never appears half-written under its
/// name. Listings skip those temporary names.
///
/// A temporary name says which host and process writes it
/// (`.dvtmp.<key name>.<host tag>-<pid>.<random>`). An upload interrupted by a crash or `kill -9`
/// leaves its temporary file behind; the first upload of a later process into the same
/// directory deletes the ones its own host wrote from processes that are gone. Files of other
/// hosts (a shared mount) are never touched, as their writers cannot be checked from here.
public struct LocalRemote: Remote {
  /// The absolute directory holding the remote's keys.
  public let root: String
  public let displayURL: String

  /// The prefix of temporary names; keys never start with a dot.
  static let temporaryPrefix = ".dvtmp."

  /// Directories whose abandoned temporary files this process has already looked for.
  private let swept = Locked<Set<String>>([])

  /// A remote at directory `root`; `displayURL` is how the user wrote it.
  public init(root: String, displayURL: String? = nil) {
    self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    self.displayURL = displayURL ?? root
  }

  private func path(_ key: String) -> String { root + "/" + key }

  private func url(_ key: String) -> String { displayURL + (displayURL.hasSuffix("/") ? "" : "/") + key }

  public func exists(_ key: String) throws -> Bool {
    var st = stat()
    if stat(path(key), &st) == 0 { return (st.st_mode & S_IFMT) == S_IFREG }
    if errno == ENOENT || errno == ENOTDIR { return false }
    throw RemoteError.transport(url: url(key), message: "cannot read: \(String(cString: strerror(errno)))")
  }

  public func list(prefix: String, _ each: (_ key: String, _ size: Int64) throws -> Bool) throws {
    // Walk from the deepest directory the prefix names, then filter by the rest of it.
    let directoryPart = prefix.lastIndex(of: "/").map { String(prefix[..<$0]) } ?? ""
    // A remote directory that does not exist yet is empty: the first upload creates it.
    guard FileSystem.isDirectory(directoryPart.isEmpty ? root : path(directoryPart)) else { return }
    var pending = [directoryPart]
    while let relative = pending.popLast() {
      let absolute = relative.isEmpty ? root : path(relative)
      let entries: [(name: String, type: UInt8)]
      do {
        entries = try FileSystem.listDirectory(absolute)
      } catch let error as SystemError where error.code == ENOENT {
        continue
      } catch {
        throw RemoteError.transport(url: url(relative), message: "cannot list: \(error)")
      }
      for entry in entries.sorted(by: { $0.name < $1.name }) where !entry.name.hasPrefix(".") {
        let key = relative.isEmpty ? entry.name : relative + "/" + entry.name
        var type = Int32(entry.type)
        if type == DT_UNKNOWN {
          var st = stat()
          guard lstat(path(key), &st) == 0 else { continue }
          type = (st.st_mode & S_IFMT) == S_IFDIR ? Int32(DT_DIR) : Int32(DT_REG)
        }
        if type == DT_DIR {
          if key.hasPrefix(prefix) || prefix.hasPrefix(key + "/") { pending.append(key) }
        } else if type == DT_REG, key.hasPrefix(prefix) {
          var st = stat()
          let size = stat(path(key), &st) == 0 ? Int64(st.st_size) : 0
          if try !each(key, size) { return }
        }
      }
    }
  }

  public func upload(
    from source: String, size: Int64, sha256: [UInt8]?, to key: String, progress: @escaping (Int64) -> Void
  ) throws {
    let final = path(key)
    let directory = (final as NSString).deletingLastPathComponent
    do {
      try FileSystem.createDirectory(directory)
    } catch {
      throw RemoteError.transport(url: url(key), message: "cannot create its directory: \(error)")
    }
    if swept.withLock({ $0.insert(directory).inserted }) { Self.removeAbandonedTemporaries(in: directory) }
    let temporary =
      directory + "/" + Self.temporaryPrefix + (final as NSString).lastPathComponent
      + ".\(Self.hostTag)-\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    do {
      try FailPoint.beforeWrite()
      try copy(from: source, to: temporary, progress: progress)
      try FailPoint.hit("local-remote:before-rename")
      try FailPoint.beforeWrite()
      if rename(temporary, final) != 0 { throw SystemError("renaming '\(temporary)'", errno: errno) }
    } catch {
      unlink(temporary)
      if error is RemoteError { throw error }
      throw RemoteError.transport(url: url(key), message: "upload failed: \(error)")
    }
    FileSystem.syncDirectory(directory)
  }

  public func download(_ key: String, to destination: String, progress: @escaping (Int64) -> Void) throws {
    guard try exists(key) else { throw RemoteError.notFound(url: url(key)) }
    try FailPoint.beforeWrite()
    do {
      try copy(from: path(key), to: destination, progress: progress, sync: false)
    } catch let error as SystemError where error.isOutOfSpace {
      // The local disk is full: not the remote's failure, and no retry will help.
      throw error
    } catch {
      throw RemoteError.transport(url: url(key), message: "download failed: \(error)")
    }
  }

  public func read(
    _ key: String, range: Range<Int64>?, into sink: ObjectSink, progress: @escaping (Int64) -> Void
  ) throws {
    let fd = open(path(key), O_RDONLY | O_CLOEXEC)
    if fd < 0 {
      if errno == ENOENT || errno == ENOTDIR { throw RemoteError.notFound(url: url(key)) }
      throw RemoteError.transport(url: url(key), message: "cannot read: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      throw RemoteError.transport(url: url(key), message: "cannot read: \(String(cString: strerror(errno)))")
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw RemoteError.notFound(url: url(key)) }
    let size = Int64(st.st_size)
    let wanted = range ?? 0..<size
    guard wanted.upperBound <= size || wanted.isEmpty else {
      throw RemoteError.server(
        url: url(key), status: 416,
        message:
          "the range \(wanted.lowerBound)..<\(wanted.upperBound) lies outside the object, which has \(size) bytes"
      )
    }
    try sink.begin(at: wanted.lowerBound)
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: min(1 << 20, max(1, Int(wanted.count))), alignment: 4096)
    defer { buffer.deallocate() }
    var offset = wanted.lowerBound
    while offset < wanted.upperBound {
      let n = pread(fd, buffer.baseAddress, min(buffer.count, Int(wanted.upperBound - offset)), off_t(offset))
      if n < 0 {
        if errno == EINTR { continue }
        throw RemoteError.transport(url: url(key), message: "cannot read: \(String(cString: strerror(errno)))")
      }
      if n == 0 {
        throw RemoteError.transport(url: url(key), message: "the file ended at byte \(offset) while it was read")
      }
      try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
      progress(Int64(n))
      offset += Int64(n)
    }
  }

  public func delete(_ key: String) throws {
    try FailPoint.beforeWrite()
    if unlink(path(key)) != 0 && errno != ENOENT {
      throw RemoteError.transport(url: url(key), message: "cannot delete: \(String(cString: strerror(errno)))")
    }
  }

  /// Eight hex digits naming this host in temporary names (FNV-1a of its host name).
  static let hostTag: String = {
    var name = [CChar](repeating: 0, count: 256)
    gethostname(&name, name.count - 1)
    var hash: UInt32 = 2_166_136_261
    for byte in String(cString: name).utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 8 - hex.count) + hex
  }()

  /// The pid of this host's process that wrote temporary file `name`; nil for other names and
  /// for other hosts' temporary files.
  static func writer(ofTemporary name: String) -> Int32? {
    guard name.hasPrefix(temporaryPrefix) else { return nil }
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 4 else { return nil }
    let owner = parts[parts.count - 2]
    guard owner.hasPrefix(hostTag + "-") else { return nil }
    return Int32(owner.dropFirst(hostTag.count + 1))
  }

  /// Deletes the temporary files in `directory` left by this host's uploads whose process is
  /// gone (killed or crashed mid-upload).
  static func removeAbandonedTemporaries(in directory: String) {
    TemporaryFiles.removeAbandoned(in: directory) { writer(ofTemporary: $0) }
  }

  /// Copies a file with large reads, creating or truncating `destination`; fsyncs it when
  /// `sync` (an upload must be durable before it gets its name).
  private func copy(from source: String, to destination: String, progress: (Int64) -> Void, sync: Bool = true)
    throws
  {
    let input = open(source, O_RDONLY | O_CLOEXEC)
    if input < 0 { throw SystemError("opening '\(source)'", errno: errno) }
    defer { close(input) }
    let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    if output < 0 { throw SystemError("creating '\(destination)'", errno: errno) }
    defer { close(output) }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    while true {
      let n = Glibc.read(input, buffer.baseAddress, buffer.count)
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("reading '\(source)'", errno: errno)
      }
      if n == 0 { break }
      try FileSystem.writeAll(output, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), path: destination)
      progress(Int64(n))
    }
    if sync && fsync(output) != 0 { throw SystemError("syncing '\(destination)'", errno: errno) }
  }
}
