import DVBasics

#if canImport(Glibc)
  import Glibc
#endif

/// A set of row numbers, one bit per row.
public struct RowBitmap: Sendable {
  private var words: [UInt64] = []
  /// How many rows are in the set.
  public private(set) var count = 0

  public init() {}

  /// True when `row` (1-based) is in the set.
  public func contains(_ row: Int) -> Bool {
    let word = row >> 6
    return word < words.count && words[word] & (1 << UInt64(row & 63)) != 0
  }

  /// Adds a row.
  public mutating func insert(_ row: Int) {
    let word = row >> 6
    if word >= words.count {
      words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count)))
    }
    let bit: UInt64 = 1 << UInt64(row & 63)
    if words[word] & bit == 0 {
      words[word] |= bit
      count += 1
    }
  }
}

/// An open-addressing set of 128-bit hashes that refuses to grow past a byte budget.
struct HashSet128 {
  private var keys: UnsafeMutablePointer<Hash128>
  private var mask: Int
  private var stored = 0
  private var hasZero = false
  private let budget: Int

  init(budget: Int) {
    self.budget = budget
    let capacity = 1024
    keys = .allocate(capacity: capacity)
    keys.initialize(repeating: Hash128(high: 0, low: 0), count: capacity)
    mask = capacity - 1
  }

  func free() { keys.deallocate() }

  var count: Int { stored + (hasZero ? 1 : 0) }

  /// False when the set is past its load limit because doubling it would pass the budget.
  var canGrow: Bool { stored * 2 <= mask + 1 }

  private var growthAllowed: Bool { (mask + 1) * 2 * MemoryLayout<Hash128>.stride <= budget }

  /// Adds `hash`; false when it was already present.
  mutating func insert(_ hash: Hash128) -> Bool {
    if hash.high == 0 && hash.low == 0 {
      defer { hasZero = true }
      return !hasZero
    }
    var index = Int(truncatingIfNeeded: hash.low) & mask
    while true {
      let key = keys[index]
      if key.high == 0 && key.low == 0 { break }
      if key == hash { return false }
      index = (index + 1) & mask
    }
    keys[index] = hash
    stored += 1
    if stored * 2 > mask + 1 && growthAllowed { grow() }
    return true
  }

  /// Calls `body` with every stored hash.
  func forEach(_ body: (Hash128) throws -> Void) rethrows {
    if hasZero { try body(Hash128(high: 0, low: 0)) }
    for i in 0...mask where keys[i].high != 0 || keys[i].low != 0 { try body(keys[i]) }
  }

  private mutating func grow() {
    let oldKeys = keys
    let oldCapacity = mask + 1
    let capacity = oldCapacity * 2
    keys = .allocate(capacity: capacity)
    keys.initialize(repeating: Hash128(high: 0, low: 0), count: capacity)
    mask = capacity - 1
    for i in 0..<oldCapacity where oldKeys[i].high != 0 || oldKeys[i].low != 0 {
      var index = Int(truncatingIfNeeded: oldKeys[i].low) & mask
      while keys[index].high != 0 || keys[index].low != 0 { index = (index + 1) & mask }
      keys[index] = oldKeys[i]
    }
    oldKeys.deallocate()
  }

  /// The bytes the set occupies.
  var bytes: Int { (mask + 1) * MemoryLayout<Hash128>.stride }
}

/// Finds the rows whose hash equals that of an earlier row, in bounded memory.
///
/// Hashes go into an in-memory set while it fits `memoryBudget`; then the set and every later
/// (hash, row) pair are spilled into 64 temporary files by hash. A partition file holds its pairs
/// in row order, so replaying it into a fresh set finds exactly the later repeats; a partition
/// with too many distinct hashes for the budget is split again by further hash bits.
public final class DuplicateFinder {
  private let temporaryDirectory: String
  private let memoryBudget: Int
  private var set: HashSet128
  private var duplicates = RowBitmap()
  private var spillDirectory: String?
  private var partitions: [PartitionFile] = []
  private var fileCounter = 0
  private var finished = false
  static let fanOut = 64

  /// `temporaryDirectory` must exist; spill files go into a new directory inside it.
  public init(temporaryDirectory: String, memoryBudget: Int = 64 << 20) throws {
    self.temporaryDirectory = temporaryDirectory
    self.memoryBudget = max(memoryBudget, 1024 * MemoryLayout<Hash128>.stride)
    set = HashSet128(budget: self.memoryBudget)
  }

  deinit {
    set.free()
    cleanUp()
  }

  /// True once pairs have been written to temporary files.
  public var spilled: Bool { spillDirectory != nil }

  /// Adds the hash of a row; rows must come in increasing order.
  public func add(_ hash: Hash128, row: Int) throws {
    if spillDirectory == nil {
      if !set.insert(hash) {
        duplicates.insert(row)
      } else if !set.canGrow {
        try spill()
      }
      return
    }
    try partitions[Self.partition(hash, level: 0)].append(hash, row: row)
  }

  /// The rows that repeat an earlier row's hash; removes the temporary files.
  public func finish() throws -> RowBitmap {
    guard !finished else { return duplicates }
    finished = true
    defer { cleanUp() }
    guard spillDirectory != nil else { return duplicates }
    let files = partitions
    partitions = []
    for file in files {
      try file.close()
      try replay(file.path, level: 1)
    }
    return duplicates
  }

