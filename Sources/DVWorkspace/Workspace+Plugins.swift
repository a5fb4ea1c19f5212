import DVPipeline
import DVPlugins
import Foundation

/// One plugin kind `dv plugins list` shows.
public struct PluginListing: Sendable, Equatable {
  public var kind: String
  /// Nil when an external plugin could not describe itself.
  public var version: String?
  /// "built-in", or the executable's path.
  public var origin: String
  /// Why an external plugin cannot be used.
  public var problem: String?
}

extension Workspace {
  /// Every plugin kind stages can use: the built-in ones, then the external executables found in
  /// `.pipeline/plugins/` and on PATH (the first of a kind wins).
  public func pluginListing() -> [PluginListing] {
    Self.pluginListing(registry: plugins)
  }

  /// The listing for a registry (also used outside a workspace, with PATH only).
  public static func pluginListing(registry: PluginRegistry) -> [PluginListing] {
    var listing = registry.builtInPlugins.map {
      PluginListing(kind: $0.kind, version: $0.version, origin: $0.origin, problem: nil)
    }
    for found in registry.externalPluginResults() {
      switch found.result {
      case .success(let plugin):
        listing.append(PluginListing(kind: plugin.kind, version: plugin.version, origin: plugin.origin, problem: nil))
      case .failure(let error):
        listing.append(PluginListing(kind: found.kind, version: nil, origin: found.path, problem: "\(error)"))
      }
    }
    return listing
  }
}
