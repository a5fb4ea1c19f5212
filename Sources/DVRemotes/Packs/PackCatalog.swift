import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What a remote's packs hold, from their indexes (docs/formats.md §6): a local copy of every
/// index is kept in `directory`, and a refresh lists the remote's index names and downloads only
/// the indexes it has not seen.
public final class PackCatalog: @unchecked Sendable {
  /// Where an object is in a pack.
  public struct Location: Sendable, Equatable {
    public var pack: String
    public var offset: Int64
    public var length: Int64
  }

  private let directory: String?
  private let state = Locked(State())

  private struct State {
    var indexes: [String: PackIndex] = [:]
    var locations: [String: Location] = [:]
    var refreshed = false
  }

  /// `directory` holds the local copies of indexes; nil keeps them in memory only.
  public init(directory: String?) {
    self.directory = directory
  }

  /// The indexes known, by pack name.
  public var indexes: [String: PackIndex] { state.withLock { $0.indexes } }

  /// Where `id` is stored in a pack, if any pack holds it.
  public func location(of id: String) -> Location? { state.withLock { $0.locations[id] } }

  /// Whether the catalog was refreshed from the remote in this process.
  var isRefreshed: Bool { state.withLock { $0.refreshed } }

  /// Brings the catalog up to date with `engine`'s remote: one listing of `packs/`, then the
  /// indexes not copied yet, in parallel. Copies of indexes no longer listed are dropped.
  func refresh(_ engine: TransferEngine) throws {
    var listed = Set<String>()
    try engine.retrying {
      listed.removeAll()
      try engine.remote.list(prefix: PackFormat.prefix) { key, _ in
        if let name = PackFormat.packName(fromIndexKey: key) { listed.insert(name) }
        return true
      }
    }
    var local: [String: PackIndex] = [:]
    if let directory, let entries = try? FileSystem.listDirectory(directory) {
      for entry in entries {
        if let writer = TemporaryFiles.writerOfSibling(entry.name) {
          // A copy being written when its writer was killed.
          if TemporaryFiles.isGone(writer) { unlink(directory + "/" + entry.name) }
          continue
        }
        guard entry.name.hasSuffix(".idx") else { continue }
        let name = String(entry.name.dropLast(4))
        let path = directory + "/" + entry.name
        guard listed.contains(name) else {
          unlink(path)
          continue
        }
        // A damaged copy is only a cache: it is dropped and downloaded again.
        if let bytes = try? FileSystem.readFileIfPresent(path),
          let index = try? PackIndex.decode(bytes, name: name, url: path)
        {
          local[name] = index
        } else {
          unlink(path)
        }
      }
    }
    let todo = listed.subtracting(local.keys).sorted()
    let fetched = Locked<[String: PackIndex]>([:])
    try parallelForEach(todo.count, workers: engine.jobs) { i in
      let name = todo[i]
      let key = PackFormat.indexKey(name)
      let sink = MemoryObjectSink()
      // Decoded inside the retries: an index damaged on the way is read again (its checksum
      // tells); one damaged on the remote still fails once the retries are used up.
      let index: PackIndex = try engine.retrying {
        try engine.remote.read(key, range: nil, into: sink, progress: { _ in })
        return try PackIndex.decode(sink.bytes, name: name, url: engine.remote.displayURL + "/" + key)
      }
      try self.saveCopy(sink.bytes, name: name)
      fetched.withLock { $0[name] = index }
    }
    local.merge(fetched.withLock { $0 }) { a, _ in a }
    state.withLock { state in
      state.indexes = local
      state.locations.removeAll(keepingCapacity: true)
      for name in local.keys.sorted() {
        for entry in local[name]!.entries where state.locations[entry.id] == nil {
          state.locations[entry.id] = Location(pack: name, offset: entry.offset, length: entry.length)
        }
      }
      state.refreshed = true
    }
  }

  /// Records a pack this process uploaded (its index is on the remote).
  func add(_ index: PackIndex, bytes: [UInt8]) throws {
    try saveCopy(bytes, name: index.name)
    state.withLock { state in
      state.indexes[index.name] = index
      for entry in index.entries where state.locations[entry.id] == nil {
        state.locations[entry.id] = Location(pack: index.name, offset: entry.offset, length: entry.length)
      }
    }
  }

  /// Forgets a pack deleted from the remote.
  public func remove(_ name: String) {
    if let directory { unlink(directory + "/" + name + ".idx") }
    state.withLock { state in
      guard let index = state.indexes.removeValue(forKey: name) else { return }
      let others = state.indexes.sorted { $0.key < $1.key }
      for entry in index.entries where state.locations[entry.id]?.pack == name {
        state.locations[entry.id] = nil
        // Another pack may hold the same object.
        for (other, otherIndex) in others {
          if let found = otherIndex.entry(for: entry.id) {
            state.locations[entry.id] = Location(pack: other, offset: found.offset, length: found.length)
            break
          }
        }
      }
    }
  }

  private func saveCopy(_ bytes: [UInt8], name: String) throws {
    guard let directory else { return }
    try FileSystem.createDirectory(directory)
    try FileSystem.writeAtomically(bytes, to: directory + "/" + name + ".idx")
  }
}

extension PackIndex {
  /// The entry of `id` (binary search; entries are sorted by id).
  public func entry(for id: String) -> Entry? {
    var low = 0
    var high = entries.count
    while low < high {
      let mid = (low + high) / 2
      if entries[mid].id < id { low = mid + 1 } else { high = mid }
    }
    return low < entries.count && entries[low].id == id ? entries[low] : nil
  }
}

/// Collects a (small) object read whole into memory.
final class MemoryObjectSink: ObjectSink {
  private(set) var bytes: [UInt8] = []

  func begin(at offset: Int64) throws { bytes.removeAll(keepingCapacity: true) }

  func write(_ chunk: UnsafeRawBufferPointer) throws {
    guard bytes.count + chunk.count <= 256 << 20 else {
      throw SystemError("reading a pack index larger than 256 MiB", errno: EFBIG)
    }
    bytes.append(contentsOf: chunk)
  }
}
