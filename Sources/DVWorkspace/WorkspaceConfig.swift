import DVBasics
import DVPipeline
import DVRemotes
import DVStorage
import Foundation
import Yams

/// Settings from `.pipeline/config.yaml`, overridden by `.pipeline/config.local.yaml`.
public struct WorkspaceConfig: Sendable, Equatable {
  /// The format version written by this dv.
  public static let version = 1
  /// How the git hooks behave (`hooks:`).
  public var hooks = HookSettings()

  /// True when the workspace lives outside git (`dv init --no-scm`): no .gitignore entries.
  public var noSCM = false
  /// Link strategies tried in order to place cached files in the workspace (`cache.type`).
  public var cacheTypes: [LinkType] = [.reflink, .copy]
  /// The remote `push`, `pull` and `fetch` use without `-r` (`core.remote`).
  public var defaultRemote: String?
  /// Remotes by name (`remotes:`), settings of config.local.yaml overriding config.yaml's.
  public var remotes: [String: RemoteSettings] = [:]
  /// Where stages run unless they or the command line say otherwise (`executor:`).
  public var executor = ExecutorKind.local
  /// What every stage asks of a cluster unless it says otherwise (`resources:`).
  public var resources = StageResources()
  /// Seconds between two status queries of the Slurm executor (`slurm.poll_interval`).
  public var slurmPollInterval = 0.1

  public init() {}

  /// The two files, in the order they are applied: the committed one, then the local overrides.
  static let fileNames = ["config.yaml", "config.local.yaml"]

  /// The settings of each section other than `remotes:` (`dv config SECTION.KEY`).
  static let sections: [String: Set<String>] = [
    "core": ["no_scm", "remote"],
    "cache": ["type"],
    "hooks": HookSettings.keys,
    "resources": StageResources.keys,
    "slurm": ["poll_interval"],
  ]

  /// Settings that are a top-level scalar rather than a section (`dv config KEY`).
  static let scalars: Set<String> = ["executor"]

  /// Reads the committed config and the local overrides.
  static func load(pipelineDirectory: String) throws -> WorkspaceConfig {
    try parse(
      fileNames.map { name in
        (name: ".pipeline/" + name, text: try FileSystem.readTextIfPresent(pipelineDirectory + "/" + name))
      })
  }

  /// The settings of config files' texts (nil for an absent file), applied in order.
  static func parse(_ files: [(name: String, text: String?)]) throws -> WorkspaceConfig {
    var config = WorkspaceConfig()
    for file in files {
      guard let text = file.text else { continue }
      do {
        try config.apply(YAMLFile(text: text, name: file.name))
      } catch FileFormatError.invalid(let location, let message) where message.contains("duplicated keys") {
        // Typically a block appended by a script to a file that had one.
        throw FileFormatError.invalid(
          location, message + "; keep one of them (`dv config SECTION.KEY VALUE` changes a setting in place)")
      }
    }
    return config
  }

  private mutating func apply(_ file: YAMLFile) throws {
    guard file.root != nil else { return }
    let entries = try file.rootMapping(
      allowed: Set(Self.sections.keys).union(Self.scalars).union(["version", "remotes"]), what: "the config")
    try file.checkVersion(entries, supported: Self.version)
    for entry in entries {
      switch entry.key {
      case "core":
        for item in try file.mapping(entry.value, allowed: Self.sections["core"]!, what: "'core'") {
          if item.key == "remote" {
            guard let name = item.value.scalar?.string, !name.isEmpty else {
              throw file.error(item.value, "core.remote must be the name of a remote")
            }
            defaultRemote = name
          } else {
            noSCM = try file.boolean(item.value, key: "core.no_scm")
          }
        }
      case "remotes":
        guard let remotesMapping = entry.value.mapping else {
          throw file.error(entry.value, "'remotes' must map names to settings ({NAME: {url: ...}})")
        }
        for (nameNode, settingsNode) in remotesMapping {
          guard let name = nameNode.scalar?.string, let settings = settingsNode.mapping else {
            throw file.error(settingsNode, "each remote must map setting names to values ({url: ..., region: ...})")
          }
          var remote = remotes[name] ?? RemoteSettings(name: name, url: "")
          for (keyNode, valueNode) in settings {
            guard let key = keyNode.scalar?.string, let value = valueNode.scalar?.string else {
              throw file.error(valueNode, "settings of remote '\(name)' must be plain values")
            }
            if key == "url" { remote.url = value } else { remote.options[key] = value }
          }
          remotes[name] = remote
        }
      case "cache":
        for item in try file.mapping(entry.value, allowed: Self.sections["cache"]!, what: "'cache'") {
          let values: [Yams.Node]
          if let sequence = item.value.sequence { values = Array(sequence) } else { values = [item.value] }
          var types: [LinkType] = []
          for value in values {
            let names = (value.scalar?.string ?? "").split(separator: ",").map {
              $0.trimmingCharacters(in: .whitespaces)
            }
            for name in names {
              guard let type = LinkType(rawValue: name) else {
                throw file.error(
                  value, "unknown cache.type '\(name)' (use reflink, hardlink, symlink or copy, in the order to try)")
              }
              types.append(type)
            }
          }
          if types.isEmpty {
            throw file.error(item.value, "cache.type must name at least one of reflink, hardlink, symlink, copy")
          }
          cacheTypes = types
        }
      case "hooks":
        try hooks.apply(file, entry.value)
      case "executor":
        let name = entry.value.scalar?.string ?? ""
        guard let kind = ExecutorKind(rawValue: name) else {
          throw file.error(entry.value, "unknown executor '\(name)' (use local or slurm)")
        }
        executor = kind
      case "resources":
        let parsed = try StageResources.parse(entry.value, in: file, what: "'resources'") { node, key in
          guard let text = node.scalar?.string else { throw file.error(node, "\(key) must be a plain value") }
          return text
        }
        resources = parsed.over(resources)
      case "slurm":
        for item in try file.mapping(entry.value, allowed: Self.sections["slurm"]!, what: "'slurm'") {
          let text = item.value.scalar?.string ?? ""
          guard let seconds = Double(text), seconds >= 0.01, seconds <= 60 else {
            throw file.error(item.value, "slurm.poll_interval must be seconds from 0.01 to 60, not '\(text)'")
          }
          slurmPollInterval = seconds
        }
      default:
        break
      }
    }
  }

  /// The YAML text of a new workspace's config.
  static func initialText(noSCM: Bool) -> String {
    """
    version: \(version)
    core:
      no_scm: \(noSCM)
    cache:
      # Strategies tried in order to place cached files in the workspace:
      # reflink, hardlink, symlink, copy.
      type: [reflink, copy]

    """
  }
}
