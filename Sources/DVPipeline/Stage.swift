import DVBasics

/// A value from YAML after interpolation: what a plugin's `with` holds.
public indirect enum ConfigValue: Sendable, Equatable {
  case scalar(String)
  case list([ConfigValue])
  /// Keys in file order.
  case map([(String, ConfigValue)])
  case null

  public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
    switch (a, b) {
    case (.scalar(let x), .scalar(let y)): return x == y
    case (.list(let x), .list(let y)): return x == y
    case (.map(let x), .map(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
    case (.null, .null): return true
    default: return false
    }
  }
}

/// What a stage runs.
public enum StageAction: Sendable, Equatable {
  /// A shell command, after interpolation.
  case command(String)
  /// A registered plugin and its configuration.
  case plugin(kind: String, with: ConfigValue)
}

/// A declared output of a stage.
public struct StageOutput: Sendable, Equatable {
  public var path: RelativePath
  /// False for outputs kept out of the cache (metrics by default).
  public var cache: Bool
  /// True when the output is not removed before the stage runs.
  public var persist: Bool
  /// Listed under `metrics:`.
  public var isMetric: Bool
  /// Listed under `plots:`.
  public var isPlot: Bool
  public var location: SourceLocation
}

/// A dependency on a file or directory.
public struct StageDependency: Sendable, Equatable {
  public var path: RelativePath
  public var location: SourceLocation
}

/// A parameter a stage reads: a dotted key of a YAML params file.
public struct StageParameter: Sendable, Equatable {
  /// The params file, workspace-relative (default `params.yaml`).
  public var file: RelativePath
  public var key: String
  public var location: SourceLocation
}

/// One stage of `stages.yaml`, after `foreach`/`matrix` expansion and `${...}` interpolation.
public struct Stage: Sendable, Equatable {
  /// `name`, or `name@item` for generated stages.
  public var name: String
  public var action: StageAction
  public var deps: [StageDependency]
  public var params: [StageParameter]
  /// Outputs in declaration order: `outs`, then `metrics`, then `plots`.
  public var outs: [StageOutput]
  /// Directory the command runs in.
  public var wdir: RelativePath
  public var desc: String?
  public var frozen: Bool
  public var alwaysChanged: Bool
  /// Where the stage is defined (its name in stages.yaml).
  public var location: SourceLocation
  /// Where each part of a plugin's `with:` was written, by dotted path ("" is `with:` itself).
  public var configLocations: [String: SourceLocation] = [:]
  /// `executor:`, overriding the config and the command line; nil when the stage says nothing.
  public var executor: ExecutorKind?
  /// `resources:`, before the config's defaults are applied.
  public var resources = StageResources()
  /// `retries:`: how often a failed run is started again before the stage fails.
  public var retries = 0
}
