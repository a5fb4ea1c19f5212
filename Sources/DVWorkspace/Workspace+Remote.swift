import DVBasics
import DVLineage
import DVPipeline
import DVRemotes
import DVStorage
import Foundation
import Yams

/// Errors of remote configuration and transfers that are not the remote's own.
public enum RemoteConfigError: DVError {
  /// No remote has this name.
  case unknownRemote(String, known: [String])
  /// No `-r NAME` and no `core.remote`.
  case noDefaultRemote
  /// `remote add` of a name in use.
  case remoteExists(String)
  /// A remote name with characters that do not belong in one.
  case invalidName(String)
  /// A secret setting was to be written to the committed config.yaml.
  case secretInCommittedConfig(remote: String, key: String)
  /// A setting the remote's kind does not have.
  case unknownSetting(remote: String, key: String, known: [String])
  /// A remote (from config.local.yaml alone) without a URL.
  case noURL(String)
  /// A destructive remote operation without `--yes`.
  case confirmationNeeded(String)
  /// Objects failed to transfer; the first error says why.
  case transferFailed(count: Int, first: String)

  public var kind: FailureKind {
    switch self {
    case .transferFailed: return .failed
    default: return .badInput
    }
  }

  public var description: String {
    switch self {
    case .unknownRemote(let name, let known):
      let list = known.isEmpty ? "none is configured" : "configured: " + known.map { "'\($0)'" }.joined(separator: ", ")
      return "no remote named '\(name)' (\(list)); add one with `dv remote add NAME URL`"
    case .noDefaultRemote:
      return "no remote given and no default remote; pass -r NAME or set one with `dv remote add -d NAME URL`"
    case .remoteExists(let name):
      return "a remote named '\(name)' already exists; change it with `dv remote modify` or remove it first"
    case .invalidName(let name):
      return "'\(name)' is not a valid remote name (use letters, digits, '-', '_' and '.')"
    case .secretInCommittedConfig(let remote, let key):
      return
        "'\(key)' is a secret and .pipeline/config.yaml is committed; use `dv remote modify --local \(remote) \(key) VALUE` to keep it in .pipeline/config.local.yaml"
    case .unknownSetting(let remote, let key, let known):
      return "remote '\(remote)' has no setting '\(key)' (known: \(known.joined(separator: ", ")))"
    case .noURL(let name):
      return "remote '\(name)' has no url; set one with `dv remote modify \(name) url URL`"
    case .confirmationNeeded(let what):
      return "\(what); pass --yes to confirm, or --dry-run to see what it would do"
    case .transferFailed(let count, let first):
      return count == 1 ? first : "\(count) objects failed to transfer; the first: \(first)"
    }
  }
}

/// A configured remote as `dv remote list` shows it: secrets masked.
public struct RemoteDescription: Sendable {
  public var name: String
  public var url: String
  public var isDefault: Bool
  /// Settings other than `url`; secret values are `****`.
  public var settings: [String: String]
}

extension Workspace {
  /// The configured remotes, sorted by name, with secrets masked.
  public func remotes() -> [RemoteDescription] {
    config.remotes.values.sorted { $0.name < $1.name }.map { remote in
      var settings = remote.options
      for key in settings.keys where RemoteScheme.secretKeys.contains(key) { settings[key] = "****" }
      return RemoteDescription(
        name: remote.name, url: remote.url, isDefault: remote.name == config.defaultRemote, settings: settings)
    }
  }

  /// Adds a remote to config.yaml (or config.local.yaml when `local`), as the default when asked.
  public func addRemote(name: String, url: String, makeDefault: Bool, local: Bool) throws {
    guard name.range(of: "^[A-Za-z0-9_][A-Za-z0-9_.-]*$", options: .regularExpression) != nil else {
      throw RemoteConfigError.invalidName(name)
    }
    if config.remotes[name] != nil { throw RemoteConfigError.remoteExists(name) }
    try Self.checkRemoteURL(url)
    let lock = try lockForWriting()
    defer { lock.release() }
    try editConfig(local: local) { editor in
      editor.setRemoteSetting(name, key: "url", value: url)
      if makeDefault { editor.setDefaultRemote(name) }
    }
  }

