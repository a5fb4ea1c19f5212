import CDVSystem
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Small objects a fetch read from a remote's packs stay packed in the cache:
/// `.pipeline/cache/packs/<name>.pack` and `<name>.idx`, in the remotes' layout (docs/formats.md
/// §3–§4, §7). One file per pack instead of one per object makes a pull of many small files
/// create half as many files. Packs are named by their SHA-256 and written once; an index may
/// later be rewritten to list fewer objects (fsck moving one aside), never more.
final class CachePacks: @unchecked Sendable {
  /// `.pipeline/cache/packs`.
  let directory: String

  /// Where a packed object lies.
  struct Location: Sendable {
    /// The pack's name.
    var pack: ObjectID
    var offset: Int64
    var length: Int64
  }

  /// The indexes read so far: every packed object, and each pack's objects.
  private struct Loaded {
    var locations: [ObjectID: Location] = [:]
    var members: [ObjectID: [PackLayout.Slot]] = [:]

    mutating func add(_ pack: ObjectID, _ slots: [PackLayout.Slot]) {
      members[pack] = slots
      // The newest pack wins: one written to replace another takes over its objects.
      for slot in slots { locations[slot.id] = Location(pack: pack, offset: slot.offset, length: slot.length) }
    }
  }

  private let loaded = Locked<Loaded?>(nil)

  init(directory: String) {
    self.directory = directory
  }

  func packPath(_ pack: ObjectID) -> String { directory + "/" + pack.hex + ".pack" }
  func indexPath(_ pack: ObjectID) -> String { directory + "/" + pack.hex + ".idx" }

  /// Reads every index once per process; an index that does not decode, or whose pack is
  /// missing, is left out (its objects count as absent and are fetched again).
  private func withLoaded<R>(_ body: (inout Loaded) throws -> R) rethrows -> R {
    try loaded.withLock { state in
      if state == nil { state = Self.read(directory) }
      return try body(&state!)
    }
  }

  private static func read(_ directory: String) -> Loaded {
    var result = Loaded()
    guard let entries = try? FileSystem.listDirectory(directory) else { return result }
    for entry in entries where entry.name.hasSuffix(".idx") {
      guard let pack = ObjectID(hex: entry.name.utf8.dropLast(4)),
        FileSystem.exists(directory + "/" + pack.hex + ".pack"),
        let bytes = try? FileSystem.readFileIfPresent(directory + "/" + entry.name),
        let (slots, _) = try? PackLayout.decodeIndex(bytes, pack: pack)
      else { continue }
      result.add(pack, slots)
    }
    return result
  }

  func location(of id: ObjectID) -> Location? {
    withLoaded { $0.locations[id] }
  }

  /// Every packed object and its size.
  func all() -> [(id: ObjectID, size: Int64)] {
    withLoaded { $0.locations.map { ($0.key, $0.value.length) } }
  }

  /// The packs and what their indexes list.
  func packs() -> [ObjectID: [PackLayout.Slot]] {
    withLoaded { $0.members }
  }

  /// The bytes of a packed object, unverified (a short pack gives fewer, which the caller's
  /// hash check catches).
  func bytes(at location: Location, id: ObjectID) throws -> [UInt8] {
    try FileSystem.readRange(of: packPath(location.pack), offset: location.offset, length: Int(location.length))
  }

  func added(_ pack: ObjectID, _ slots: [PackLayout.Slot]) {
    withLoaded { $0.add(pack, slots) }
  }

  /// Forgets a pack, or keeps only `slots` of it.
  func replace(_ pack: ObjectID, with slots: [PackLayout.Slot]) {
    withLoaded { state in
      for slot in state.members[pack] ?? [] where state.locations[slot.id]?.pack == pack {
        state.locations[slot.id] = nil
      }
      state.members[pack] = nil
      if !slots.isEmpty { state.add(pack, slots) }
    }
  }
}

extension ObjectCache {
  /// Objects of at least this size are stored loose even when they arrive in a batch.
  public static let packedObjectLimit = 1 << 20
  /// Batches smaller than this are stored loose: a pack is worth it for many objects.
  public static let minimumPackedBatch = 16

