import COpenSSL
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// One object to upload: its id (64 lowercase hex) and the local file holding it.
public struct UploadItem: Sendable, Equatable {
  public var id: String
  public var path: String
  public var size: Int64

  public init(id: String, path: String, size: Int64) {
    self.id = id
    self.path = path
    self.size = size
  }
}

/// Takes verified objects read from a pack (hex id, bytes), a segment's worth at a time.
public typealias ObjectBatchStore = (_ objects: [(id: String, bytes: [UInt8])]) throws -> Void

/// What a transfer did.
public struct TransferSummary: Sendable {
  /// Objects transferred.
  public var transferred = 0
  /// Bytes transferred.
  public var bytes: Int64 = 0
  /// Objects that were already where they were going.
  public var alreadyThere = 0
  /// Objects that failed, with the last error of each (sorted by id).
  public var failed: [(id: String, error: Error)] = []

  public init() {}

  /// Adds another summary's counts to this one.
  public mutating func merge(_ other: TransferSummary) {
    transferred += other.transferred
    bytes += other.bytes
    alreadyThere += other.alreadyThere
    failed += other.failed
  }
}

/// Moves objects between the local cache and a remote (docs/architecture.md §8): plans what is missing,
/// transfers in parallel with retries, verifies every download before it is handed on.
///
/// The engine knows objects by id and files by path; the workspace supplies the cache side
/// (where an object lives, how a verified download enters the cache), so nothing here depends
/// on the cache's layout.
public final class TransferEngine: @unchecked Sendable {
  /// Where objects live under a remote's root.
  public static let objectsPrefix = "sha256/"
  /// Where run records live under a remote's root.
  public static let runsPrefix = "runs/"
  /// With more ids than this, one listing is cheaper than an existence check each.
  public static let listingThreshold = 64

  public let remote: Remote
  /// Parallel transfers.
  public let jobs: Int
  /// Retries of a failed transfer (transient failures and corrupt downloads), with backoff.
  public let retry: RetryPolicy
  /// Receives objects and bytes as they go.
  public let progress: ProgressReporter
  /// Which objects a push packs (docs/formats.md §2).
  public let packPolicy: PackPolicy
  /// What the remote's packs hold; nil when packs are not used at all.
  public let catalog: PackCatalog?
  /// Where packs are built before they are uploaded.
  let workDirectory: String?

  /// With `workDirectory` (where packs are built) and `packIndexDirectory` (the local copy of
  /// the remote's pack indexes), pushes pack small objects and every read consults the packs;
  /// without them the engine moves loose objects only.
  public init(
    remote: Remote, jobs: Int, retry: RetryPolicy = RetryPolicy(retries: 2, baseDelay: 0.2),
    progress: ProgressReporter = SilentProgress(), workDirectory: String? = nil, packIndexDirectory: String? = nil,
    packPolicy: PackPolicy = PackPolicy()
  ) {
    self.remote = remote
    self.jobs = max(1, jobs)
    self.retry = retry
    self.progress = progress
    self.workDirectory = workDirectory
    let packing = workDirectory != nil && packIndexDirectory != nil
    catalog = packing ? PackCatalog(directory: packIndexDirectory) : nil
    self.packPolicy = packing ? packPolicy : .never
  }

  /// The default parallelism: four transfers per core for network remotes (they wait on the
  /// network), one per core for directories.
  public static func defaultJobs(network: Bool) -> Int {
    network ? 4 * activeProcessorCount : activeProcessorCount
  }

  /// The key of an object: `sha256/ab/<62 hex>` (docs/architecture.md §3).
  public static func key(ofObject id: String) -> String {
    objectsPrefix + id.prefix(2) + "/" + id.dropFirst(2)
  }

  /// The object id a key names, or nil when the key is not an object's (64 lowercase hex after
  /// the prefix, split 2/62): listings are validated before their keys are used.
  public static func objectID(fromKey key: String) -> String? {
    guard key.hasPrefix(objectsPrefix) else { return nil }
    let rest = key.utf8.dropFirst(objectsPrefix.utf8.count)
    guard rest.count == 65, rest[rest.index(rest.startIndex, offsetBy: 2)] == UInt8(ascii: "/") else { return nil }
    let hex = rest.filter { $0 != UInt8(ascii: "/") }
    return isObjectID(hex) ? String(decoding: hex, as: UTF8.self) : nil
  }

  /// True for 64 lowercase hex digits.
  public static func isObjectID<C: Collection>(_ text: C) -> Bool where C.Element == UInt8 {
    text.count == 64
      && text.allSatisfy {
        ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
      }
  }

  // MARK: - Planning

  /// Every object on the remote with its size, from one listing; keys that are not object
  /// names are skipped.
  public func remoteObjects() throws -> [String: Int64] {
    var found: [String: Int64] = [:]
    try remote.list(prefix: Self.objectsPrefix) { key, size in
      if let id = Self.objectID(fromKey: key) { found[id] = size }
      return true
    }
    return found
  }

