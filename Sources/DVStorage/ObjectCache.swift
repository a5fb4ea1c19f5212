import CDVSystem
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// How a cached object reaches the workspace (`cache.type`), tried in the configured order.
public enum LinkType: String, CaseIterable, Sendable {
  /// A copy-on-write clone (FICLONE): instant, independent, needs btrfs/XFS.
  case reflink
  /// A hard link to the read-only cache file: instant, no extra space.
  case hardlink
  /// A symbolic link into the cache.
  case symlink
  /// A byte copy.
  case copy
}

/// The local object store: `.pipeline/cache/sha256/ab/<62 hex>`, write-once and read-only.
///
/// Objects are written to an unnamed temporary file (O_TMPFILE; a named one in `.pipeline/tmp`
/// where the filesystem lacks it), hashed while written, made read-only, then linked into place
/// without replacing anything, so a crash never leaves a partial object under an object's name.
/// Durability is batched: callers call `sync()` once before writing a file that references new
/// objects.
public final class ObjectCache: @unchecked Sendable {
  /// `.pipeline/cache`.
  public let root: String
  /// `.pipeline/tmp`, for named temporary files.
  public let tmp: String
  /// `.pipeline/cache/sha256`.
  public let objects: String

  private let createdFanout = Locked<Set<UInt8>>([])
  private let unsupported = Locked<Set<LinkType>>([])
  private let tmpfileUnsupported = Locked(false)
  /// Objects whose bytes this process hashed against their name as they entered the cache (a
  /// verified download). Placing one of them again needs no second read of every byte.
  private let verifiedHere = Locked<Set<ObjectID>>([])
  /// Small objects kept in packs (`.pipeline/cache/packs`).
  let packs: CachePacks

  public init(root: String, tmp: String) {
    self.root = root
    self.tmp = tmp
    objects = root + "/sha256"
    packs = CachePacks(directory: root + "/packs")
  }

  // MARK: - Names

  /// The file of an object.
  public func path(for id: ObjectID) -> String {
    let hex = id.hex
    return objects + "/" + hex.prefix(2) + "/" + hex.dropFirst(2)
  }

  /// True when the object is in the cache, loose or packed.
  public func contains(_ id: ObjectID) -> Bool {
    var st = stat()
    return stat(path(for: id), &st) == 0 || packs.location(of: id) != nil
  }

  /// Records that this process has just checked the cached object `id` against its name (the
  /// bytes were hashed as they were written, moments ago), so `materialize` trusts it without
  /// hashing it again.
  public func noteVerified(_ id: ObjectID) {
    verifiedHere.withLock { _ = $0.insert(id) }
  }

  func isVerifiedHere(_ id: ObjectID) -> Bool {
    verifiedHere.withLock { $0.contains(id) }
  }

  /// The inode of a cached object, when present.
  func objectStat(_ id: ObjectID) -> FileStat? {
    try? FileStat.of(path(for: id))
  }

  /// Creates the 256 fan-out directories up front (at `dv init`), so the first `add` spends no
  /// time allocating directories while it links or writes objects.
  public func prepare() throws {
    for byte in 0...255 {
      let name = String(byte, radix: 16)
      try FileSystem.createDirectory(objects + "/" + (byte < 16 ? "0" + name : name))
    }
    try FileSystem.createDirectory(tmp)
    createdFanout.withLock { $0 = Set(0...255) }
  }

  private func ensureFanout(_ id: ObjectID) throws {
    let first = id.bytes[0]
    if createdFanout.withLock({ $0.contains(first) }) { return }
    let hex = id.hex
    try FileSystem.createDirectory(objects + "/" + hex.prefix(2))
    createdFanout.withLock { _ = $0.insert(first) }
  }

  // MARK: - Writing objects

  /// A file being written into the cache, not yet visible under an object name.
  struct PendingObject {
    var fd: Int32
    /// The named temporary file, when O_TMPFILE was not available.
    var name: String?
  }

