import DVBasics

/// A plugin stage's configuration (`with:`, or a shell stage's command) and where each part of it
/// was written, so that a complaint about one option names its file:line:column.
public struct PluginConfig: Sendable {
  public var value: ConfigValue
  /// Where the stage (or its `with:`) is defined.
  public var location: SourceLocation
  /// Where each option's value was written, by dotted path: `input`, `ratios.train`, `keys.1`.
  public var locations: [String: SourceLocation]
  /// The stage's `wdir`: paths in options are relative to it, like `deps` and `outs`.
  public var wdir: RelativePath
  /// The stage's declared outputs (workspace-relative), so that a plugin can default an output
  /// option to them, or check it against them, when stages.yaml is loaded.
  public var outs: [RelativePath]

  public init(
    value: ConfigValue, location: SourceLocation, locations: [String: SourceLocation] = [:],
    wdir: RelativePath = .root, outs: [RelativePath] = []
  ) {
    self.value = value
    self.location = location
    self.locations = locations
    self.wdir = wdir
    self.outs = outs
  }

  /// Where the option at a dotted path was written: the nearest recorded place.
  public func location(of path: String) -> SourceLocation {
    var key = path
    while !key.isEmpty {
      if let found = locations[key] { return found }
      guard let dot = key.lastIndex(of: ".") else { break }
      key = String(key[..<dot])
    }
    return locations[""] ?? location
  }

  /// An error about the option at `path`.
  public func error(_ path: String, _ message: String) -> FileFormatError {
    .invalid(location(of: path), message)
  }

  /// The top-level options in file order; empty when `with` is absent.
  public var options: [(String, ConfigValue)] {
    if case .map(let pairs) = value { return pairs }
    return []
  }

  /// The raw value of a top-level option.
  public subscript(_ name: String) -> ConfigValue? { options.first { $0.0 == name }?.1 }
}

/// The shape of one option a plugin accepts.
public enum OptionType: Sendable, Equatable, CustomStringConvertible {
  case string
  case integer
  case number
  case boolean
  /// A list of strings (a single string is accepted as a one-element list).
  case stringList
  /// A mapping from names to numbers.
  case numberMap
  /// A mapping (checked by the plugin itself).
  case mapping
  /// Anything.
  case any

  public var description: String {
    switch self {
    case .string: return "a string"
    case .integer: return "an integer"
    case .number: return "a number"
    case .boolean: return "true or false"
    case .stringList: return "a list of strings"
    case .numberMap: return "a mapping of names to numbers"
    case .mapping: return "a mapping"
    case .any: return "a value"
    }
  }
}

/// One option a plugin accepts.
public struct OptionSpec: Sendable {
  public var name: String
  public var type: OptionType
  public var required: Bool
  /// For strings: the only values allowed.
  public var allowed: [String]?

  public init(_ name: String, _ type: OptionType, required: Bool = false, allowed: [String]? = nil) {
    self.name = name
    self.type = type
    self.required = required
    self.allowed = allowed
  }
}

extension PluginConfig {
  /// Checks `with` against a plugin's options: unknown option, wrong type, missing required
  /// option, each naming file:line:column and what the plugin takes.
  public func check(plugin kind: String, options specs: [OptionSpec]) throws {
    if case .null = value, !specs.contains(where: \.required) { return }
    guard case .map(let pairs) = value else {
      throw error("", "'with' of plugin '\(kind)' must be a mapping of options")
    }
    let known = specs.map(\.name)
    for (name, item) in pairs {
      guard let spec = specs.first(where: { $0.name == name }) else {
        throw error(
          name, "unknown option '\(name)' for plugin '\(kind)' (it takes: \(known.joined(separator: ", ")))")
      }
      try check(item, at: name, spec: spec, plugin: kind)
    }
    for spec in specs where spec.required && !pairs.contains(where: { $0.0 == spec.name }) {
      throw error("", "plugin '\(kind)' needs option '\(spec.name)' (\(spec.type))")
    }
  }

