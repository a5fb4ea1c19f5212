import DVBasics
import Foundation
import GRDB

/// What the stat cache remembers of one file of a directory: the stat it had when it was hashed.
public struct SnapshotEntry: Sendable, Equatable {
  public var device: UInt64
  public var inode: UInt64
  public var size: Int64
  public var mtimeNs: Int64
  public var hash: ObjectID
  /// True when `dv add` put this object into the cache (status only hashes).
  public var cached: Bool

  public init(stat: FileStat, hash: ObjectID, cached: Bool) {
    device = stat.device
    inode = stat.inode
    size = stat.size
    mtimeNs = stat.mtimeNs
    self.hash = hash
    self.cached = cached
  }

  init(device: UInt64, inode: UInt64, size: Int64, mtimeNs: Int64, hash: ObjectID, cached: Bool) {
    self.device = device
    self.inode = inode
    self.size = size
    self.mtimeNs = mtimeNs
    self.hash = hash
    self.cached = cached
  }

  /// True when `stat` is the stat this entry was hashed with.
  public func matches(_ stat: FileStat) -> Bool {
    inode == stat.inode && mtimeNs == stat.mtimeNs && size == stat.size && device == stat.device
  }

  static func < (a: SnapshotEntry, b: SnapshotEntry) -> Bool {
    a.device != b.device ? a.device < b.device : a.inode < b.inode
  }
}

/// The remembered files of a directory: a base of fixed-size records sorted by (device, inode),
/// searched in place without decoding, plus the few entries recorded since the base was written.
public struct TreeSnapshot: Sendable {
  static let recordSize = 64
  static let headerSize = 8

  let base: [UInt8]
  var delta: [UInt64: [SnapshotEntry]] = [:]
  /// False when objects may have been removed since the snapshot was written (gc, fsck): then
  /// no entry counts as cached.
  var cachedFlagsValid = true
  /// The cache epoch when this snapshot was read; a record made from it carries this epoch, so
  /// a gc that runs meanwhile (status takes no lock) voids the flags it would write.
  var epoch: Int64 = 0

  init(base: [UInt8]) {
    let valid =
      base.count >= Self.headerSize
      && base.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } == UInt32(2).littleEndian
      && (base.count - Self.headerSize) % Self.recordSize == 0
    self.base = valid ? base : []
  }

  /// Number of records in the base.
  var baseCount: Int { base.isEmpty ? 0 : (base.count - Self.headerSize) / Self.recordSize }

  /// The remembered hash of a file with exactly this stat.
  public func hash(for stat: FileStat) -> ObjectID? { entry(for: stat)?.hash }

  /// The remembered entry of a file with exactly this stat.
  public func entry(for stat: FileStat) -> SnapshotEntry? {
    var found: SnapshotEntry?
    if let candidates = delta[stat.inode], let e = candidates.first(where: { $0.matches(stat) }) {
      found = e
    } else if let e = baseEntry(device: stat.device, inode: stat.inode), e.matches(stat) {
      found = e
    }
    if !cachedFlagsValid { found?.cached = false }
    return found
  }

  private func baseEntry(device: UInt64, inode: UInt64) -> SnapshotEntry? {
    base.withUnsafeBytes { raw -> SnapshotEntry? in
      var low = 0
      var high = baseCount
      while low < high {
        let mid = (low + high) / 2
        let offset = Self.headerSize + mid * Self.recordSize
        let d = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let i = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        if d == device && i == inode {
          let sizeAndFlag = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
          return SnapshotEntry(
            device: d, inode: i, size: Int64(bitPattern: sizeAndFlag & ~Self.cachedBit),
            mtimeNs: Int64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 24, as: Int64.self)),
            hash: ObjectID(digest: UnsafeRawBufferPointer(rebasing: raw[(offset + 32)..<(offset + 64)])),
            cached: sizeAndFlag & Self.cachedBit != 0)
        }
        if d < device || (d == device && i < inode) { low = mid + 1 } else { high = mid }
      }
      return nil
    }
  }

  /// Sizes are below 2^63, so the top bit of the size field carries the entry's cached flag.
  static let cachedBit: UInt64 = 1 << 63

  /// The base format: "version 2, count", then records sorted by (device, inode): device, inode,
  /// size (top bit: cached), mtime, hash.
  static func encode(_ entries: [SnapshotEntry]) -> [UInt8] {
    let sorted = entries.sorted(by: <)
    var out = [UInt8](repeating: 0, count: headerSize + sorted.count * recordSize)
    out.withUnsafeMutableBytes { raw in
      raw.storeBytes(of: UInt32(2).littleEndian, toByteOffset: 0, as: UInt32.self)
      raw.storeBytes(of: UInt32(sorted.count).littleEndian, toByteOffset: 4, as: UInt32.self)
      for (n, e) in sorted.enumerated() {
        let offset = headerSize + n * recordSize
        raw.storeBytes(of: e.device.littleEndian, toByteOffset: offset, as: UInt64.self)
        raw.storeBytes(of: e.inode.littleEndian, toByteOffset: offset + 8, as: UInt64.self)
        let sizeAndFlag = UInt64(e.size) | (e.cached ? cachedBit : 0)
        raw.storeBytes(of: sizeAndFlag.littleEndian, toByteOffset: offset + 16, as: UInt64.self)
        raw.storeBytes(of: e.mtimeNs.littleEndian, toByteOffset: offset + 24, as: Int64.self)
        withUnsafeBytes(of: e.hash.words) { h in
          UnsafeMutableRawBufferPointer(rebasing: raw[(offset + 32)..<(offset + 64)]).copyMemory(from: h)
        }
      }
    }
    return out
  }
}

