import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A pack written to a local file, ready to upload.
struct BuiltPack {
  /// The temporary file holding the pack.
  var path: String
  var index: PackIndex
  /// The pack's SHA-256 (its name, and the payload hash an upload is signed with).
  var digest: [UInt8]
  /// The items packed, in pack order.
  var packed: [UploadItem]
  /// Items left out because their local file did not hash to their id (a corrupt cache object).
  var corrupt: [(item: UploadItem, actual: String)]
}

/// Writes small objects back to back into a pack file (docs/formats.md §3), verifying each
/// against its id as it is read, and builds the pack's index.
enum PackBuilder {
  /// Packs `items` into a new file in `directory`. Every byte is read once: it is hashed for the
  /// object's check and for the pack's name as it is copied.
  static func build(_ items: [UploadItem], in directory: String) throws -> BuiltPack {
    try FileSystem.createDirectory(directory)
    let path = directory + "/pack.\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
    try FailPoint.beforeWrite()
    let out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if out < 0 { throw SystemError("creating '\(path)'", errno: errno) }
    var keep = false
    defer {
      close(out)
      if !keep { unlink(path) }
    }
    let writer = BufferedWriter(fd: out, path: path)
    let packHash = SHA256Stream()
    let objectHash = SHA256Stream()
    PackFormat.packMagic.withUnsafeBytes { packHash.update($0) }
    try PackFormat.packMagic.withUnsafeBytes { try writer.write($0) }
    var offset = Int64(PackFormat.packMagic.count)
    var entries: [PackIndex.Entry] = []
    var packed: [UploadItem] = []
    var corrupt: [(UploadItem, String)] = []
    for item in items {
      // Read the object whole first (it is small): a corrupt one must not reach the pack.
      guard let object = try FileSystem.readFileIfPresent(item.path) else {
        throw SystemError("opening '\(item.path)' to pack it", errno: ENOENT)
      }
      let actual = object.withUnsafeBytes { bytes -> String in
        objectHash.update(bytes)
        return Hex.string(objectHash.finish())
      }
      guard actual == item.id else {
        corrupt.append((item, actual))
        continue
      }
      try object.withUnsafeBytes { bytes in
        packHash.update(bytes)
        try writer.write(bytes)
      }
      entries.append(PackIndex.Entry(id: item.id, offset: offset, length: Int64(object.count)))
      packed.append(UploadItem(id: item.id, path: item.path, size: Int64(object.count)))
      offset += Int64(object.count)
    }
    try writer.flush()
    let digest = packHash.finish()
    keep = true
    return BuiltPack(
      path: path, index: PackIndex(name: Hex.string(digest), packSize: offset, entries: entries), digest: digest,
      packed: packed, corrupt: corrupt)
  }
}

/// Gathers small writes into 1 MiB ones.
final class BufferedWriter {
  private let fd: Int32
  private let path: String
  private var pending: [UInt8] = []
  private static let chunk = 1 << 20

  init(fd: Int32, path: String) {
    self.fd = fd
    self.path = path
    pending.reserveCapacity(Self.chunk)
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    if pending.isEmpty && bytes.count >= Self.chunk {
      try FileSystem.writeAll(fd, bytes, path: path)
      return
    }
    pending.append(contentsOf: bytes)
    if pending.count >= Self.chunk { try flush() }
  }

  func flush() throws {
    guard !pending.isEmpty else { return }
    try pending.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
    pending.removeAll(keepingCapacity: true)
  }
}

/// How a push divides objects between packs and loose uploads (docs/formats.md §2).
public struct PackPolicy: Sendable, Equatable {
  /// Objects of this size or more travel loose.
  public var threshold: Int64 = 1 << 20
  /// With fewer small objects than this to push, they travel loose too.
  public var minimumObjects = 32
  /// No pack is cut larger than this.
  public var maximumPackSize: Int64 = 64 << 20
  /// A push is split into up to `jobs` packs while each stays at least this large.
  public var parallelPackSize: Int64 = 8 << 20

  public init() {}

  /// No packs at all: every object loose (remotes written before packs, tests).
  public static let never: PackPolicy = {
    var policy = PackPolicy()
    policy.threshold = 0
    return policy
  }()

  /// Whether `item` may go into a pack.
  func packs(_ item: UploadItem) -> Bool { item.size < threshold }

  /// Cuts `items` (in order) into groups of about equal bytes, one pack each.
  func groups(_ items: [UploadItem], jobs: Int) -> [[UploadItem]] {
    let total = items.reduce(Int64(0)) { $0 + $1.size }
    let bySize = Int((total + maximumPackSize - 1) / maximumPackSize)
    let forParallelism = min(jobs, Int((total + parallelPackSize - 1) / parallelPackSize))
    let count = max(1, bySize, forParallelism)
    let target = max(1, (total + Int64(count) - 1) / Int64(count))
    var groups: [[UploadItem]] = []
    var current: [UploadItem] = []
    var bytes: Int64 = 0
    for item in items {
      current.append(item)
      bytes += item.size
      if bytes >= target {
        groups.append(current)
        current = []
        bytes = 0
      }
    }
    // A short tail (the rounding of the cut, or empty objects after it) joins the last pack.
    if !current.isEmpty {
      if !groups.isEmpty && bytes < target / 2 { groups[groups.count - 1] += current } else { groups.append(current) }
    }
    return groups
  }
}
