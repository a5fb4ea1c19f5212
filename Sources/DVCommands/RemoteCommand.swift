import ArgumentParser
import DVWorkspace

struct RemoteCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "remote", abstract: "Configure the remotes data is pushed to and pulled from.",
    subcommands: [RemoteAddCommand.self, RemoteListCommand.self, RemoteRemoveCommand.self, RemoteModifyCommand.self])
}

struct RemoteAddCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "add", abstract: "Add a remote: s3://bucket/prefix, gs://bucket/prefix, a path or file://.")

  @OptionGroup var global: GlobalOptions

  @Flag(name: [.customShort("d"), .long], help: "Make it the default remote.")
  var `default` = false

  @Flag(help: "Write it to .pipeline/config.local.yaml (not committed) instead of config.yaml.")
  var local = false

  @Argument(help: "The remote's name.")
  var name: String

  @Argument(help: "Its URL; a relative path is relative to the workspace root.")
  var url: String

  func run() throws {
    try global.workspace().addRemote(name: name, url: url, makeDefault: `default`, local: local)
    print("added remote '\(name)'\(`default` ? " (default)" : "")")
  }
}

struct RemoteListCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "List the remotes, their URLs and settings (secrets masked).")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Print the list as JSON.")
  var json = false

  func run() throws {
    let remotes = try global.workspace().remotes()
    if json {
      try Terminal.printJSON(
        remotes.map { ["name": $0.name, "url": $0.url, "default": $0.isDefault, "settings": $0.settings] })
      return
    }
    if remotes.isEmpty { print("no remotes; add one with `dv remote add NAME URL`") }
    for remote in remotes {
      print("\(remote.name)\t\(remote.url)\(remote.isDefault ? "\t(default)" : "")")
      for (key, value) in remote.settings.sorted(by: { $0.key < $1.key }) { print("    \(key): \(value)") }
    }
  }
}

struct RemoteRemoveCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "remove", abstract: "Remove a remote from the configuration (its data stays where it is).")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "The remote's name.")
  var name: String

  func run() throws {
    try global.workspace().removeRemote(name)
    print("removed remote '\(name)'")
  }
}

struct RemoteModifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "modify",
    abstract: "Set a remote's setting (url, endpoint, region, profile, credentialpath, jobs, ...).",
    discussion:
      "Secrets (access_key_id, secret_access_key, session_token, token) go only to config.local.yaml: use --local.")

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Write to .pipeline/config.local.yaml (not committed) instead of config.yaml.")
  var local = false

  @Argument(help: "The remote's name.")
  var name: String

  @Argument(help: "The setting.")
  var key: String

  @Argument(help: "Its value.")
  var value: String

  func run() throws {
    try global.workspace().modifyRemote(name, key: key, value: value, local: local)
    print("set \(key) of remote '\(name)'\(local ? " in .pipeline/config.local.yaml" : "")")
  }
}