  /// A new pending object: an O_TMPFILE inode where the filesystem has them, else a named file
  /// in `tmp`. (Named files were tried for many small objects: renaming them out of the one
  /// `tmp` directory serialises every writer on its lock, 2.5x slower on ext4.)
  func createPending(near directory: String) throws -> PendingObject {
    try FailPoint.beforeWrite()
    if !tmpfileUnsupported.withLock({ $0 }) {
      let fd = dv_open_tmpfile(directory, 0o444)
      if fd >= 0 { return PendingObject(fd: fd, name: nil) }
      if errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL {
        tmpfileUnsupported.withLock { $0 = true }
      } else if errno != ENOENT {
        throw SystemError("creating a temporary file in '\(directory)'", errno: errno)
      } else {
        try FileSystem.createDirectory(directory)
        return try createPending(near: directory)
      }
    }
    try FileSystem.createDirectory(tmp)
    let name = tmp + "/obj.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
    let fd = dv_open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw SystemError("creating '\(name)'", errno: errno) }
    return PendingObject(fd: fd, name: name)
  }

  /// Gives the pending file its object name; false when the object was already there (the
  /// pending copy is dropped: objects are never overwritten).
  @discardableResult
  private func commit(_ pending: PendingObject, as id: ObjectID) throws -> Bool {
    do {
      try ensureFanout(id)
    } catch {
      discard(pending)
      throw error
    }
    return try commit(pending, to: path(for: id), what: "object \(id.short)")
  }

  /// Makes the pending file read-only and gives it the name `final`, never replacing a file
  /// there; false when one was (the pending copy is dropped).
  @discardableResult
  func commit(_ pending: PendingObject, to final: String, what: String) throws -> Bool {
    defer { close(pending.fd) }
    try FailPoint.hit("cache:before-commit")
    try FailPoint.beforeWrite()
    if fchmod(pending.fd, 0o444) != 0 { throw SystemError("making a cache object read-only", errno: errno) }
    let rc: Int32
    if let name = pending.name {
      rc = dv_rename_noreplace(name, final)
      if rc != 0 { unlink(name) }
    } else {
      rc = dv_link_tmpfile(pending.fd, final)
    }
    if rc == 0 { return true }
    if errno == EEXIST { return false }
    throw SystemError("adding \(what) to the cache", errno: errno)
  }

  func discard(_ pending: PendingObject) {
    close(pending.fd)
    if let name = pending.name { unlink(name) }
  }

  /// Stores bytes (a directory manifest) as an object.
  @discardableResult
  public func store(_ bytes: [UInt8]) throws -> ObjectID {
    let id = SHA256Hasher.hash(bytes)
    if contains(id) { return id }
    try ensureFanout(id)
    let pending = try createPending(near: objects + "/" + id.hex.prefix(2))
    do {
      try bytes.withUnsafeBytes { try FileSystem.writeAll(pending.fd, $0, path: "cache object \(id.short)") }
    } catch {
      discard(pending)
      throw error
    }
    try commit(pending, as: id)
    return id
  }

  /// Stores bytes the caller has already hashed to `id` (a verified download) as a loose object;
  /// false when it already was one. Checkout in this process trusts the object without hashing
  /// it again.
  @discardableResult
  public func store(_ bytes: UnsafeRawBufferPointer, verifiedAs id: ObjectID) throws -> Bool {
    if objectStat(id) != nil { return false }
    try ensureFanout(id)
    let pending = try createPending(near: objects + "/" + id.hex.prefix(2))
    do {
      try FileSystem.writeAll(pending.fd, bytes, path: "cache object \(id.short)")
    } catch {
      discard(pending)
      throw error
    }
    let added = try commit(pending, as: id)
    if added { noteVerified(id) }
    return added
  }

  /// What `ingest` did with a workspace file.
  public struct Ingested: Sendable {
    public var id: ObjectID
    public var size: Int64
    /// The strategy that linked the cache and the workspace.
    public var linkType: LinkType
    /// True when the workspace file was replaced by a link to the cache (its stat changed).
    public var replacedWorkspaceFile: Bool
  }

  /// Puts a workspace file's content into the cache with the first strategy of `types` that
  /// works here, reading each byte once. `known` is a hash from the stat cache: when that
  /// object is already cached and nothing needs linking, the file is not read at all.
  public func ingest(
    file path: String, stat: FileStat, known: ObjectID?, types: [LinkType], buffer: IOBuffer,
    progress: ProgressReporter? = nil
  ) throws -> Ingested {
    var lastError: Error?
    for type in types where !unsupported.withLock({ $0.contains(type) }) {
      do {
        if let result = try ingest(path, stat: stat, known: known, type: type, buffer: buffer, progress: progress) {
          return result
        }
        unsupported.withLock { _ = $0.insert(type) }
      } catch {
        lastError = error
        break
      }
    }
    if let lastError { throw lastError }
    throw StorageError.linkFailed(
      path: path, tried: types.map(\.rawValue), reason: "no strategy is supported on this filesystem")
  }

  /// One strategy; nil when the filesystem does not support it.
  private func ingest(
    _ path: String, stat st: FileStat, known: ObjectID?, type: LinkType, buffer: IOBuffer,
    progress: ProgressReporter?
  ) throws -> Ingested? {
    switch type {
    case .copy:
      if let known, contains(known) {
        progress?.advance(items: 0, bytes: st.size)
        return Ingested(id: known, size: st.size, linkType: .copy, replacedWorkspaceFile: false)
      }
      let (id, size) = try copyIn(path, size: st.size, buffer: buffer, progress: progress)
      return Ingested(id: id, size: size, linkType: .copy, replacedWorkspaceFile: false)

    case .reflink:
      if let known, contains(known) {
        progress?.advance(items: 0, bytes: st.size)
        return Ingested(id: known, size: st.size, linkType: .reflink, replacedWorkspaceFile: false)
      }
      let src = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
      if src < 0 { throw SystemError("opening '\(path)'", errno: errno) }
      defer { close(src) }
      let pending = try createPending(near: objects)
      if dv_ficlone(pending.fd, src) != 0 {
        let err = errno
        discard(pending)
        if [EOPNOTSUPP, EXDEV, EINVAL, ENOTTY, EBADF].contains(err) { return nil }
        throw SystemError("cloning '\(path)' into the cache", errno: err)
      }
      // Hash the clone, not the source: the clone is a snapshot, so the name always matches.
      let reader = dv_open("/proc/self/fd/\(pending.fd)", O_RDONLY | O_CLOEXEC, 0)
      if reader < 0 {
        discard(pending)
        throw SystemError("reading back a clone of '\(path)'", errno: errno)
      }
      defer { close(reader) }
      let (id, size) = try SHA256Hasher.hashDescriptor(reader, path: path, buffer: buffer.bytes, progress: progress)
      try commit(pending, as: id)
      return Ingested(id: id, size: size, linkType: .reflink, replacedWorkspaceFile: false)

    case .hardlink, .symlink:
      // Hash through a descriptor kept open, so the inode can be made read-only without a
      // second path lookup; try the link first and look at the cache only when it exists.
      var fd: Int32 = -1
      defer { if fd >= 0 { close(fd) } }
      let id: ObjectID
      if let known {
        id = known
        progress?.advance(items: 0, bytes: st.size)
      } else {
        fd = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
        if fd < 0 { throw SystemError("opening '\(path)'", errno: errno) }
        id = try SHA256Hasher.hashDescriptor(fd, path: path, buffer: buffer.bytes, progress: progress).0
      }
      try ensureFanout(id)
      let object = self.path(for: id)
      // Read-only before the inode gets its object name, not after: a process killed between
      // the link and a chmod would leave a writable cache object that is also a workspace file.
      let original = mode_t(st.mode) & 0o7777
      func setMode(_ mode: mode_t) -> Int32 { fd >= 0 ? fchmod(fd, mode) : chmod(path, mode) }
      if setMode(0o444 | (original & 0o111)) != 0 {
        // Someone else's file cannot become an object (nor be linked, with protected_hardlinks).
        if errno == EPERM { return nil }
        throw SystemError("making '\(path)' read-only", errno: errno)
      }
      try FailPoint.beforeWrite()
      if link(path, object) == 0 {
        // The object is the workspace inode itself: if it changed since it was hashed, the
        // name would lie. Check, and take the link back.
        guard let linked = try FileStat.of(object), linked.size == st.size, linked.mtimeNs == st.mtimeNs,
          linked.inode == st.inode
        else {
          unlink(object)
          _ = setMode(original)
          throw StorageError.changedWhileAdding(path)
        }
        // The workspace file itself became the cache object: nothing to relink.
        if type == .hardlink {
          return Ingested(id: id, size: st.size, linkType: .hardlink, replacedWorkspaceFile: false)
        }
      } else if errno == EEXIST {
        if type == .hardlink, let cached = objectStat(id), cached.inode == st.inode, cached.device == st.device {
          return Ingested(id: id, size: st.size, linkType: .hardlink, replacedWorkspaceFile: false)
        }
        // The object exists apart from this file, which is about to become a link to it.
        do {
          try replace(path, withLinkTo: object, type: type)
        } catch {
          _ = setMode(original)
          throw error
        }
        return Ingested(id: id, size: st.size, linkType: type, replacedWorkspaceFile: true)
      } else {
        // Not linked: the file stays the user's, with its mode.
        let err = errno
        _ = setMode(original)
        if err == EXDEV || err == EPERM || err == EMLINK { return nil }
        throw SystemError("linking '\(path)' into the cache", errno: err)
      }
      // The workspace file becomes a link to the (identical, verified) cache object.
      try replace(path, withLinkTo: object, type: type)
      return Ingested(id: id, size: st.size, linkType: type, replacedWorkspaceFile: true)
    }
  }

  /// Copies a file into the cache, hashing the bytes as they pass.
  private func copyIn(
    _ path: String, size: Int64, buffer: IOBuffer, progress: ProgressReporter?
  ) throws -> (ObjectID, Int64) {
    let src = dv_open(path, O_RDONLY | O_CLOEXEC, 0)
    if src < 0 { throw SystemError("opening '\(path)'", errno: errno) }
    defer { close(src) }
    let bytes = buffer.bytes
    // Small files: read whole, hash, and skip the write when the object is already cached.
    if size < Int64(bytes.count) {
      var filled = 0
      while true {
        let n = Glibc.read(src, bytes.baseAddress! + filled, bytes.count - filled)
        if n < 0 {
          if errno == EINTR { continue }
          throw SystemError("reading '\(path)'", errno: errno)
        }
        if n == 0 { break }
        filled += n
        if filled == bytes.count { break }
      }
      if filled < bytes.count {
        let content = UnsafeRawBufferPointer(rebasing: bytes[0..<filled])
        var hasher = SHA256Hasher()
        hasher.update(content)
        let id = hasher.finalize()
        progress?.advance(items: 0, bytes: Int64(filled))
        if contains(id) { return (id, Int64(filled)) }
        try ensureFanout(id)
        let pending = try createPending(near: objects + "/" + id.hex.prefix(2))
        do {
          try FileSystem.writeAll(pending.fd, content, path: "cache object for '\(path)'")
        } catch {
          discard(pending)
          throw error
        }
        try commit(pending, as: id)
        return (id, Int64(filled))
      }
      // The file grew past the buffer while we read it: stream it from the start.
      lseek(src, 0, SEEK_SET)
    }
    _ = dv_fadvise_sequential(src)
    let pending = try createPending(near: objects)
    var hasher = SHA256Hasher()
    var total: Int64 = 0
    do {
      while true {
        let n = Glibc.read(src, bytes.baseAddress, bytes.count)
        if n < 0 {
          if errno == EINTR { continue }
          throw SystemError("reading '\(path)'", errno: errno)
        }
        if n == 0 { break }
        let chunk = UnsafeRawBufferPointer(rebasing: bytes[0..<n])
        hasher.update(chunk)
        try FileSystem.writeAll(pending.fd, chunk, path: "cache copy of '\(path)'")
        total += Int64(n)
        progress?.advance(items: 0, bytes: Int64(n))
      }
    } catch {
      discard(pending)
      throw error
    }
    let id = hasher.finalize()
    // Large objects start their way to disk now, overlapping the rest of the add; the one
    // syncfs before the pointer is written then waits for little.
    _ = dv_start_writeback(pending.fd)
    try commit(pending, as: id)
    return (id, total)
  }

  // MARK: - Placing objects in the workspace

  /// Atomically replaces (or creates) workspace file `path` with a link to `object`.
  private func replace(_ path: String, withLinkTo object: String, type: LinkType) throws {
    let tmpName = Self.siblingTemp(path)
    try FailPoint.beforeWrite()
    let rc = type == .hardlink ? link(object, tmpName) : symlink(object, tmpName)
    if rc != 0 { throw SystemError("linking '\(path)' to the cache", errno: errno) }
    do {
      try FailPoint.beforeWrite()
    } catch {
      unlink(tmpName)
      throw error
    }
    if rename(tmpName, path) != 0 {
      let err = errno
      unlink(tmpName)
      throw SystemError("replacing '\(path)'", errno: err)
    }
  }

  static func siblingTemp(_ path: String) -> String { TemporaryFiles.sibling(of: path) }

  /// Puts object `id` at workspace path `path` (replacing what is there) with the first strategy
  /// of `types` that works. Copies are verified against the object's name while they are made;
  /// a corrupt object is moved aside and reported, never placed.
  @discardableResult
  public func materialize(
    _ id: ObjectID, at path: String, executable: Bool, types: [LinkType], buffer: IOBuffer,
    progress: ProgressReporter? = nil
  ) throws -> LinkType {
    var object = self.path(for: id)
    let mode: mode_t = executable ? 0o755 : 0o644
    if !FileSystem.exists(object) {
      guard let location = packs.location(of: id) else { throw StorageError.missingObject(id, forPath: path) }
      // A packed object is copied out of its pack; a link needs a file of its own first.
      let firstType = types.first { type in !unsupported.withLock { $0.contains(type) } } ?? .copy
      if firstType == .copy || firstType == .reflink {
        try placePacked(id, at: location, path: path, mode: mode)
        progress?.advance(items: 0, bytes: location.length)
        return .copy
      }
      guard let loose = try looseFile(for: id) else { throw StorageError.missingObject(id, forPath: path) }
      object = loose.path
    }
    for type in types where !unsupported.withLock({ $0.contains(type) }) {
      switch type {
      case .hardlink, .symlink:
        do {
          try replace(path, withLinkTo: object, type: type)
          return type
        } catch let error as SystemError where [EXDEV, EPERM, EMLINK].contains(error.code) {
          unsupported.withLock { _ = $0.insert(type) }
        }
      case .reflink, .copy:
        let src = dv_open(object, O_RDONLY | O_CLOEXEC, 0)
        if src < 0 { throw SystemError("opening cache object \(id.short)", errno: errno) }
        defer { close(src) }
        let tmpName = Self.siblingTemp(path)
        try FailPoint.beforeWrite()
        let dst = dv_open(tmpName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, UInt32(mode))
        if dst < 0 { throw SystemError("creating '\(tmpName)'", errno: errno) }
        var placed = false
        defer {
          close(dst)
          if !placed { unlink(tmpName) }
        }
        if type == .reflink {
          if dv_ficlone(dst, src) != 0 {
            unsupported.withLock { _ = $0.insert(.reflink) }
            continue
          }
          progress?.advance(items: 0, bytes: (try? FileStat.of(descriptor: src, path: object).size) ?? 0)
        } else {
          // Verify first (a corrupt object is never placed), then let the kernel copy:
          // copy_file_range shares extents where the filesystem can and skips a trip through
          // user space where it cannot.
          let size: Int64
          if verifiedHere.withLock({ $0.contains(id) }) {
            size = try FileStat.of(descriptor: src, path: object).size
          } else {
            let (actual, hashedSize) = try SHA256Hasher.hashDescriptor(src, path: object, buffer: buffer.bytes)
            if actual != id {
              let moved = try moveAside(id)
              throw StorageError.corruptObject(id, movedTo: moved)
            }
            size = hashedSize
            lseek(src, 0, SEEK_SET)
          }
          if dv_copy_file_range(src, dst, Int(size)) != Int(size) {
            guard [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) else {
              throw SystemError("copying cache object \(id.short) to '\(path)'", errno: errno)
            }
            lseek(src, 0, SEEK_SET)
            ftruncate(dst, 0)
            lseek(dst, 0, SEEK_SET)
            try copyData(from: src, to: dst, path: tmpName, buffer: buffer)
          }
          progress?.advance(items: 0, bytes: size)
        }
        fchmod(dst, mode)
        try FailPoint.beforeWrite()
        if rename(tmpName, path) != 0 { throw SystemError("writing '\(path)'", errno: errno) }
        placed = true
        return type
      }
    }
    throw StorageError.linkFailed(
      path: path, tried: types.map(\.rawValue), reason: "no strategy is supported on this filesystem")
  }

  /// A plain read/write copy, for filesystems without copy_file_range.
  private func copyData(from src: Int32, to dst: Int32, path: String, buffer: IOBuffer) throws {
    let bytes = buffer.bytes
    while true {
      let n = Glibc.read(src, bytes.baseAddress, bytes.count)
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("reading a cache object for '\(path)'", errno: errno)
      }
      if n == 0 { return }
      try FileSystem.writeAll(dst, UnsafeRawBufferPointer(rebasing: bytes[0..<n]), path: path)
    }
  }

  // MARK: - Reading, verifying, enumerating, removing

  /// Reads a (small) object, verifying its content against its name.
  public func read(_ id: ObjectID) throws -> [UInt8] {
    guard let bytes = try FileSystem.readFileIfPresent(path(for: id)) else {
      if let location = packs.location(of: id) { return try packedBytes(id, at: location) }
      throw StorageError.missingObject(id, forPath: id.short)
    }
    if SHA256Hasher.hash(bytes) != id {
      let moved = try moveAside(id)
      throw StorageError.corruptObject(id, movedTo: moved)
    }
    return bytes
  }

  /// Reads and parses a directory manifest.
  public func manifest(_ id: ObjectID) throws -> TreeManifest {
    try TreeManifest.parse(try read(id), id: id)
  }

  /// Re-hashes an object; true when its content matches its name.
  public func verify(_ id: ObjectID, buffer: IOBuffer, progress: ProgressReporter? = nil) throws -> Bool {
    if objectStat(id) == nil, let location = packs.location(of: id) {
      let bytes = try packs.bytes(at: location, id: id)
      progress?.advance(items: 0, bytes: Int64(bytes.count))
      return bytes.count == Int(location.length) && SHA256Hasher.hash(bytes) == id
    }
    return try SHA256Hasher.hashFile(path(for: id), buffer: buffer.bytes, progress: progress).0 == id
  }

  /// Moves a corrupt object out of the store into `.pipeline/cache/corrupt/`, so it is never
  /// served again; returns where it went.
  public func moveAside(_ id: ObjectID) throws -> String {
    let dir = root + "/corrupt"
    try FileSystem.createDirectory(dir)
    let dest = dir + "/\(id.hex).\(Int(Date().timeIntervalSince1970))"
    try FailPoint.beforeWrite()
    if rename(path(for: id), dest) == 0 { return dest }
    if errno != ENOENT { throw SystemError("moving corrupt object \(id.short) aside", errno: errno) }
    _ = try movePackedAside(id, to: dest)
    return dest
  }

  /// Every object in the store, loose or packed (once), with its size.
  public func allObjects() throws -> [(id: ObjectID, size: Int64)] {
    let loose = try allLooseObjects()
    let packed = packs.all()
    guard !packed.isEmpty else { return loose }
    let looseIDs = Set(loose.map(\.id))
    return loose + packed.filter { !looseIDs.contains($0.id) }
  }

  private func allLooseObjects() throws -> [(id: ObjectID, size: Int64)] {
    guard FileSystem.isDirectory(objects) else { return [] }
    var result: [(ObjectID, Int64)] = []
    for fan in try FileSystem.listDirectory(objects) where fan.name.utf8.count == 2 {
      let dir = objects + "/" + fan.name
      for entry in try FileSystem.listDirectory(dir) {
        guard let id = ObjectID(hex: Array((fan.name + entry.name).utf8)) else { continue }
        let size = (try? FileStat.of(dir + "/" + entry.name, followLinks: false))?.size ?? 0
        result.append((id, size))
      }
    }
    return result
  }

  /// Deletes an object, loose or packed.
  public func remove(_ id: ObjectID) throws {
    try remove([id])
  }

  /// Makes every object written so far durable (one syncfs for the whole batch).
  public func sync() throws {
    try FileSystem.syncFileSystem(containing: FileSystem.isDirectory(objects) ? objects : root)
  }

  /// Removes named temporary files left by interrupted commands. Call only while holding the
  /// workspace's writer lock.
  public func clearTemporaryFiles() {
    guard let entries = try? FileSystem.listDirectory(tmp) else { return }
    for entry in entries where entry.name.hasPrefix("obj.") { unlink(tmp + "/" + entry.name) }
  }
}
