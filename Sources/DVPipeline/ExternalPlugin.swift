import DVBasics
import Foundation

/// A `dv-plugin-<kind>` executable (DESIGN.md §7).
public struct ExternalPlugin: StagePlugin {
  public static let kind = "external"
  public static let version = "1"
  static let prefix = "dv-plugin-"

  public let path: String
  public let kind: String
  public let version: String
  public var origin: String { path }

  init(path: String, expectedKind: String, usedAt location: SourceLocation?) throws {
    self.path = path
    self.kind = expectedKind
    self.version = "?"
  }

  static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

  static func isValidKind(_ kind: String) -> Bool {
    !kind.isEmpty && kind.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" }
  }

  public func validate(config: PluginConfig) throws {}

  public func run(_ context: StageContext) async throws {
    throw StageRunError.couldNotStart("external plugins are not implemented yet")
  }
}
