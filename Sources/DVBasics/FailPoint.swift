import Foundation

/// Failure injection for tests: `DV_FAILPOINT=name` (or `FailPoint.arm` in unit tests) makes
/// `hit(name)` throw, so tests can prove an operation interrupted there leaves everything
/// consistent.
public enum FailPoint {
  private static let armed = Locked<String?>(ProcessInfo.processInfo.environment["DV_FAILPOINT"])

  /// The error thrown at an armed fail point.
  public struct Injected: DVError {
    public let name: String
    public var kind: FailureKind { .failed }
    public var description: String { "injected failure at '\(name)' (DV_FAILPOINT)" }
  }

  /// Arms (or with nil disarms) a fail point in this process.
  public static func arm(_ name: String?) { armed.withLock { $0 = name } }

  /// Throws when the fail point `name` is armed.
  public static func hit(_ name: String) throws {
    if let current = armed.withLock({ $0 }), current == name { throw Injected(name: name) }
  }
}
