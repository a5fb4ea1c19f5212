import ArgumentParser
import DVWorkspace

struct ConfigCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "config",
    abstract: "Read or change a setting of .pipeline/config.yaml (or config.local.yaml with --local).",
    discussion: """
      Keys: core.remote, core.no_scm, cache.type (e.g. hardlink,copy), hooks.pre_commit (check|warn),
      hooks.pre_push and hooks.post_checkout (on|off), remotes.NAME.KEY (url, endpoint, region, ...;
      remotes.NAME.url of a new name adds the remote). Secrets go only to --local.
      Comments and the order of other lines are kept.
      """)

  @OptionGroup var global: GlobalOptions

  @Flag(help: "Use .pipeline/config.local.yaml (not committed) instead of config.yaml.")
  var local = false

  @Flag(name: [.short, .long], help: "List every setting the config files set (local over committed; secrets masked).")
  var list = false

  @Flag(help: "Remove the setting (remotes.NAME: the remote).")
  var unset = false

  @Flag(help: "With --list or KEY: also print the file each value comes from.")
  var showOrigin = false

  @Flag(help: "Print JSON.")
  var json = false

  @Argument(help: "The setting, as SECTION.KEY or remotes.NAME.KEY.")
  var key: String?

  @Argument(help: "The value to set.")
  var value: String?

  func validate() throws {
    if list && (key != nil || unset) { throw ValidationError("--list takes no key and no --unset") }
    if !list && key == nil { throw ValidationError("name a KEY, or pass --list") }
    if unset && value != nil { throw ValidationError("--unset takes a key and no value") }
  }

  func run() throws {
    let workspace = try global.workspace()
    if list {
      render(try workspace.configEntries(localOnly: local))
    } else if let key, unset {
      try workspace.unsetConfig(key, local: local)
    } else if let key, let value {
      try workspace.setConfig(key, value: value, local: local)
    } else if let key {
      render([try workspace.configValue(key, localOnly: local)], valueOnly: true)
    }
  }

  private func render(_ entries: [ConfigEntry], valueOnly: Bool = false) {
    if json {
      try? Terminal.printJSON(entries.map { ["key": $0.key, "value": $0.value, "file": $0.file] })
      return
    }
    for entry in entries {
      let text = valueOnly ? entry.value : entry.key + "=" + entry.value
      print(showOrigin ? entry.file + "\t" + text : text)
    }
  }
}