  /// Stores objects the caller has already hashed to their ids (verified downloads): small ones
  /// together as one pack, the rest loose. Returns how many were new. Checkout in this process
  /// trusts them without hashing them again.
  @discardableResult
  public func store(verified objects: [(id: ObjectID, bytes: [UInt8])]) throws -> Int {
    var seen = Set<ObjectID>()
    var small: [(id: ObjectID, bytes: [UInt8])] = []
    var added = 0
    for object in objects where seen.insert(object.id).inserted && !contains(object.id) {
      if object.bytes.count < Self.packedObjectLimit {
        small.append(object)
      } else if try object.bytes.withUnsafeBytes({ try store($0, verifiedAs: object.id) }) {
        added += 1
      }
    }
    if small.count < Self.minimumPackedBatch {
      for object in small where try object.bytes.withUnsafeBytes({ try store($0, verifiedAs: object.id) }) {
        added += 1
      }
      return added
    }
    small.sort { $0.id < $1.id }
    try writePack(small)
    for object in small { noteVerified(object.id) }
    return added + small.count
  }

  /// Writes `objects` (sorted by id) as a pack and its index: the pack first, so an index never
  /// names a pack that is not there.
  private func writePack(_ objects: [(id: ObjectID, bytes: [UInt8])]) throws {
    // Streamed through a 1 MiB buffer into an unnamed file and hashed on the way: the pack's
    // name is known only at the end, and no second copy of the objects is held in memory.
    let pending = try createPending(near: packs.directory)
    var slots: [PackLayout.Slot] = []
    slots.reserveCapacity(objects.count)
    var hasher = SHA256Hasher()
    var buffer = PackLayout.packMagic
    buffer.reserveCapacity(1 << 20)
    var size = Int64(buffer.count)
    do {
      func flush() throws {
        hasher.update(buffer)
        try buffer.withUnsafeBytes { try FileSystem.writeAll(pending.fd, $0, path: packs.directory + "/(new pack)") }
        buffer.removeAll(keepingCapacity: true)
      }
      for object in objects {
        slots.append(PackLayout.Slot(id: object.id, offset: size, length: Int64(object.bytes.count)))
        if buffer.count + object.bytes.count > buffer.capacity { try flush() }
        buffer += object.bytes
        size += Int64(object.bytes.count)
      }
      try flush()
    } catch {
      discard(pending)
      throw error
    }
    let name = hasher.finalize()
    try commit(pending, to: packs.packPath(name), what: "pack \(name.short)")
    try writeOnce(PackLayout.encodeIndex(slots, pack: name, packSize: size), to: packs.indexPath(name))
    packs.added(name, slots)
  }

  /// Writes a new read-only file under a name it must not replace (an identical one may be there).
  private func writeOnce(_ bytes: [UInt8], to path: String) throws {
    let pending = try createPending(near: packs.directory)
    do {
      try bytes.withUnsafeBytes { try FileSystem.writeAll(pending.fd, $0, path: path) }
    } catch {
      discard(pending)
      throw error
    }
    try commit(pending, to: path, what: "'\(path)'")
  }

  /// The size of a cached object, loose or packed.
  public func size(of id: ObjectID) -> Int64? {
    if let stat = objectStat(id) { return stat.size }
    return packs.location(of: id)?.length
  }

  /// The bytes of a packed object, checked against its id unless this process stored it; a
  /// corrupt one is moved aside.
  func packedBytes(_ id: ObjectID, at location: CachePacks.Location) throws -> [UInt8] {
    let bytes = try packs.bytes(at: location, id: id)
    if !isVerifiedHere(id), SHA256Hasher.hash(bytes) != id {
      let moved = try moveAside(id)
      throw StorageError.corruptObject(id, movedTo: moved)
    }
    return bytes
  }

