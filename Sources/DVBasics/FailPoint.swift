import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Failure injection for tests: `DV_FAILPOINT=name` (or `FailPoint.arm` in unit tests) makes
/// `hit(name)` throw, so tests can prove an operation interrupted there leaves everything
/// consistent. `name@N` throws at the Nth hit only (after N-1 went through); a `:kill` suffix
/// (`name:kill`, `name@N:kill`) stops the process with SIGKILL there instead, as a crash or
/// `kill -9` would.
public enum FailPoint {
  private static let armed = Locked<String?>(ProcessInfo.processInfo.environment["DV_FAILPOINT"])
  private static let hits = Locked(0)

  /// The error thrown at an armed fail point.
  public struct Injected: DVError {
    public let name: String
    public var kind: FailureKind { .failed }
    public var description: String { "injected failure at '\(name)' (DV_FAILPOINT)" }
  }

  /// The generic fail point hit right before every durable write step dv takes: creating or
  /// renaming a temporary file, committing an object, a ledger or stat-cache transaction,
  /// deleting an object. `DV_FAILPOINT=write@N:kill` stops dv hard before its Nth write, which is
  /// how the crash suite (Tests/EndToEndTests/CrashTests.swift) interrupts a command anywhere.
  public static let write = "write"

  /// `hit(FailPoint.write)`: call right before a durable write step.
  @inline(__always)
  public static func beforeWrite() throws { try hit(write) }

  /// Arms (or with nil disarms) a fail point in this process.
  public static func arm(_ name: String?) {
    armed.withLock { $0 = name }
    hits.withLock { $0 = 0 }
  }

  /// Throws when the fail point `name` is armed (at its Nth hit, for `name@N`).
  public static func hit(_ name: String) throws {
    guard var spec = armed.withLock({ $0 })?[...], spec.hasPrefix(name) else { return }
    let kill = spec.hasSuffix(":kill")
    if kill { spec = spec.dropLast(":kill".count) }
    var rest = spec.dropFirst(name.count)
    if !rest.isEmpty {
      guard rest.first == "@", let n = Int(rest.dropFirst()) else { return }
      rest = ""
      let reached = hits.withLock { count -> Bool in
        count += 1
        return count == n
      }
      guard reached else { return }
    }
    if kill { Glibc.kill(getpid(), SIGKILL) }
    throw Injected(name: name)
  }
}