  // MARK: - Spilling

  /// Which of the `fanOut` partitions a hash falls in at a level of splitting.
  private static func partition(_ hash: Hash128, level: Int) -> Int {
    let shift = 58 - 6 * (level % 10)
    let word = level < 10 ? hash.high : hash.low
    return Int(truncatingIfNeeded: word >> UInt64(shift)) & (fanOut - 1)
  }

  private func newPartitions() throws -> [PartitionFile] {
    try (0..<Self.fanOut).map { _ in
      fileCounter += 1
      return try PartitionFile(path: spillDirectory! + "/\(fileCounter).pairs")
    }
  }

  private func spill() throws {
    var name = Array("\(temporaryDirectory)/dedup-\(getpid())-XXXXXX".utf8CString)
    guard let made = mkdtemp(&name) else {
      throw TableError.io(
        file: temporaryDirectory, message: "cannot create a directory for spill files: \(errnoText())")
    }
    spillDirectory = String(cString: made)
    partitions = try newPartitions()
    // The set holds first occurrences only; row 0 marks them as never duplicates themselves.
    try set.forEach { try partitions[Self.partition($0, level: 0)].append($0, row: 0) }
    set.free()
    set = HashSet128(budget: memoryBudget)
  }

  /// Replays one partition file into a fresh set; splits it further when its distinct hashes do
  /// not fit the budget (rows already marked stay marked: they were repeats either way).
  private func replay(_ path: String, level: Int) throws {
    // At the last level only colliding hashes could remain: the set may grow past the budget.
    var table = HashSet128(budget: level < 20 ? memoryBudget : Int.max)
    defer {
      table.free()
      unlink(path)
    }
    var overflowed = false
    try PartitionFile.read(path) { hash, row in
      if !table.insert(hash) {
        if row > 0 { duplicates.insert(row) }
      } else if !table.canGrow && level < 20 {
        overflowed = true
        return false
      }
      return true
    }
    guard overflowed else { return }
    table.free()
    table = HashSet128(budget: 0)
    let parts = try newPartitions()
    try PartitionFile.read(path) { hash, row in
      try parts[Self.partition(hash, level: level)].append(hash, row: row)
      return true
    }
    for part in parts {
      try part.close()
      try replay(part.path, level: level + 1)
    }
  }

  private func cleanUp() {
    for file in partitions { file.discard() }
    partitions = []
    if let spillDirectory { try? FileSystem.removeTree(spillDirectory) }
    spillDirectory = nil
  }
}

/// An append-only file of (hash, row) pairs with a write buffer.
final class PartitionFile {
  let path: String
  private var fd: Int32
  private var buffer: [UInt8] = []
  private static let bufferSize = 64 << 10
  private static let pairSize = 24

  init(path: String) throws {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    if fd < 0 { throw TableError.io(file: path, message: "cannot create a spill file: \(errnoText())") }
    buffer.reserveCapacity(Self.bufferSize)
  }

  deinit { discard() }

  func append(_ hash: Hash128, row: Int) throws {
    withUnsafeBytes(of: hash.high.littleEndian) { buffer.append(contentsOf: $0) }
    withUnsafeBytes(of: hash.low.littleEndian) { buffer.append(contentsOf: $0) }
    withUnsafeBytes(of: Int64(row).littleEndian) { buffer.append(contentsOf: $0) }
    if buffer.count >= Self.bufferSize - Self.pairSize { try flush() }
  }

  private func flush() throws {
    guard !buffer.isEmpty else { return }
    do {
      try buffer.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
    } catch {
      throw TableError.io(file: path, message: "cannot write a spill file: \(error); free space in the workspace")
    }
    buffer.removeAll(keepingCapacity: true)
  }

  func close() throws {
    try flush()
    Glibc.close(fd)
    fd = -1
    buffer = []
  }

  func discard() {
    if fd >= 0 {
      Glibc.close(fd)
      fd = -1
    }
  }

  /// Streams the pairs of a file in order until `body` returns false.
  static func read(_ path: String, _ body: (Hash128, Int) throws -> Bool) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw TableError.io(file: path, message: "cannot open a spill file: \(errnoText())") }
    defer { Glibc.close(fd) }
    let chunk = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 8)
    defer { chunk.deallocate() }
    var filled = 0
    while true {
      let n = Glibc.read(fd, chunk + filled, (1 << 20) - filled)
      if n < 0 {
        if errno == EINTR { continue }
        throw TableError.io(file: path, message: "cannot read a spill file: \(errnoText())")
      }
      if n == 0 { return }
      filled += n
      let whole = filled / pairSize * pairSize
      var offset = 0
      while offset < whole {
        let high = UInt64(littleEndian: chunk.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let low = UInt64(littleEndian: chunk.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        let row = Int(Int64(littleEndian: chunk.loadUnaligned(fromByteOffset: offset + 16, as: Int64.self)))
        if try !body(Hash128(high: high, low: low), row) { return }
        offset += pairSize
      }
      if whole < filled { chunk.copyMemory(from: chunk + whole, byteCount: filled - whole) }
      filled -= whole
    }
  }
}