  /// The loose file of an object and its size, the file written from the object's pack when
  /// it has none yet (a push or a link-type checkout needs a file of its own); nil when the
  /// object is not cached.
  public func looseFile(for id: ObjectID) throws -> (path: String, size: Int64)? {
    if let stat = objectStat(id) { return (path(for: id), stat.size) }
    guard let location = packs.location(of: id) else { return nil }
    let bytes = try packedBytes(id, at: location)
    _ = try bytes.withUnsafeBytes { try store($0, verifiedAs: id) }
    return (path(for: id), Int64(bytes.count))
  }

  /// Writes a packed object to a new workspace file and renames it over `path`.
  func placePacked(_ id: ObjectID, at location: CachePacks.Location, path: String, mode: mode_t) throws {
    let bytes = try packedBytes(id, at: location)
    let tmpName = Self.siblingTemp(path)
    try FailPoint.beforeWrite()
    let fd = dv_open(tmpName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, UInt32(mode))
    if fd < 0 { throw SystemError("creating '\(tmpName)'", errno: errno) }
    var placed = false
    defer {
      close(fd)
      if !placed { unlink(tmpName) }
    }
    try bytes.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: tmpName) }
    fchmod(fd, mode)
    try FailPoint.beforeWrite()
    if rename(tmpName, path) != 0 { throw SystemError("writing '\(path)'", errno: errno) }
    placed = true
  }

  /// Moves a corrupt packed object's bytes to `dest` and drops it from its pack's index.
  func movePackedAside(_ id: ObjectID, to dest: String) throws -> Bool {
    guard let location = packs.location(of: id) else { return false }
    let bytes = (try? packs.bytes(at: location, id: id)) ?? []
    try FileSystem.writeAtomically(bytes, to: dest, mode: 0o444)
    try rewriteIndex(location.pack, keeping: { $0 != id })
    return true
  }

  /// Rewrites a pack's index to list only the objects `keep` accepts; with none left, the index
  /// and then the pack are deleted.
  private func rewriteIndex(_ pack: ObjectID, keeping keep: (ObjectID) -> Bool) throws {
    let slots = (packs.packs()[pack] ?? []).filter { keep($0.id) }
    if slots.isEmpty {
      try FileSystem.removeFile(packs.indexPath(pack))
      try FileSystem.removeFile(packs.packPath(pack))
    } else {
      let size = (try FileStat.of(packs.packPath(pack)))?.size ?? 0
      try FileSystem.writeAtomically(
        PackLayout.encodeIndex(slots, pack: pack, packSize: size), to: packs.indexPath(pack), mode: 0o444)
    }
    packs.replace(pack, with: slots)
  }

  /// Deletes packs no index names (a fetch killed between writing a pack and its index). Call
  /// only while holding the workspace's writer lock.
  public func removeUnindexedPacks() throws {
    guard let entries = try? FileSystem.listDirectory(packs.directory) else { return }
    let names = Set(entries.map(\.name))
    for entry in entries where entry.name.hasSuffix(".pack") {
      if !names.contains(String(entry.name.dropLast(5)) + ".idx") {
        try FileSystem.removeFile(packs.directory + "/" + entry.name)
      }
    }
  }

  /// Deletes objects, loose or packed. A pack none of whose objects is kept is deleted; one
  /// that keeps some is written again with only those (the new pack before the old goes).
  public func remove(_ ids: Set<ObjectID>) throws {
    for id in ids { try FileSystem.removeFile(path(for: id)) }
    for (pack, slots) in packs.packs() where slots.contains(where: { ids.contains($0.id) }) {
      let survivors = slots.filter { !ids.contains($0.id) }
      if !survivors.isEmpty {
        var objects: [(id: ObjectID, bytes: [UInt8])] = []
        for slot in survivors {
          let location = CachePacks.Location(pack: pack, offset: slot.offset, length: slot.length)
          do {
            objects.append((slot.id, try packedBytes(slot.id, at: location)))
          } catch StorageError.corruptObject {
            continue  // moved aside; fsck and fetch deal with it as with any corrupt object
          }
        }
        if !objects.isEmpty {
          try writePack(objects)
          try sync()
        }
      }
      try rewriteIndex(pack, keeping: { _ in false })
    }
  }
}