/// What the stat cache remembers of a tracked directory.
public struct TreeState: Sendable {
  /// Digest of every file's (path, device, inode, size, mtime) and the ignore rules, recorded
  /// only when every file was settled; equal fingerprints mean an unchanged directory.
  public var fingerprint: ObjectID?
  /// The directory's hash (manifest id) for that fingerprint.
  public var hash: ObjectID?
  /// True when every snapshot entry's object was in the cache when recorded (by `add`), and
  /// nothing has left the cache since.
  public var cached: Bool
}

/// The stat cache `.pipeline/state.db`: (device, inode, size, mtime_ns) -> hash, so an unchanged
/// file is never hashed twice.
///
/// It never returns a stale hash: an entry is used only when all four stat values match, and a
/// file is recorded only when its mtime lies in a clock tick before the moment its content was
/// read (a change later in the same tick could otherwise keep the same mtime). Directories keep
/// a snapshot of their files' entries, read in one row, plus a fingerprint that answers "is this
/// directory unchanged?" without per-file lookups.
public final class StateCache: @unchecked Sendable {
  private let db: DatabaseQueue

  /// Opens (creating when needed) the database at `path`.
  public init(path: String) throws {
    do {
      var config = Configuration()
      config.busyMode = .timeout(5)
      config.prepareDatabase { db in
        // Snapshots are megabyte blobs: read them through mmap rather than page by page.
        try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 1073741824")
      }
      db = try DatabaseQueue(path: path, configuration: config)
      // The migrator costs a few queries; skip it when the schema is already current.
      let current = try db.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
      if current > Self.schemaVersion {
        throw StorageError.stateDatabase("it was written by a newer dv (schema \(current))")
      }
      if current < Self.schemaVersion {
        try db.writeWithoutTransaction { db in
          // Large pages: a 100,000-file snapshot spans 100 pages instead of 1,600.
          if current == 0 { try db.execute(sql: "PRAGMA page_size = 65536; VACUUM") }
          _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        }
        try Self.migrator.migrate(db)
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = \(Self.schemaVersion)") }
      }
    } catch let error as DatabaseError {
      throw Self.failure(error)
    }
  }

