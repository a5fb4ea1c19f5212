import DVBasics
import DVStorage
import Foundation

/// Why a stage would run (docs/architecture.md §6), in words a user can act on.
public enum StaleReason: Sendable, Equatable, CustomStringConvertible {
  /// No record in stages.lock.
  case neverRun
  /// The command (after interpolation) or the plugin and its config changed.
  case changedCommand
  /// Dependencies: "modified data/raw", "deleted x", "new x", "removed x".
  case changedDeps([String])
  /// Params: "prepare.seed 1 -> 2".
  case changedParams([String])
  /// Outputs that are gone from the workspace.
  case missingOuts([String])
  /// Outputs whose content differs from the record, or that are new in stages.yaml.
  case changedOuts([String])
  /// `always_changed: true`.
  case alwaysChanged
  /// An input outside the workspace (a URL) has a new version: "etag \"a\" -> \"b\"".
  case changedSource(String)
  /// A stage it depends on would run.
  case upstream(String)

  public var description: String {
    switch self {
    case .neverRun: return "never run"
    case .changedCommand: return "changed cmd"
    case .changedDeps(let items): return "changed deps: " + items.joined(separator: ", ")
    case .changedParams(let items): return "changed params: " + items.joined(separator: ", ")
    case .missingOuts(let items): return "missing outs: " + items.joined(separator: ", ")
    case .changedOuts(let items): return "changed outs: " + items.joined(separator: ", ")
    case .alwaysChanged: return "always changed"
    case .changedSource(let change): return "changed source: " + change
    case .upstream(let name): return "upstream stage '\(name)' is stale"
    }
  }
}

/// A stage and why it is stale (no reasons: up to date, or frozen).
public struct StageState: Sendable {
  public var name: String
  public var reasons: [StaleReason]
  public var isStale: Bool { !reasons.isEmpty }
}

/// Compares stages with stages.lock and the workspace.
public struct StalenessChecker {
  let pipeline: Pipeline
  let lock: LockFile
  let builder: DataBuilder
  let registry: PluginRegistry
  /// Whether stages reading a URL ask it for a new version (a network request); the pre-commit
  /// hook turns this off.
  public var checksSources = true

  public init(pipeline: Pipeline, lock: LockFile, builder: DataBuilder, registry: PluginRegistry) {
    self.pipeline = pipeline
    self.lock = lock
    self.builder = builder
    self.registry = registry
  }

  /// Every stage in dependency order with its reasons; a stage below a stale one is stale too.
  public func check() throws -> [StageState] {
    var params = ParamsReader(root: builder.workspaceRoot)
    var stale = [Bool](repeating: false, count: pipeline.stages.count)
    var states: [StageState] = []
    let predecessors = pipeline.graph.predecessors
    for i in pipeline.order {
      let stage = pipeline.stages[i]
      if stage.frozen {
        states.append(StageState(name: stage.name, reasons: []))
        continue
      }
      var reasons = try ownReasons(stage, params: &params)
      for p in predecessors[i] where stale[p] { reasons.append(.upstream(pipeline.stages[p].name)) }
      stale[i] = !reasons.isEmpty
      states.append(StageState(name: stage.name, reasons: reasons))
    }
    return states
  }

  /// Why `stage` itself would run, against the lock and workspace as they are now (no upstream
  /// reasons: `repro` re-checks a stage after its upstream ran, for early cutoff).
  func ownReasons(_ stage: Stage, params: inout ParamsReader) throws -> [StaleReason] {
    guard let record = lock.record(for: stage.name) else { return [.neverRun] }
    var reasons: [StaleReason] = []
    if record.cmd != (try registry.fingerprint(stage)) { reasons.append(.changedCommand) }

    var deps: [String] = []
    for dep in stage.deps {
      let current = try builder.build(dep.path, mode: .inspect)
      let recorded = record.deps.first { $0.path == dep.path }
      switch (current, recorded) {
      case (nil, _): deps.append("deleted \(dep.path)")
      case (_?, nil): deps.append("new \(dep.path)")
      case (let c?, let r?) where c.hash != r.hash: deps.append("modified \(dep.path)")
      default: break
      }
    }
    for recorded in record.deps where !stage.deps.contains(where: { $0.path == recorded.path }) {
      deps.append("removed \(recorded.path)")
    }
    if !deps.isEmpty { reasons.append(.changedDeps(deps)) }

    var changedParams: [String] = []
    for param in stage.params {
      let now = try params.value(of: param.key, in: param.file)
      let before = record.value(of: param.key, in: param.file.value)
      if now != before {
        changedParams.append(
          "\(param.key) \(before.map(YAMLText.flow) ?? "(none)") -> \(now.map(YAMLText.flow) ?? "(none)")")
      }
    }
    if !changedParams.isEmpty { reasons.append(.changedParams(changedParams)) }

    var missing: [String] = []
    var changedOuts: [String] = []
    for out in stage.outs {
      guard let current = try builder.build(out.path, mode: .inspect) else {
        missing.append(out.path.value)
        continue
      }
      guard let recorded = record.outs.first(where: { $0.path == out.path }) else {
        changedOuts.append("new \(out.path)")
        continue
      }
      if current.hash != recorded.hash { changedOuts.append("modified \(out.path)") }
    }
    if !missing.isEmpty { reasons.append(.missingOuts(missing)) }
    if !changedOuts.isEmpty { reasons.append(.changedOuts(changedOuts)) }
    if stage.alwaysChanged { reasons.append(.alwaysChanged) }
    // Asked last and only of an otherwise fresh stage: it may cost a request over the network.
    if reasons.isEmpty, checksSources, let recorded = record.source {
      let (plugin, config) = try registry.resolve(stage)
      if let current = plugin.sourceVersion(config: config, workspaceRoot: builder.workspaceRoot), current != recorded {
        reasons.append(.changedSource("\(recorded) -> \(current)"))
      }
    }
    return reasons
  }
}

/// Current values of params, each file read once.
package struct ParamsReader {
  let root: String
  /// File -> its values, or nil when it does not exist.
  private var files: [RelativePath: ConfigValue?] = [:]

  package init(root: String) { self.root = root }

  private mutating func values(_ file: RelativePath) throws -> ConfigValue? {
    if let known = files[file] { return known }
    let loaded = try PipelineLoader.readParams(file, root: root)
    files[file] = .some(loaded)
    return loaded
  }

  /// True when the params file exists.
  mutating func fileExists(_ file: RelativePath) throws -> Bool { try values(file) != nil }

  /// The value of a dotted key; nil when the file or the key is missing.
  package mutating func value(of key: String, in file: RelativePath) throws -> ConfigValue? {
    var current = try values(file)
    for part in key.split(separator: ".") { current = current.flatMap { Templating.child($0, String(part)) } }
    return current
  }
}
