import Foundation

/// SplitMix64: a tiny seeded generator, so that every fuzz case can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A number in `0..<bound` (bound > 0).
  public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }

  /// True with probability `p`.
  public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

  /// A random element.
  public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Seeds, case counts and reporting shared by the bad-input suites.
public enum Fuzz {
  /// `DV_FUZZ_SEED` (decimal or 0x hex), or the fixed default: the same cases on every run.
  public static let seed: UInt64 = {
    let text = ProcessInfo.processInfo.environment["DV_FUZZ_SEED"] ?? ""
    if text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) { return value }
    return UInt64(text) ?? 20_261_124
  }()

  /// `DV_FUZZ_SCALE` multiplies every case count (default 1), for longer runs by hand.
  public static let scale: Double = {
    Double(ProcessInfo.processInfo.environment["DV_FUZZ_SCALE"] ?? "") ?? 1
  }()

  /// `n` scaled, at least 1.
  public static func cases(_ n: Int) -> Int { max(1, Int((Double(n) * scale).rounded())) }

  /// The generator of case `index` of `kind`: independent of the order cases run in.
  public static func generator(kind: String, index: Int) -> SplitMix64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in kind.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    var mixer = SplitMix64(seed: seed ^ hash ^ (UInt64(index) &* 0xD6E8_FEB8_6659_FD93))
    return SplitMix64(seed: mixer.next())
  }

  /// Bytes for a failure message: printable, escaped, at most `limit` characters.
  public static func show(_ bytes: [UInt8], limit: Int = 400) -> String {
    var out = ""
    for b in bytes.prefix(limit) {
      switch b {
      case 0x0A: out += "\\n"
      case 0x09: out += "\\t"
      case 0x5C: out += "\\\\"
      case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
      default: out += String(format: "\\x%02x", b)
      }
    }
    if bytes.count > limit { out += "…(\(bytes.count) bytes)" }
    return out
  }

  /// A string for a failure message, as `show` does for bytes.
  public static func show(_ text: String, limit: Int = 400) -> String { show(Array(text.utf8), limit: limit) }

  /// What a case is replayed by.
  public static func replay(kind: String, index: Int) -> String {
    "DV_FUZZ_SEED=\(seed) case \(kind)#\(index)"
  }
}

/// Runs cases on a worker thread with an 8 MiB stack (as the main thread has) under a watchdog:
/// a case that takes longer than `timeout` seconds is reported as a hang and the run stops.
public final class FuzzRunner: @unchecked Sendable {
  /// A case that failed: what it was and why.
  public struct Failure: Sendable, CustomStringConvertible {
    public var kind: String
    public var index: Int
    public var input: String
    public var problem: String

    public var description: String {
      "\(Fuzz.replay(kind: kind, index: index)): \(problem)\n  input: \(input)"
    }
  }

  private let lock = NSLock()
  private var current: (index: Int, started: Date, input: String)?
  private var failures: [Failure] = []
  private var finished = false
  public private(set) var count = 0

  public init() {}

  /// Records a failed assertion of the current case.
  public func fail(kind: String, index: Int, input: String, _ problem: String) {
    lock.lock()
    failures.append(Failure(kind: kind, index: index, input: input, problem: problem))
    lock.unlock()
  }

  /// Marks the start of a case (for the hang report).
  public func starting(_ index: Int, input: String) {
    lock.lock()
    current = (index, Date(), input)
    count += 1
    lock.unlock()
  }

  /// Runs `cases` cases of `kind`; returns the failures (a hang is one, and ends the run).
  public func run(
    kind: String, cases: Int, timeout: Double = 10,
    _ body: @escaping @Sendable (_ index: Int, _ runner: FuzzRunner) -> Void
  ) -> [Failure] {
    let thread = Thread { [self] in
      for i in 0..<cases {
        body(i, self)
        lock.lock()
        let stop = failures.count >= 20
        lock.unlock()
        if stop { break }
      }
      lock.lock()
      finished = true
      current = nil
      lock.unlock()
    }
    thread.stackSize = 8 << 20
    thread.start()
    while true {
      Thread.sleep(forTimeInterval: 0.02)
      lock.lock()
      let done = finished
      let running = current
      lock.unlock()
      if done { break }
      if let running, Date().timeIntervalSince(running.started) > timeout {
        // The worker is abandoned: it cannot be stopped from here.
        fail(kind: kind, index: running.index, input: running.input, "hang: no answer within \(timeout) s")
        break
      }
    }
    lock.lock()
    defer { lock.unlock() }
    return failures
  }
}