  /// The error to report for a database error: a full disk as the `SystemError` it is (deleting
  /// the database would not help), anything else as `StorageError.stateDatabase`.
  static func failure(_ error: DatabaseError) -> Error {
    if error.resultCode == .SQLITE_FULL {
      return SystemError("writing the stat cache .pipeline/state.db", errno: ENOSPC)
    }
    return StorageError.stateDatabase(error.message ?? "\(error)")
  }

  /// The schema version this dv writes (SQLite's user_version, set after the migrations).
  static let schemaVersion = 1

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("1-files-and-trees") { db in
      try db.execute(
        sql: """
          CREATE TABLE files (
            device INTEGER NOT NULL, inode INTEGER NOT NULL,
            size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash BLOB NOT NULL,
            PRIMARY KEY (device, inode)) WITHOUT ROWID;
          CREATE TABLE trees (
            path TEXT PRIMARY KEY NOT NULL,
            fingerprint BLOB, hash BLOB, cached INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0);
          CREATE TABLE tree_snapshots (path TEXT PRIMARY KEY NOT NULL, entries BLOB NOT NULL);
          CREATE TABLE tree_entries (
            path TEXT NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL,
            size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash BLOB NOT NULL, cached INTEGER NOT NULL,
            PRIMARY KEY (path, device, inode)) WITHOUT ROWID;
          -- Bumped when objects leave the cache (gc, fsck): cached flags of older epochs are void.
          CREATE TABLE cache_epoch (value INTEGER NOT NULL);
          INSERT INTO cache_epoch VALUES (0);
          """)
    }
    return migrator
  }

  private func wrap<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as DatabaseError {
      throw Self.failure(error)
    }
  }

  // MARK: - Single files

  /// The remembered hash of a file with exactly this stat.
  public func hash(for stat: FileStat) throws -> ObjectID? {
    try wrap {
      try db.read { db in
        guard
          let row = try Row.fetchOne(
            db, sql: "SELECT size, mtime_ns, hash FROM files WHERE device = ? AND inode = ?",
            arguments: [Int64(bitPattern: stat.device), Int64(bitPattern: stat.inode)])
        else { return nil }
        let size: Int64 = row[0]
        let mtime: Int64 = row[1]
        let hash: Data = row[2]
        guard size == stat.size, mtime == stat.mtimeNs, hash.count == 32 else { return nil }
        return ObjectID(bytes: Array(hash))
      }
    }
  }

  /// Remembers files hashed from content read at or after `readStartNs`; unsettled files (changed
  /// in that tick) are skipped.
  public func record(files: [(FileStat, ObjectID)], readStartNs: Int64) throws {
    let settled = files.filter { FileClock.isSettled(mtimeNs: $0.0.mtimeNs, readStartNs: readStartNs) }
    if settled.isEmpty { return }
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        let statement = try db.makeStatement(
          sql: "INSERT OR REPLACE INTO files (device, inode, size, mtime_ns, hash) VALUES (?, ?, ?, ?, ?)")
        for (stat, id) in settled {
          try statement.execute(arguments: [
            Int64(bitPattern: stat.device), Int64(bitPattern: stat.inode), stat.size, stat.mtimeNs,
            Data(id.bytes),
          ])
        }
      }
    }
  }

  // MARK: - Directories

  /// The fingerprint and hash remembered for a directory, without its snapshot.
  public func tree(_ path: RelativePath) throws -> TreeState? {
    try wrap {
      try db.read { db in
        guard
          let row = try Row.fetchOne(
            db,
            sql: """
              SELECT fingerprint, hash, cached AND epoch = (SELECT value FROM cache_epoch) FROM trees WHERE path = ?
              """, arguments: [path.value])
        else { return nil }
        let fingerprint: Data? = row[0]
        let hash: Data? = row[1]
        let cached: Bool = row[2]
        return TreeState(
          fingerprint: fingerprint.map { ObjectID(bytes: Array($0)) }, hash: hash.map { ObjectID(bytes: Array($0)) },
          cached: cached)
      }
    }
  }

  /// The remembered files of a directory.
  public func snapshot(_ path: RelativePath) throws -> TreeSnapshot {
    try wrap {
      try db.read { db in
        let blob = try Data.fetchOne(
          db, sql: "SELECT entries FROM tree_snapshots WHERE path = ?", arguments: [path.value])
        var snapshot = TreeSnapshot(base: blob.map { [UInt8]($0) } ?? [])
        snapshot.epoch = try Int64.fetchOne(db, sql: "SELECT value FROM cache_epoch") ?? 0
        snapshot.cachedFlagsValid =
          try Int64.fetchOne(db, sql: "SELECT epoch FROM trees WHERE path = ?", arguments: [path.value])
          == snapshot.epoch
        let rows = try Row.fetchCursor(
          db, sql: "SELECT device, inode, size, mtime_ns, hash, cached FROM tree_entries WHERE path = ?",
          arguments: [path.value])
        while let row = try rows.next() {
          let hash: Data = row[4]
          guard hash.count == 32 else { continue }
          let entry = SnapshotEntry(
            device: UInt64(bitPattern: row[0]), inode: UInt64(bitPattern: row[1]), size: row[2], mtimeNs: row[3],
            hash: ObjectID(bytes: [UInt8](hash)), cached: row[5])
          snapshot.delta[entry.inode, default: []].append(entry)
        }
        return snapshot
      }
    }
  }

  /// Replaces what is remembered of a directory. `entries` are the settled files now; when few of
  /// them differ from `previous`, only those are written, else the base is rewritten.
  public func record(
    tree path: RelativePath, fingerprint: ObjectID?, hash: ObjectID?, entries: [SnapshotEntry],
    previous: TreeSnapshot
  ) throws {
    let fresh = entries.filter { e in
      previous.entry(for: FileStat(device: e.device, inode: e.inode, size: e.size, mtimeNs: e.mtimeNs)) != e
    }
    let rewrite =
      previous.baseCount == 0 || !previous.cachedFlagsValid
      || fresh.count + previous.delta.count > max(256, entries.count / 8)
    let blob = rewrite ? Data(TreeSnapshot.encode(entries)) : nil
    let allCached = entries.allSatisfy(\.cached)
    try wrap {
      try FailPoint.beforeWrite()
      try db.write { db in
        try db.execute(
          sql: "INSERT OR REPLACE INTO trees (path, fingerprint, hash, cached, epoch) VALUES (?, ?, ?, ?, ?)",
          arguments: [
            path.value, fingerprint.map { Data($0.bytes) }, hash.map { Data($0.bytes) }, allCached, previous.epoch,
          ])
        if let blob {
          try db.execute(sql: "DELETE FROM tree_entries WHERE path = ?", arguments: [path.value])
          try db.execute(
            sql: "INSERT OR REPLACE INTO tree_snapshots (path, entries) VALUES (?, ?)", arguments: [path.value, blob])
        } else {
          let statement = try db.makeStatement(
            sql: """
              INSERT OR REPLACE INTO tree_entries (path, device, inode, size, mtime_ns, hash, cached)
              VALUES (?, ?, ?, ?, ?, ?, ?)
              """)
          for e in fresh {
            try statement.execute(arguments: [
              path.value, Int64(bitPattern: e.device), Int64(bitPattern: e.inode), e.size, e.mtimeNs,
              Data(e.hash.bytes),
              e.cached,
            ])
          }
        }
      }
    }
  }

  /// Forgets that objects were cached (after gc or fsck removed objects): hashes stay valid,
  /// but the next `add` checks the cache for every file again.
  public func forgetCachedFlags() throws {
    try FailPoint.beforeWrite()
    try wrap { try db.write { db in try db.execute(sql: "UPDATE cache_epoch SET value = value + 1") } }
  }
}
