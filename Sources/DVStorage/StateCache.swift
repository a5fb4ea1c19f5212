import DVBasics
import Foundation
import GRDB

/// What the stat cache remembers of one file of a directory: the stat it had when it was hashed.
public struct SnapshotEntry: Sendable, Equatable {
  public var path: String
  public var device: UInt64
  public var inode: UInt64
  public var size: Int64
  public var mtimeNs: Int64
  public var hash: ObjectID

  public init(path: String, stat: FileStat, hash: ObjectID) {
    self.path = path
    device = stat.device
    inode = stat.inode
    size = stat.size
    mtimeNs = stat.mtimeNs
    self.hash = hash
  }

  init(path: String, device: UInt64, inode: UInt64, size: Int64, mtimeNs: Int64, hash: ObjectID) {
    self.path = path
    self.device = device
    self.inode = inode
    self.size = size
    self.mtimeNs = mtimeNs
    self.hash = hash
  }

  /// True when `stat` is the stat this entry was hashed with.
  public func matches(_ stat: FileStat) -> Bool {
    inode == stat.inode && mtimeNs == stat.mtimeNs && size == stat.size && device == stat.device
  }
}

/// What the stat cache remembers of a tracked directory.
public struct TreeState: Sendable {
  /// Digest of every file's (path, device, inode, size, mtime) and the ignore rules, recorded
  /// only when every file was settled; equal fingerprints mean an unchanged directory.
  public var fingerprint: ObjectID?
  /// The directory's hash (manifest id) for that fingerprint.
  public var hash: ObjectID?
  /// True when the manifest and every snapshot entry's object were in the cache when recorded.
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
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
      }
      db = try DatabaseQueue(path: path, configuration: config)
      // The migrator costs a few queries; skip it when the schema is already current.
      let current = try db.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0 }
      if current > Self.schemaVersion {
        throw StorageError.stateDatabase("it was written by a newer dv (schema \(current))")
      }
      if current < Self.schemaVersion {
        try db.writeWithoutTransaction { db in
          _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
        }
        try Self.migrator.migrate(db)
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA user_version = \(Self.schemaVersion)") }
      }
    } catch let error as DatabaseError {
      throw StorageError.stateDatabase(error.message ?? "\(error)")
    }
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
            fingerprint BLOB, hash BLOB, cached INTEGER NOT NULL DEFAULT 0,
            entries BLOB NOT NULL);
          """)
    }
    return migrator
  }

  private func wrap<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as DatabaseError {
      throw StorageError.stateDatabase(error.message ?? "\(error)")
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
            db, sql: "SELECT fingerprint, hash, cached FROM trees WHERE path = ?", arguments: [path.value])
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

  /// The per-file snapshot of a directory, sorted by path bytes.
  public func snapshot(_ path: RelativePath) throws -> [SnapshotEntry] {
    try wrap {
      guard
        let blob = try db.read({ db in
          try Data.fetchOne(db, sql: "SELECT entries FROM trees WHERE path = ?", arguments: [path.value])
        })
      else { return [] }
      return Self.decode(blob) ?? []
    }
  }

  /// Replaces what is remembered of a directory.
  public func record(
    tree path: RelativePath, fingerprint: ObjectID?, hash: ObjectID?, cached: Bool, entries: [SnapshotEntry]
  ) throws {
    let blob = Self.encode(entries)
    try wrap {
      try db.write { db in
        try db.execute(
          sql: "INSERT OR REPLACE INTO trees (path, fingerprint, hash, cached, entries) VALUES (?, ?, ?, ?, ?)",
          arguments: [path.value, fingerprint.map { Data($0.bytes) }, hash.map { Data($0.bytes) }, cached, blob])
      }
    }
  }

  /// Forgets that objects were cached (after gc or fsck removed objects).
  public func forgetCachedFlags() throws {
    try wrap { try db.write { db in try db.execute(sql: "UPDATE trees SET cached = 0") } }
  }

  // MARK: - Snapshot encoding

  static func encode(_ entries: [SnapshotEntry]) -> Data {
    var out = [UInt8]()
    out.reserveCapacity(entries.count * 80 + 8)
    func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    put(UInt32(1))  // format version
    put(UInt32(entries.count))
    for e in entries {
      let path = Array(e.path.utf8)
      put(UInt32(path.count))
      out.append(contentsOf: path)
      put(e.device)
      put(e.inode)
      put(e.size)
      put(e.mtimeNs)
      withUnsafeBytes(of: e.hash.words) { out.append(contentsOf: $0) }
    }
    return Data(out)
  }

  static func decode(_ data: Data) -> [SnapshotEntry]? {
    data.withUnsafeBytes { raw -> [SnapshotEntry]? in
      var offset = 0
      func take<T: FixedWidthInteger>(_: T.Type) -> T? {
        guard offset + MemoryLayout<T>.size <= raw.count else { return nil }
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
      }
      guard take(UInt32.self) == 1, let count = take(UInt32.self) else { return nil }
      var entries: [SnapshotEntry] = []
      entries.reserveCapacity(Int(count))
      for _ in 0..<count {
        guard let length = take(UInt32.self), offset + Int(length) <= raw.count else { return nil }
        let path = String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + Int(length)]), as: UTF8.self)
        offset += Int(length)
        guard let device = take(UInt64.self), let inode = take(UInt64.self), let size = take(Int64.self),
          let mtime = take(Int64.self), offset + 32 <= raw.count
        else { return nil }
        let hash = ObjectID(digest: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 32]))
        offset += 32
        entries.append(SnapshotEntry(path: path, device: device, inode: inode, size: size, mtimeNs: mtime, hash: hash))
      }
      return entries
    }
  }
}
