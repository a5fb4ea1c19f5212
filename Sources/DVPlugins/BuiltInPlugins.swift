import DVPipeline

/// The data plugins that ship with dv.
public enum BuiltInPlugins {
  /// Every built-in data plugin.
  public static let all: [any StagePlugin] = [
    DedupPlugin(), DownloadPlugin(), ProfilePlugin(), SplitPlugin(), ValidatePlugin(),
  ]

  /// The registry a workspace uses: `shell`, the data plugins, and external plugins found in
  /// `searchPath`.
  public static func registry(searchPath: [String]) -> PluginRegistry {
    PluginRegistry.builtIn.adding(all).searching(searchPath)
  }
}
