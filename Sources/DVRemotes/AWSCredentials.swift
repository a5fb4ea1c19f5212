import DVBasics
import Foundation

/// An AWS access key (with a session token for temporary credentials) and where it was found.
/// Its description names the source and the key id, never the secret or the token.
package struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
  CustomReflectable
{
  package var accessKeyID: String
  package var secretAccessKey: String
  package var sessionToken: String?
  package var source: Source

  /// Where credentials came from, for messages ("check the credentials of profile 'ci'").
  package enum Source: Sendable, Equatable, CustomStringConvertible {
    /// `access_key_id` and `secret_access_key` of the remote (`.pipeline/config.local.yaml`).
    case remoteSettings(remote: String)
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    case environment
    /// A profile of the shared credentials or config file.
    case profile(name: String, file: String)

    public var description: String {
      switch self {
      case .remoteSettings(let remote): return "access_key_id of remote '\(remote)' in .pipeline/config.local.yaml"
      case .environment: return "AWS_ACCESS_KEY_ID in the environment"
      case .profile(let name, let file): return "profile '\(name)' (\(file))"
      }
    }
  }

  package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: Source) {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
    self.source = source
  }

  public var description: String { "AWS credentials '\(accessKeyID)' from \(source)" }
  public var debugDescription: String { description }
  /// Keeps `dump` and test failure output from printing the secret.
  public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID, "source": source]) }

  /// What to fix when these credentials are refused.
  package var refusalHint: String {
    switch source {
    case .remoteSettings(let remote):
      return
        "check the credentials of remote '\(remote)' (access_key_id and secret_access_key in .pipeline/config.local.yaml)"
    case .environment:
      return
        "check the credentials of AWS_ACCESS_KEY_ID in the environment (and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
    case .profile(let name, let file): return "check the credentials of profile '\(name)' in \(file)"
    }
  }
}