  /// Removes a remote from both config files (and as the default).
  public func removeRemote(_ name: String) throws {
    guard config.remotes[name] != nil else { throw unknownRemote(name) }
    let lock = try lockForWriting()
    defer { lock.release() }
    for local in [false, true] {
      try editConfig(local: local) { editor in
        editor.removeRemote(name)
        if editor.currentDefault == name { editor.setDefaultRemote(nil) }
      }
    }
  }

  /// Sets one setting of a remote. Secrets are refused in config.yaml; keys the remote's kind
  /// does not have are refused everywhere.
  public func modifyRemote(_ name: String, key: String, value: String, local: Bool) throws {
    guard let remote = config.remotes[name] else { throw unknownRemote(name) }
    if key == "url" {
      try Self.checkRemoteURL(value)
    } else {
      let scheme = try RemoteScheme(url: remote.url.isEmpty ? value : remote.url)
      guard scheme.settingKeys.contains(key) else {
        throw RemoteConfigError.unknownSetting(remote: name, key: key, known: ["url"] + scheme.settingKeys.sorted())
      }
      if key == "jobs", (Int(value) ?? 0) < 1 {
        throw RemoteError.invalidSetting(remote: name, key: key, reason: "must be a whole number of at least 1")
      }
      if RemoteTimeouts.settingKeys.contains(key) { _ = try RemoteTimeouts.seconds(value, remote: name, key: key) }
      if RemoteScheme.secretKeys.contains(key) && !local {
        throw RemoteConfigError.secretInCommittedConfig(remote: name, key: key)
      }
    }
    let lock = try lockForWriting()
    defer { lock.release() }
    try editConfig(local: local) { $0.setRemoteSetting(name, key: key, value: value) }
  }

  /// Throws for a URL of no known kind, or one that carries credentials (`s3://key:secret@bucket`).
  static func checkRemoteURL(_ url: String) throws {
    _ = try RemoteScheme(url: url)
    if url.contains("://"),
      let authority = url.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first,
      authority.contains("@")
    {
      throw RemoteError.invalidURL(
        SecretScrubber.scrub(url), reason: "credentials do not belong in the URL; use `dv remote modify --local`")
    }
  }

  func unknownRemote(_ name: String) -> RemoteConfigError {
    RemoteConfigError.unknownRemote(name, known: config.remotes.keys.sorted())
  }

  /// The settings of remote `name`, or of the default remote.
  func remoteSettings(named name: String?) throws -> RemoteSettings {
    guard let chosen = name ?? config.defaultRemote else { throw RemoteConfigError.noDefaultRemote }
    guard let settings = config.remotes[chosen] else { throw unknownRemote(chosen) }
    guard !settings.url.isEmpty else { throw RemoteConfigError.noURL(chosen) }
    return settings
  }

  /// Opens a remote and a transfer engine over it (`jobs` nil: the default for its kind).
  func transferEngine(remote name: String?, jobs: Int?, environment: [String: String]) throws -> TransferEngine {
    let settings = try remoteSettings(named: name)
    let scheme = try RemoteScheme(url: settings.url)
    var options = settings
    let configuredJobs = options.options.removeValue(forKey: "jobs")
    let remote = try RemoteFactory.make(options, environment: environment, relativeTo: root)
    let count = jobs ?? configuredJobs.flatMap { Int($0) } ?? TransferEngine.defaultJobs(network: scheme.isNetwork)
    return TransferEngine(
      remote: remote, jobs: count, progress: progress, workDirectory: pipelineDirectory + "/tmp",
      packIndexDirectory: packIndexDirectory(url: settings.url))
  }

  /// Where the local copy of a remote's pack indexes lives (docs/formats.md §6): under
  /// `.pipeline/tmp`, as it is only a cache.
  func packIndexDirectory(url: String) -> String {
    pipelineDirectory + "/tmp/remotes/" + SHA256Hasher.hash(Array(url.utf8)).hex + "/packs"
  }

  /// Reads a config file, lets `body` change it, and writes it back atomically.
  func editConfig(local: Bool, _ body: (inout ConfigFileEditor) throws -> Void) throws {
    let file = local ? "config.local.yaml" : "config.yaml"
    let path = pipelineDirectory + "/" + file
    let original = try FileSystem.readTextIfPresent(path)
    var editor = try ConfigFileEditor(
      text: original ?? "version: \(WorkspaceConfig.version)\n", name: ".pipeline/" + file)
    try body(&editor)
    let text = try editor.text()
    if text != original { try FileSystem.writeAtomically(text, to: path, mode: local ? 0o600 : 0o644) }
  }
}

