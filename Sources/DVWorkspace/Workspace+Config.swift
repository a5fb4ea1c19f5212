import DVBasics
import DVPipeline
import DVRemotes
import Foundation
import Yams

/// Errors of `dv config`.
public enum ConfigError: DVError {
  /// A key that is no setting of dv.
  case unknownKey(String)
  /// A value the setting does not take; the message says what it takes.
  case invalidValue(key: String, message: String)
  /// A setting that is not set (in that file, for `--unset`).
  case notSet(String, file: String?)
  /// A remote setting that cannot be changed alone (`remotes.NAME` needs a key; url cannot go).
  case remoteKey(String, String)

  public var kind: FailureKind {
    switch self {
    case .notSet: return .failed
    default: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .unknownKey(let key):
      let known = (WorkspaceConfig.sections.flatMap { section, keys in keys.map { section + "." + $0 } }
        + WorkspaceConfig.scalars).sorted()
      return "'\(key)' is not a setting of dv (known: \(known.joined(separator: ", ")), remotes.NAME.KEY)"
    case .invalidValue(let key, let message):
      return "\(key): \(message)"
    case .notSet(let key, let file):
      return file.map { "'\(key)' is not set in \($0)" } ?? "'\(key)' is not set"
    case .remoteKey(let key, let advice):
      return "'\(key)': \(advice)"
    }
  }
}

/// A setting as `dv config --list` shows it.
public struct ConfigEntry: Sendable, Equatable {
  /// `section.key` or `remotes.NAME.KEY`.
  public var key: String
  /// The value as written (a list as `a, b`); secrets are `****`.
  public var value: String
  /// The file it comes from (`.pipeline/config.yaml` or `.pipeline/config.local.yaml`).
  public var file: String
}

/// What a `dv config` key names.
enum ConfigKey: Equatable {
  /// `section.key` of a section other than `remotes:`, or a top-level scalar (`executor`) when
  /// `key` is nil.
  case setting(section: String, key: String?)
  /// `remotes.NAME.KEY` (DVC's `remote.NAME.KEY` too), or the whole remote when `key` is nil.
  case remote(name: String, key: String?)

  init(_ text: String) throws {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    if let first = parts.first, first == "remotes" || first == "remote", parts.count >= 2 {
      let allKeys = RemoteScheme.allCases.reduce(into: Set(["url"])) { $0.formUnion($1.settingKeys) }
      if parts.count >= 3, let last = parts.last, allKeys.contains(last) {
        self = .remote(name: parts[1..<(parts.count - 1)].joined(separator: "."), key: last)
      } else {
        self = .remote(name: parts[1...].joined(separator: "."), key: nil)
      }
      return
    }
    if parts.count == 1, WorkspaceConfig.scalars.contains(text) {
      self = .setting(section: text, key: nil)
      return
    }
    guard parts.count == 2, let keys = WorkspaceConfig.sections[parts[0]], keys.contains(parts[1]) else {
      throw ConfigError.unknownKey(text)
    }
    self = .setting(section: parts[0], key: parts[1])
  }
}

extension Workspace {
  /// Every setting written in the config files (both, or only config.local.yaml when `local`),
  /// local values replacing committed ones, sorted by key; secrets masked.
  public func configEntries(localOnly: Bool = false) throws -> [ConfigEntry] {
    var entries: [String: ConfigEntry] = [:]
    for name in WorkspaceConfig.fileNames where !localOnly || name == "config.local.yaml" {
      let file = ".pipeline/" + name
      guard let text = try FileSystem.readTextIfPresent(pipelineDirectory + "/" + name),
        let root = try YAMLFile(text: text, name: file).root?.mapping
      else { continue }
      for (sectionNode, body) in root {
        guard let section = sectionNode.string, section != "version" else { continue }
        if WorkspaceConfig.scalars.contains(section) {
          entries[section] = ConfigEntry(key: section, value: Self.configText(body), file: file)
          continue
        }
        guard let settings = body.mapping else { continue }
        for (keyNode, value) in settings {
          guard let key = keyNode.string else { continue }
          if section == "remotes" {
            for (settingNode, settingValue) in value.mapping ?? [:] {
              guard let setting = settingNode.string else { continue }
              let shown = RemoteScheme.secretKeys.contains(setting) ? "****" : Self.configText(settingValue)
              entries["remotes.\(key).\(setting)"] = ConfigEntry(
                key: "remotes.\(key).\(setting)", value: shown, file: file)
            }
          } else {
            entries[section + "." + key] = ConfigEntry(key: section + "." + key, value: Self.configText(value), file: file)
          }
        }
      }
    }
    return entries.values.sorted { $0.key < $1.key }
  }