/// Finds the credentials and region of an S3 remote the way the AWS tools do, with the remote's
/// own settings first: `access_key_id`/`secret_access_key` of the remote, then its `profile`,
/// then `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, then `AWS_PROFILE` (or `default`) in
/// `~/.aws/credentials` and `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`).
package struct AWSCredentialResolver {
  package var settings: RemoteSettings
  package var environment: [String: String]

  package init(settings: RemoteSettings, environment: [String: String]) {
    self.settings = settings
    self.environment = environment
  }

  private func nonEmpty(_ value: String?) -> String? {
    guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
    return value
  }

  /// The profile to read: the remote's `profile`, else `AWS_PROFILE`, else `default`; and
  /// whether someone named it (then it must exist).
  package var profile: (name: String, named: Bool) {
    if let name = nonEmpty(settings.options["profile"]) { return (name, true) }
    if let name = nonEmpty(environment["AWS_PROFILE"]) { return (name, true) }
    return ("default", false)
  }

  /// `~/.aws/credentials`, or `AWS_SHARED_CREDENTIALS_FILE`.
  package var credentialsFile: String? {
    if let path = nonEmpty(environment["AWS_SHARED_CREDENTIALS_FILE"]) { return expand(path) }
    return nonEmpty(environment["HOME"]).map { $0 + "/.aws/credentials" }
  }

  /// `~/.aws/config`, or `AWS_CONFIG_FILE`.
  package var configFile: String? {
    if let path = nonEmpty(environment["AWS_CONFIG_FILE"]) { return expand(path) }
    return nonEmpty(environment["HOME"]).map { $0 + "/.aws/config" }
  }

  private func expand(_ path: String) -> String {
    guard path.hasPrefix("~/"), let home = nonEmpty(environment["HOME"]) else { return path }
    return home + path.dropFirst()
  }

  /// The settings of the profile: the credentials file's `[name]` section over the config file's
  /// `[profile name]` (`[default]` for the default profile); nil when neither has it.
  package func profileSettings() throws -> (values: [String: String], file: String)? {
    let (name, _) = profile
    var values: [String: String] = [:]
    var foundIn: [String] = []
    if let path = configFile, let text = try readIfPresent(path) {
      let sections = AWSConfigFile.parse(text)
      if let section = sections["profile \(name)"] ?? (name == "default" ? sections["default"] : nil) {
        values = section
        foundIn.append(path)
      }
    }
    if let path = credentialsFile, let text = try readIfPresent(path), let section = AWSConfigFile.parse(text)[name] {
      values.merge(section) { _, fromCredentials in fromCredentials }
      foundIn.insert(path, at: 0)
    }
    guard let file = foundIn.first else { return nil }
    return (values, file)
  }

  private func readIfPresent(_ path: String) throws -> String? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    do {
      return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
      throw RemoteError.invalidSetting(
        remote: settings.name, key: "profile", reason: "cannot be read: '\(path)' is unreadable (\(error))")
    }
  }

  /// The region: the remote's `region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
  /// `region`, else `us-east-1`.
  package func region() throws -> String {
    if let region = nonEmpty(settings.options["region"]) ?? nonEmpty(environment["AWS_REGION"])
      ?? nonEmpty(environment["AWS_DEFAULT_REGION"])
    {
      return region
    }
    return try nonEmpty(profileSettings()?.values["region"]) ?? "us-east-1"
  }

  /// The credentials, or `RemoteError.missingCredentials` saying where dv looked.
  package func credentials() throws -> AWSCredentials {
    let options = settings.options
    let id = nonEmpty(options["access_key_id"])
    let secret = nonEmpty(options["secret_access_key"])
    if id != nil || secret != nil {
      guard let id, let secret else {
        let missing = id == nil ? "access_key_id" : "secret_access_key"
        throw RemoteError.invalidSetting(
          remote: settings.name, key: missing,
          reason:
            "is missing while its pair is set; set it with 'dv remote modify --local \(settings.name) \(missing) ...'")
      }
      return AWSCredentials(
        accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(options["session_token"]),
        source: .remoteSettings(remote: settings.name))
    }
    let explicitProfile = nonEmpty(options["profile"]) != nil
    if !explicitProfile, let id = nonEmpty(environment["AWS_ACCESS_KEY_ID"]),
      let secret = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"])
    {
      return AWSCredentials(
        accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(environment["AWS_SESSION_TOKEN"]),
        source: .environment)
    }
    let (name, named) = profile
    if let (values, file) = try profileSettings() {
      if let id = nonEmpty(values["aws_access_key_id"]), let secret = nonEmpty(values["aws_secret_access_key"]) {
        return AWSCredentials(
          accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(values["aws_session_token"]),
          source: .profile(name: name, file: file))
      }
      let unsupported = ["role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file"]
        .filter { values[$0] != nil }
      if let first = unsupported.first {
        throw RemoteError.missingCredentials(
          remote: settings.name,
          hint:
            "profile '\(name)' uses \(first), which dv cannot follow; give it aws_access_key_id and aws_secret_access_key, export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run 'dv remote modify --local \(settings.name) access_key_id ...'"
        )
      }
    } else if named {
      throw RemoteError.missingCredentials(
        remote: settings.name,
        hint:
          "profile '\(name)' is in neither \(credentialsFile ?? "~/.aws/credentials") nor \(configFile ?? "~/.aws/config"); fix the profile name, or run 'dv remote modify --local \(settings.name) access_key_id ...'"
      )
    }
    throw RemoteError.missingCredentials(
      remote: settings.name,
      hint:
        "dv looked in the remote's settings (.pipeline/config.local.yaml), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and profile '\(name)' in \(credentialsFile ?? "~/.aws/credentials") and \(configFile ?? "~/.aws/config"); set them with 'dv remote modify --local \(settings.name) access_key_id ...' (and secret_access_key), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
  }
}

/// The INI-like files of the AWS tools: `[section]` headers, `key = value` lines, `#` and `;`
/// comments. Indented lines (nested settings such as `s3 =` blocks) are skipped.
package enum AWSConfigFile {
  /// Sections by their name as written between the brackets (spaces collapsed); keys lowercased.
  package static func parse(_ text: String) -> [String: [String: String]] {
    var sections: [String: [String: String]] = [:]
    var current: String?
    for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
      if let first = rawLine.first, first == " " || first == "\t" { continue }
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
      if line.hasPrefix("[") {
        guard let close = line.firstIndex(of: "]") else {
          current = nil
          continue
        }
        let name = line[line.index(after: line.startIndex)..<close]
          .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        current = name
        if sections[name] == nil { sections[name] = [:] }
        continue
      }
      guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
      let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
      var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
      // An inline comment needs whitespace before it: secrets may contain '#'.
      if let comment = value.range(of: " #") ?? value.range(of: "\t#") {
        value = value[..<comment.lowerBound].trimmingCharacters(in: .whitespaces)
      }
      sections[section]?[key] = value
    }
    return sections
  }
}