  /// The ids of `ids` that the remote lacks: a listing when there are many, existence checks in
  /// parallel when there are few.
  public func missingOnRemote(_ ids: [String]) throws -> Set<String> {
    var unique = Array(Set(ids))
    if let catalog = try packCatalog() { unique.removeAll { catalog.location(of: $0) != nil } }
    if unique.count > Self.listingThreshold {
      let present = try remoteObjects()
      return Set(unique.filter { present[$0] == nil })
    }
    let missing = Locked<Set<String>>([])
    try parallelForEach(unique.count, workers: jobs) { i in
      if try !retrying({ try self.remote.exists(Self.key(ofObject: unique[i])) }) {
        missing.withLock { _ = $0.insert(unique[i]) }
      }
    }
    return missing.withLock { $0 }
  }

  // MARK: - Transfers

  /// Uploads `items` the remote lacks (`missing`: the ids known to be absent; nil checks first).
  public func upload(_ items: [UploadItem], missing known: Set<String>? = nil) throws -> TransferSummary {
    var unique: [UploadItem] = []
    var seen = Set<String>()
    for item in items where seen.insert(item.id).inserted { unique.append(item) }
    let missing = try known ?? missingOnRemote(unique.map(\.id))
    let todo = unique.filter { missing.contains($0.id) }
    var summary = TransferSummary()
    summary.alreadyThere = unique.count - todo.count
    guard !todo.isEmpty else { return summary }
    progress.begin("pushing", totalItems: todo.count, totalBytes: todo.reduce(0) { $0 + $1.size })
    defer { progress.end() }
    let small = todo.filter { packPolicy.packs($0) }
    let packs = small.count >= packPolicy.minimumObjects ? packPolicy.groups(small, jobs: jobs) : []
    let packed = Set(packs.joined().map(\.id))
    let loose = todo.filter { !packed.contains($0.id) }
    let results = Locked(summary)
    try parallelForEach(packs.count + loose.count, workers: jobs) { i in
      if i < packs.count {
        self.uploadPack(packs[i], results: results)
        return
      }
      let item = loose[i - packs.count]
      do {
        try self.retrying {
          // Multipart uploads report parts from several threads.
          let sent = Locked<Int64>(0)
          do {
            try self.remote.upload(
              from: item.path, size: item.size, sha256: Self.digest(hex: item.id), to: Self.key(ofObject: item.id)
            ) { n in
              sent.withLock { $0 += n }
              self.progress.advance(items: 0, bytes: n)
            }
          } catch {
            // The next attempt starts over: take back what this one reported.
            self.progress.advance(items: 0, bytes: -sent.withLock { $0 })
            throw error
          }
        }
        progress.advance(items: 1, bytes: 0)
        results.withLock {
          $0.transferred += 1
          $0.bytes += item.size
        }
      } catch {
        results.withLock { $0.failed.append((item.id, error)) }
      }
    }
    return results.withLock {
      $0.failed.sort { $0.id < $1.id }; return $0
    }
  }

