import DVBasics
import Foundation
import Yams

/// The stages of `stages.yaml`, validated, with the graph between them.
public struct Pipeline: Sendable {
  /// Stages in file order (generated stages where their template stands).
  public var stages: [Stage]
  /// An edge `a -> b` when `b` depends on an output of `a`.
  public var graph: DirectedGraph
  /// Stage indices in dependency order.
  public var order: [Int]

  /// The stage with this name.
  public func index(of name: String) -> Int? { stages.firstIndex { $0.name == name } }
}

/// Reads `stages.yaml` into a validated `Pipeline`, rejecting every problem before anything runs
/// with `file:line:column` and what to do.
public struct PipelineLoader {
  /// The stage file at the workspace root.
  public static let fileName = "stages.yaml"
  /// The params file read by default, for `${...}` and `params:`.
  public static let defaultParams = "params.yaml"

  let root: String

  public init(workspaceRoot: String) { root = workspaceRoot }

  /// The most stages one `matrix` may generate.
  static let maxGeneratedStages = 10_000

  static let stageKeys: Set<String> = [
    "cmd", "plugin", "with", "deps", "params", "outs", "metrics", "plots", "wdir", "desc", "frozen",
    "always_changed", "meta", "executor", "resources", "retries",
  ]

  /// Loads the pipeline; nil when the workspace has no stages.yaml.
  public func load() throws -> Pipeline? {
    guard let text = try FileSystem.readTextIfPresent(root + "/" + Self.fileName) else { return nil }
    return try load(text: text)
  }

  /// Loads the pipeline from the text of a stages.yaml (e.g. one about to be written).
  public func load(text: String) throws -> Pipeline {
    let file = try YAMLFile(text: text, name: Self.fileName)
    guard file.root != nil else { return Pipeline(stages: [], graph: DirectedGraph(count: 0), order: []) }
    let top = try file.rootMapping(allowed: ["vars", "stages"], what: "stages.yaml")
    var context = try loadParams(Self.defaultParams, required: false, at: nil, in: file) ?? .map([])
    if let vars = top.first(where: { $0.key == "vars" }) {
      guard let list = vars.value.sequence else { throw file.error(vars.value, "'vars' must be a list") }
      for item in list {
        if let name = item.scalar?.string {
          guard let values = try loadParams(name, required: true, at: item, in: file) else { continue }
          context = Self.merge(context, values)
        } else if item.mapping != nil {
          context = Self.merge(context, try Templating(file: file, context: .map([]), locals: [:]).value(item))
        } else {
          throw file.error(item, "each entry of 'vars' must be a file name or a mapping of values")
        }
      }
    }
    var stages: [Stage] = []
    if let stagesNode = top.first(where: { $0.key == "stages" })?.value {
      guard let map = stagesNode.mapping else {
        throw file.error(stagesNode, "'stages' must be a mapping of stage names")
      }
      for (nameNode, definition) in map {
        guard let name = nameNode.scalar?.string, Self.isValidName(name) else {
          throw file.error(nameNode, "stage names use letters, digits, '_', '-' and '.'")
        }
        stages += try expand(name: name, nameNode: nameNode, definition: definition, context: context, file: file)
      }
    }
    return try validate(stages, file: file)
  }