  /// The value of one setting as the workspace sees it (local over committed); throws
  /// `ConfigError.notSet` when neither file sets it.
  public func configValue(_ key: String, localOnly: Bool = false) throws -> ConfigEntry {
    let parsed = try ConfigKey(key)
    if case .remote(let name, nil) = parsed {
      throw ConfigError.remoteKey(key, "name one setting of remote '\(name)', e.g. remotes.\(name).url")
    }
    let canonical = Self.canonicalKey(parsed)
    guard let entry = try configEntries(localOnly: localOnly).first(where: { $0.key == canonical }) else {
      throw ConfigError.notSet(canonical, file: localOnly ? ".pipeline/config.local.yaml" : nil)
    }
    return entry
  }

  /// Sets one setting in config.yaml (config.local.yaml when `local`). The value is checked as
  /// the setting is read, and nothing is written when it is wrong. `remotes.NAME.url` of a new
  /// name adds the remote; other remote settings go through `dv remote modify`'s checks.
  public func setConfig(_ key: String, value: String, local: Bool) throws {
    switch try ConfigKey(key) {
    case .remote(let name, nil):
      throw ConfigError.remoteKey(key, "name one setting, e.g. remotes.\(name).url")
    case .remote(let name, let setting?):
      if config.remotes[name] == nil && setting == "url" {
        try addRemote(name: name, url: value, makeDefault: false, local: local)
      } else {
        try modifyRemote(name, key: setting, value: value, local: local)
      }
    case .setting(let section, let setting):
      if section == "core" && setting == "remote" && config.remotes[value] == nil {
        throw unknownRemote(value)
      }
      let text = section == "cache" && setting == "type" ? Self.flowList(value) : ConfigFileEditor.scalar(value)
      try editConfigChecked(local: local, key: key) { $0.setSetting(section: section, key: setting, value: text) }
    }
  }

  /// Removes one setting from config.yaml (config.local.yaml when `local`); `remotes.NAME`
  /// removes the remote from both files, as `dv remote remove` does.
  public func unsetConfig(_ key: String, local: Bool) throws {
    let parsed = try ConfigKey(key)
    let file = ".pipeline/" + (local ? "config.local.yaml" : "config.yaml")
    switch parsed {
    case .remote(let name, nil):
      try removeRemote(name)
    case .remote(let name, "url"):
      throw ConfigError.remoteKey(key, "a remote cannot lose its url; remove it with `dv config --unset remotes.\(name)`")
    case .remote(let name, let setting?):
      try editConfigChecked(local: local, key: key) { editor in
        guard editor.removeRemoteSetting(name, key: setting) else { throw ConfigError.notSet(key, file: file) }
      }
    case .setting(let section, let setting):
      let canonical = Self.canonicalKey(parsed)
      guard try configEntries(localOnly: local).contains(where: { $0.key == canonical && $0.file == file }) else {
        throw ConfigError.notSet(canonical, file: file)
      }
      try editConfigChecked(local: local, key: key) { $0.setSetting(section: section, key: setting, value: nil) }
    }
  }

  /// `editConfig`, refusing (with the setting named) an edit after which the config no longer
  /// reads: the same checks every command makes when it opens the workspace.
  private func editConfigChecked(local: Bool, key: String, _ body: (inout ConfigFileEditor) throws -> Void) throws {
    let lock = try lockForWriting()
    defer { lock.release() }
    try editConfig(local: local) { editor in
      try body(&editor)
      let edited = try editor.text()
      let files = try WorkspaceConfig.fileNames.map { name -> (name: String, text: String?) in
        let isEdited = (name == "config.local.yaml") == local
        return (".pipeline/" + name, isEdited ? edited : try FileSystem.readTextIfPresent(pipelineDirectory + "/" + name))
      }
      do {
        _ = try WorkspaceConfig.parse(files)
      } catch FileFormatError.invalid(_, let message) {
        throw ConfigError.invalidValue(key: key, message: message)
      }
    }
  }

  private static func canonicalKey(_ key: ConfigKey) -> String {
    switch key {
    case .setting(let section, let setting): return section + (setting.map { "." + $0 } ?? "")
    case .remote(let name, let setting): return "remotes." + name + (setting.map { "." + $0 } ?? "")
    }
  }

  /// A value as `dv config` prints it: a scalar's text, a sequence's items joined by ", ".
  private static func configText(_ node: Node) -> String {
    if let sequence = node.sequence { return sequence.map { configText($0) }.joined(separator: ", ") }
    return node.scalar?.string ?? ""
  }

  /// `hardlink,copy` or `[hardlink, copy]` as a YAML flow sequence.
  private static func flowList(_ value: String) -> String {
    let items = value.trimmingCharacters(in: CharacterSet(charactersIn: "[] ")).split(separator: ",")
      .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    return "[" + items.map(ConfigFileEditor.scalar).joined(separator: ", ") + "]"
  }
}