  private func check(_ item: ConfigValue, at path: String, spec: OptionSpec, plugin kind: String) throws {
    func wrong() -> FileFormatError {
      error(path, "option '\(spec.name)' of plugin '\(kind)' must be \(spec.type)")
    }
    switch spec.type {
    case .any: return
    case .string:
      guard case .scalar(let s) = item else { throw wrong() }
      if let allowed = spec.allowed, !allowed.contains(s) {
        throw error(
          path,
          "option '\(spec.name)' of plugin '\(kind)' is '\(s)'; use one of: \(allowed.joined(separator: ", "))")
      }
    case .integer:
      guard case .scalar(let s) = item, Int(s) != nil else { throw wrong() }
    case .number:
      guard case .scalar(let s) = item, let d = Double(s), d.isFinite else { throw wrong() }
    case .boolean:
      guard case .scalar(let s) = item, ConfigValue.boolean(s) != nil else { throw wrong() }
    case .stringList:
      switch item {
      case .scalar: return
      case .list(let items):
        for (i, element) in items.enumerated() {
          guard case .scalar = element else {
            throw error("\(path).\(i)", "each entry of '\(spec.name)' must be a string")
          }
        }
      default: throw wrong()
      }
    case .numberMap:
      guard case .map(let pairs) = item, !pairs.isEmpty else { throw wrong() }
      for (key, element) in pairs {
        guard case .scalar(let s) = element, let d = Double(s), d.isFinite else {
          throw error("\(path).\(key)", "'\(spec.name).\(key)' of plugin '\(kind)' must be a number")
        }
      }
    case .mapping:
      guard case .map = item else { throw wrong() }
    }
  }

  /// A path option, workspace-relative; nil when absent. Absolute paths, paths leaving the
  /// workspace and paths into `.pipeline/` are errors at the option.
  public func path(_ name: String) throws -> RelativePath? {
    guard let text = string(name) else { return nil }
    guard !text.hasPrefix("/"), let path = RelativePath(validating: wdir.value + "/" + text), path != .root,
      !path.isInside(RelativePath(validating: ".pipeline")!)
    else {
      throw error(name, "'\(text)' is absolute or leaves the workspace; use a path inside it")
    }
    return path
  }

  /// A string option; nil when absent. Call after `check`.
  public func string(_ name: String) -> String? {
    if case .scalar(let s)? = self[name] { return s }
    return nil
  }

  /// An integer option; nil when absent. Call after `check`.
  public func integer(_ name: String) -> Int? { string(name).flatMap { Int($0) } }

  /// A number option; nil when absent. Call after `check`.
  public func number(_ name: String) -> Double? { string(name).flatMap { Double($0) } }

  /// A boolean option; nil when absent. Call after `check`.
  public func boolean(_ name: String) -> Bool? { string(name).flatMap(ConfigValue.boolean) }

  /// A list-of-strings option (a single string is a list of one); nil when absent.
  public func stringList(_ name: String) -> [String]? {
    switch self[name] {
    case .scalar(let s)?: return [s]
    case .list(let items)?:
      return items.compactMap {
        if case .scalar(let s) = $0 { return s }
        return nil
      }
    default: return nil
    }
  }

  /// A mapping of names to numbers, in file order; nil when absent.
  public func numberMap(_ name: String) -> [(String, Double)]? {
    guard case .map(let pairs)? = self[name] else { return nil }
    return pairs.compactMap { key, value in
      if case .scalar(let s) = value, let d = Double(s) { return (key, d) }
      return nil
    }
  }
}

extension ConfigValue {
  /// YAML 1.1 booleans as dv reads them.
  public static func boolean(_ text: String) -> Bool? {
    switch text {
    case "true", "True", "TRUE", "yes", "Yes", "on": return true
    case "false", "False", "FALSE", "no", "No", "off": return false
    default: return nil
    }
  }
}