  /// Downloads `ids` into temporary files under `temporaryDirectory`, verifies each against its
  /// id, and hands verified files to `commit` (which moves them into the cache). A file whose
  /// bytes do not match is deleted, never committed, and is a `RemoteError.integrity` failure
  /// after the retries. Ids the remote lacks fail with `RemoteError.notFound`.
  ///
  /// Objects the remote's packs hold are read from the packs (docs/formats.md §5) and handed to
  /// `store` as verified bytes, a segment's objects together, or, without `store`, through
  /// temporary files to `commit`.
  public func download(
    _ ids: [String], into temporaryDirectory: String, commit: @escaping (_ id: String, _ path: String) throws -> Void,
    store: ObjectBatchStore? = nil
  ) throws -> TransferSummary {
    let unique = Array(Set(ids)).sorted()
    guard !unique.isEmpty else { return TransferSummary() }
    try FileSystem.createDirectory(temporaryDirectory)
    progress.begin("pulling", totalItems: unique.count, totalBytes: nil)
    defer { progress.end() }
    var loose = unique
    var segments: [PackSegment] = []
    if let catalog = try packCatalog() {
      var wanted: [String: [PackIndex.Entry]] = [:]
      loose = []
      for id in unique {
        if let at = catalog.location(of: id) {
          wanted[at.pack, default: []].append(PackIndex.Entry(id: id, offset: at.offset, length: at.length))
        } else {
          loose.append(id)
        }
      }
      for pack in wanted.keys.sorted() { segments += PackSegment.plan(pack: pack, wanted: wanted[pack]!) }
      // The largest reads first, so the last to finish are short ones.
      segments.sort { $0.range.count > $1.range.count }
    }
    let store = store ?? { objects in try Self.commitThroughFiles(objects, temporaryDirectory, commit) }
    let results = Locked(TransferSummary())
    let unfinished = Locked<[(pack: String, entry: PackIndex.Entry, error: Error?)]>([])
    try parallelForEach(segments.count + loose.count, workers: jobs, makeState: { IOScratch() }) { i, scratch in
      if i < segments.count {
        let left = self.downloadSegment(segments[i], store: store, results: results)
        unfinished.withLock { $0 += left }
        return
      }
      let id = loose[i - segments.count]
      let key = Self.key(ofObject: id)
      let temporary =
        temporaryDirectory + "/" + Self.downloadPrefix + "\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
      defer { unlink(temporary) }
      do {
        let size: Int64 = try self.retrying {
          let received = Locked<Int64>(0)
          do {
            try self.remote.download(key, to: temporary) { n in
              received.withLock { $0 += n }
              self.progress.advance(items: 0, bytes: n)
            }
            let (actual, size) = try Self.sha256(ofFile: temporary, buffer: scratch.buffer)
            guard actual == id else {
              throw RemoteError.integrity(
                url: self.remote.displayURL + "/" + key, expected: "sha256:" + id, actual: "sha256:" + actual)
            }
            return size
          } catch {
            self.progress.advance(items: 0, bytes: -received.withLock { $0 })
            throw error
          }
        }
        try FailPoint.hit("transfer:before-commit")
        try commit(id, temporary)
        progress.advance(items: 1, bytes: 0)
        results.withLock {
          $0.transferred += 1
          $0.bytes += size
        }
      } catch {
        results.withLock { $0.failed.append((id, error)) }
      }
    }
    let retries = unfinished.withLock { $0 }
    try parallelForEach(retries.count, workers: jobs) { i in
      self.downloadPackedObject(
        retries[i].pack, retries[i].entry, after: retries[i].error, store: store, results: results)
    }
    return results.withLock {
      $0.failed.sort { $0.id < $1.id }; return $0
    }
  }

  /// The name prefix of partial downloads; `removePartialDownloads` deletes leftovers.
  public static let downloadPrefix = "download."

  /// Deletes partial downloads an interrupted transfer left in `temporaryDirectory`. Call only
  /// while holding the workspace's writer lock.
  public static func removePartialDownloads(in temporaryDirectory: String) {
    guard let entries = try? FileSystem.listDirectory(temporaryDirectory) else { return }
    for entry in entries where entry.name.hasPrefix(downloadPrefix) { unlink(temporaryDirectory + "/" + entry.name) }
  }

  // MARK: - Retries

  /// Calls `body` again after transient failures (transport, 5xx/429, corrupt bytes) with
  /// backoff; other errors (not found, access denied, bad settings) are final at once.
  package func retrying<T>(_ body: () throws -> T) throws -> T {
    var attempt = 1
    while true {
      do {
        return try body()
      } catch let error where Self.isTransient(error) && attempt <= retry.retries {
        retry.sleep(retry.delay(beforeRetry: attempt, retryAfter: nil))
        attempt += 1
      }
    }
  }

  /// Whether another attempt may succeed: transport failures, retryable statuses, and bytes
  /// that failed their check (a corrupt object, a pack index that does not decode), which a
  /// damaged transfer explains as well as damage at rest.
  static func isTransient(_ error: Error) -> Bool {
    if case .invalidIndex? = error as? PackError { return true }
    switch error as? RemoteError {
    case .transport, .integrity: return true
    case .server(_, let status, _): return RetryPolicy.isRetryable(status: status)
    default: return false
    }
  }

  // MARK: - Hashing

  /// A reusable read buffer per worker.
  final class IOScratch {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    deinit { buffer.deallocate() }
  }

  /// The 32 digest bytes of an id.
  static func digest(hex: String) -> [UInt8]? {
    let utf8 = Array(hex.utf8)
    guard isObjectID(utf8) else { return nil }
    func nibble(_ c: UInt8) -> UInt8 { c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : c - UInt8(ascii: "a") + 10 }
    return (0..<32).map { nibble(utf8[2 * $0]) << 4 | nibble(utf8[2 * $0 + 1]) }
  }

  /// The SHA-256 (hex) and size of a file, streamed.
  static func sha256(ofFile path: String, buffer: UnsafeMutableRawBufferPointer) throws -> (String, Int64) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError("opening '\(path)' to verify it", errno: errno) }
    defer { close(fd) }
    guard let context = EVP_MD_CTX_new() else { throw SystemError("creating a SHA-256 context", errno: ENOMEM) }
    defer { EVP_MD_CTX_free(context) }
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
    var total: Int64 = 0
    while true {
      let n = read(fd, buffer.baseAddress, buffer.count)
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("reading '\(path)'", errno: errno)
      }
      if n == 0 { break }
      EVP_DigestUpdate(context, buffer.baseAddress, n)
      total += Int64(n)
    }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &length)
    return (Hex.string(digest[0..<32]), total)
  }
}