  static func isValidName(_ name: String) -> Bool {
    !name.isEmpty
      && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0) }
  }

  // MARK: - Params and variables

  /// Reads a YAML params file (vars) as values; nil when it is missing and not required.
  func loadParams(_ name: String, required: Bool, at node: Node?, in file: YAMLFile) throws -> ConfigValue? {
    guard let path = RelativePath(validating: name), path != .root else {
      throw file.error(node, "'\(name)' must be a relative path inside the workspace")
    }
    guard let values = try Self.readParams(path, root: root) else {
      if required { throw file.error(node, "vars file '\(name)' does not exist; create it or remove it from 'vars'") }
      return nil
    }
    return values
  }

  /// A YAML params file as values; nil when it does not exist.
  static func readParams(_ path: RelativePath, root: String) throws -> ConfigValue? {
    guard let text = try FileSystem.readTextIfPresent(path.absolute(under: root)) else { return nil }
    let params = try YAMLFile(text: text, name: path.value)
    guard let rootNode = params.root else { return .map([]) }
    guard rootNode.mapping != nil else { throw params.error(rootNode, "a params file must be a mapping") }
    return try Templating(file: params, context: .map([]), locals: [:], interpolate: false).value(rootNode)
  }

  static func merge(_ base: ConfigValue, _ extra: ConfigValue) -> ConfigValue {
    guard case .map(var entries) = base, case .map(let more) = extra else { return extra }
    for (key, value) in more {
      if let i = entries.firstIndex(where: { $0.0 == key }) {
        entries[i].1 = merge(entries[i].1, value)
      } else {
        entries.append((key, value))
      }
    }
    return .map(entries)
  }

  // MARK: - foreach and matrix

  private func expand(
    name: String, nameNode: Node, definition: Node, context: ConfigValue, file: YAMLFile
  ) throws -> [Stage] {
    guard let map = definition.mapping else { throw file.error(definition, "stage '\(name)' must be a mapping") }
    let keys = map.compactMap { $0.key.scalar?.string }
    if keys.contains("foreach") {
      let entries = try file.mapping(definition, allowed: ["foreach", "do"], what: "the foreach stage '\(name)'")
      guard let over = entries.first(where: { $0.key == "foreach" })?.value,
        let body = entries.first(where: { $0.key == "do" })?.value
      else { throw file.error(definition, "a foreach stage needs both 'foreach' and 'do'") }
      let items = try Templating(file: file, context: context, locals: [:]).value(over)
      var result: [Stage] = []
      switch items {
      case .list(let values):
        for (i, value) in values.enumerated() {
          let suffix: String
          if case .scalar(let s) = value { suffix = s } else { suffix = String(i) }
          result.append(
            try stage(
              name: "\(name)@\(suffix)", nameNode: nameNode, template: body, context: context,
              locals: ["item": value], file: file))
        }
      case .map(let pairs):
        for (key, value) in pairs {
          result.append(
            try stage(
              name: "\(name)@\(key)", nameNode: nameNode, template: body, context: context,
              locals: ["item": value, "key": .scalar(key)], file: file))
        }
      default:
        throw file.error(over, "'foreach' must be a list or a mapping (or a ${...} naming one)")
      }
      return result
    }
    if keys.contains("matrix") {
      guard let matrixNode = map.first(where: { $0.key.scalar?.string == "matrix" })?.value,
        case .map(let axes) = try Templating(file: file, context: context, locals: [:]).value(matrixNode), !axes.isEmpty
      else { throw file.error(definition, "'matrix' must map names to lists of values") }
      var combinations: [[(String, ConfigValue)]] = [[]]
      for (axis, values) in axes {
        guard case .list(let list) = values, !list.isEmpty else {
          throw file.error(matrixNode, "matrix axis '\(axis)' must be a non-empty list")
        }
        // A few short axes multiply into billions of stages: stop before building them.
        guard combinations.count * list.count <= Self.maxGeneratedStages else {
          throw file.error(
            matrixNode,
            "'matrix' of stage '\(name)' makes more than \(Self.maxGeneratedStages) stages; use fewer values")
        }
        combinations = combinations.flatMap { partial in list.map { partial + [(axis, $0)] } }
      }
      return try combinations.map { combination in
        let suffix = combination.map { pair -> String in
          if case .scalar(let s) = pair.1 { return s }
          return "?"
        }.joined(separator: "-")
        return try stage(
          name: "\(name)@\(suffix)", nameNode: nameNode, template: definition, context: context,
          locals: ["item": .map(combination)], file: file, skipping: ["matrix"])
      }
    }
    return [try stage(name: name, nameNode: nameNode, template: definition, context: context, locals: [:], file: file)]
  }

  // MARK: - One stage

  private func stage(
    name: String, nameNode: Node, template: Node, context: ConfigValue, locals: [String: ConfigValue], file: YAMLFile,
    skipping: Set<String> = []
  ) throws -> Stage {
    let location = file.location(nameNode)
    let entries = try file.mapping(template, allowed: Self.stageKeys.union(skipping), what: "stage '\(name)'")
      .filter { !skipping.contains($0.key) }
    let templating = Templating(file: file, context: context, locals: locals)
    func text(_ node: Node, _ key: String) throws -> String {
      guard case .scalar(let s) = try templating.value(node) else {
        throw file.error(node, "'\(key)' must be a string")
      }
      return s
    }
    func flag(_ node: Node, _ key: String) throws -> Bool {
      let value = try text(node, key).lowercased()
      guard ["true", "false", "yes", "no"].contains(value) else {
        throw file.error(node, "'\(key)' must be true or false")
      }
      return value == "true" || value == "yes"
    }
    var wdir = RelativePath.root
    if let node = entries.first(where: { $0.key == "wdir" })?.value {
      wdir = try resolve(try text(node, "wdir"), under: .root, node: node, file: file)
    }
    var cmd: String?
    var plugin: String?
    var with: ConfigValue = .map([])
    var stage = Stage(
      name: name, action: .command(""), deps: [], params: [], outs: [], wdir: wdir, desc: nil, frozen: false,
      alwaysChanged: false, location: location)
    for entry in entries {
      let node = entry.value
      switch entry.key {
      case "cmd":
        if let list = node.sequence {
          cmd = try list.map { try text($0, "cmd") }.joined(separator: " && ")
        } else {
          cmd = try text(node, "cmd")
        }
        if cmd?.trimmingCharacters(in: .whitespaces).isEmpty == true { throw file.error(node, "'cmd' is empty") }
      case "plugin": plugin = try text(node, "plugin")
      case "with":
        with = try templating.value(node)
        Self.recordLocations(of: node, at: "", in: file, into: &stage.configLocations)
      case "deps":
        for item in try list(node, "deps", file) {
          stage.deps.append(
            StageDependency(
              path: try resolve(try text(item, "deps"), under: wdir, node: item, file: file),
              location: file.location(item)))
        }
      case "params": stage.params += try parameters(node, templating: templating, file: file)
      case "outs", "metrics", "plots":
        for item in try list(node, entry.key, file) {
          stage.outs.append(try output(item, kind: entry.key, under: wdir, templating: templating, file: file))
        }
      case "desc": stage.desc = try text(node, "desc")
      case "frozen": stage.frozen = try flag(node, "frozen")
      case "always_changed": stage.alwaysChanged = try flag(node, "always_changed")
      case "executor":
        let name = try text(node, "executor")
        guard let kind = ExecutorKind(rawValue: name) else {
          throw file.error(node, "unknown executor '\(name)' (use local or slurm)")
        }
        stage.executor = kind
      case "resources":
        stage.resources = try StageResources.parse(node, in: file, what: "'resources' of stage '\(name)'", scalar: text)
      case "retries":
        let value = try text(node, "retries")
        guard let count = Int(value), (0...100).contains(count) else {
          throw file.error(node, "'retries' must be a whole number from 0 to 100, not '\(value)'")
        }
        stage.retries = count
      default: break  // wdir read above; meta is free-form
      }
    }
    switch (cmd, plugin) {
    case (let cmd?, nil): stage.action = .command(cmd)
    case (nil, let plugin?): stage.action = .plugin(kind: plugin, with: with)
    case (nil, nil): throw file.error(nameNode, "stage '\(name)' has neither 'cmd' nor 'plugin'; give it one")
    default: throw file.error(nameNode, "stage '\(name)' has both 'cmd' and 'plugin'; keep one")
    }
    return stage
  }

  /// Where each value under `node` was written, by dotted path.
  private static func recordLocations(
    of node: Node, at path: String, in file: YAMLFile, into locations: inout [String: SourceLocation]
  ) {
    locations[path] = file.location(node)
    let prefix = path.isEmpty ? "" : path + "."
    if let mapping = node.mapping {
      for pair in mapping {
        guard let key = pair.key.scalar?.string else { continue }
        recordLocations(of: pair.value, at: prefix + key, in: file, into: &locations)
      }
    } else if let sequence = node.sequence {
      for (i, item) in sequence.enumerated() {
        recordLocations(of: item, at: prefix + String(i), in: file, into: &locations)
      }
    }
  }

  private func list(_ node: Node, _ key: String, _ file: YAMLFile) throws -> [Node] {
    guard let list = node.sequence else { throw file.error(node, "'\(key)' must be a list") }
    return Array(list)
  }

  /// A path as written in stages.yaml, relative to the stage's `wdir`, kept inside the workspace.
  private func resolve(_ text: String, under wdir: RelativePath, node: Node, file: YAMLFile) throws -> RelativePath {
    guard !text.hasPrefix("/"), let path = RelativePath(validating: wdir.value + "/" + text) else {
      throw file.error(node, "'\(text)' is absolute or leaves the workspace; use a path inside it")
    }
    if path.isInside(RelativePath(validating: ".pipeline")!) || path == .root {
      throw file.error(node, "'\(text)' is not a path a stage can use")
    }
    return path
  }

  private func output(
    _ node: Node, kind: String, under wdir: RelativePath, templating: Templating, file: YAMLFile
  ) throws -> StageOutput {
    var cache = kind != "metrics"
    var persist = false
    let pathText: String
    let pathNode: Node
    if node.scalar != nil {
      guard case .scalar(let s) = try templating.value(node) else { throw file.error(node, "an output must be a path") }
      (pathText, pathNode) = (s, node)
    } else if let map = node.mapping {
      var options: Node?
      if map.count == 1, let only = map.first, only.key.scalar?.string != "path" {
        // DVC's form: {path: {cache: false}}
        guard case .scalar(let s) = try templating.value(only.key) else {
          throw file.error(node, "an output must be a path")
        }
        (pathText, pathNode, options) = (s, only.key, only.value.mapping == nil ? nil : only.value)
      } else {
        guard let p = map["path"], case .scalar(let s) = try templating.value(p) else {
          throw file.error(node, "an output written as a mapping needs 'path'")
        }
        (pathText, pathNode, options) = (s, p, node)
      }
      if let options {
        for entry in try file.mapping(options, allowed: ["path", "cache", "persist", "desc"], what: "an output") {
          switch entry.key {
          case "cache": cache = try file.boolean(entry.value, key: "cache")
          case "persist": persist = try file.boolean(entry.value, key: "persist")
          default: break
          }
        }
      }
    } else {
      throw file.error(node, "each entry of '\(kind)' must be a path or a mapping")
    }
    return StageOutput(
      path: try resolve(pathText, under: wdir, node: pathNode, file: file), cache: cache, persist: persist,
      isMetric: kind == "metrics", isPlot: kind == "plots", location: file.location(pathNode))
  }

  private func parameters(_ node: Node, templating: Templating, file: YAMLFile) throws -> [StageParameter] {
    var result: [StageParameter] = []
    for item in try list(node, "params", file) {
      if item.scalar != nil {
        guard case .scalar(let key) = try templating.value(item) else { throw file.error(item, "a param is a key") }
        result.append(
          StageParameter(file: RelativePath(validating: Self.defaultParams)!, key: key, location: file.location(item)))
      } else if let map = item.mapping {
        for (fileNode, keys) in map {
          guard let name = fileNode.scalar?.string, let path = RelativePath(validating: name), path != .root else {
            throw file.error(fileNode, "params file names must be relative paths")
          }
          for keyNode in try list(keys, "params", file) {
            guard case .scalar(let key) = try templating.value(keyNode) else {
              throw file.error(keyNode, "a param is a key")
            }
            result.append(StageParameter(file: path, key: key, location: file.location(keyNode)))
          }
        }
      } else {
        throw file.error(item, "each entry of 'params' is a key or {file: [keys]}")
      }
    }
    return result
  }
}
