import DVBasics
import DVPipeline
import Foundation
import Yams

/// Edits a config file (`.pipeline/config.yaml` or `config.local.yaml`) line by line, keeping
/// every line it does not change, comments included: the `remotes:` section, and any
/// `section.key` setting of a block-style section (`core.remote`, `cache.type`, ...).
///
/// The result is parsed again before it is returned, so an edit never writes a file dv cannot
/// read back.
struct ConfigFileEditor {
  private var lines: [String]
  private let name: String
  /// Remotes in file order, each with its settings in file order.
  private var remotes: [(name: String, settings: [(key: String, value: String)])] = []
  private var remotesChanged = false
  /// `section.key` settings to write, in order: a YAML value's text, or nil to remove the key.
  private var settingChanges: [(section: String, key: String?, value: String?)] = []
  /// `core.remote` as read.
  private(set) var currentDefault: String?

  init(text: String, name: String) throws {
    self.name = name
    lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch {
      throw FileFormatError.invalid(
        SourceLocation(file: name, line: 1, column: 1), "not valid YAML; fix it by hand first (\(error))")
    }
    guard let mapping = node?.mapping else { return }
    if let core = mapping["core"]?.mapping, let remote = core["remote"]?.scalar?.string { currentDefault = remote }
    if let entries = mapping["remotes"]?.mapping {
      for (nameNode, settingsNode) in entries {
        guard let remoteName = nameNode.scalar?.string else { continue }
        var settings: [(String, String)] = []
        for (key, value) in settingsNode.mapping ?? [:] {
          if let key = key.scalar?.string, let value = value.scalar?.string { settings.append((key, value)) }
        }
        remotes.append((remoteName, settings))
      }
    }
  }

  /// The names of the remotes this file has.
  var remoteNames: [String] { remotes.map(\.name) }

  /// Sets `core.remote` to `name`, or removes it when nil.
  mutating func setDefaultRemote(_ name: String?) {
    setSetting(section: "core", key: "remote", value: name.map(Self.scalar))
  }

  /// Sets `section.key` to the YAML text `value` (a scalar or a flow sequence), or removes the
  /// key when nil (and the section with it when nothing else is left in it). A nil `key` sets
  /// the top-level scalar `section:` itself.
  mutating func setSetting(section: String, key: String?, value: String?) {
    settingChanges.append((section, key, value))
  }

  mutating func setRemoteSetting(_ remote: String, key: String, value: String) {
    remotesChanged = true
    guard let index = remotes.firstIndex(where: { $0.name == remote }) else {
      remotes.append((remote, [(key, value)]))
      return
    }
    if let at = remotes[index].settings.firstIndex(where: { $0.key == key }) {
      remotes[index].settings[at].value = value
    } else if key == "url" {
      remotes[index].settings.insert((key, value), at: 0)
    } else {
      remotes[index].settings.append((key, value))
    }
  }

  /// Removes one setting of a remote; false when this file does not have it.
  mutating func removeRemoteSetting(_ remote: String, key: String) -> Bool {
    guard let index = remotes.firstIndex(where: { $0.name == remote }),
      let at = remotes[index].settings.firstIndex(where: { $0.key == key })
    else { return false }
    remotes[index].settings.remove(at: at)
    remotesChanged = true
    return true
  }

  mutating func removeRemote(_ remote: String) {
    guard let index = remotes.firstIndex(where: { $0.name == remote }) else { return }
    remotes.remove(at: index)
    remotesChanged = true
  }

  /// The edited text.
  func text() throws -> String {
    var out = lines
    if remotesChanged {
      out = Self.removingBlock("remotes", from: out)
      if !remotes.isEmpty {
        out.append("remotes:")
        for remote in remotes {
          out.append("  " + Self.scalar(remote.name) + ":")
          for setting in remote.settings {
            out.append("    " + Self.scalar(setting.key) + ": " + Self.scalar(setting.value))
          }
        }
      }
    }
    for change in settingChanges {
      out = try Self.setting(change.section, change.key, to: change.value, in: out, file: name)
    }
    let text = out.joined(separator: "\n") + "\n"
    do {
      _ = try Yams.compose(yaml: text)
    } catch {
      throw FileFormatError.invalid(
        SourceLocation(file: name, line: 1, column: 1), "dv could not edit it safely; edit it by hand (\(error))")
    }
    return text
  }

  /// A YAML scalar, quoted when plain style would read back differently.
  static func scalar(_ value: String) -> String {
    let plain = value.range(of: "^[A-Za-z0-9_./][A-Za-z0-9_./:@+=-]*$", options: .regularExpression) != nil
    if plain, let reads = (try? Yams.load(yaml: value)) as? String, reads == value { return value }
    var quoted = "\""
    for c in value.unicodeScalars {
      switch c {
      case "\"": quoted += "\\\""
      case "\\": quoted += "\\\\"
      case "\n": quoted += "\\n"
      case "\t": quoted += "\\t"
      default: quoted.unicodeScalars.append(c)
      }
    }
    return quoted + "\""
  }

  /// Whether a line starts the top-level key `key`.
  private static func startsKey(_ line: String, _ key: String) -> Bool {
    line == key + ":" || line.hasPrefix(key + ":") && (line.dropFirst(key.count + 1).first.map { $0 == " " } ?? true)
  }

  /// Whether a line belongs to the block above it: blank, or indented.
  private static func isInsideBlock(_ line: String) -> Bool {
    line.isEmpty || line.first == " " || line.first == "\t"
  }

  /// The line without its indentation.
  private static func trimmed(_ line: String) -> Substring {
    line.drop { $0 == " " || $0 == "\t" }
  }

  /// The lines without the top-level block `key:` (its line and the indented lines after it).
  private static func removingBlock(_ key: String, from lines: [String]) -> [String] {
    var out: [String] = []
    var inside = false
    for line in lines {
      if startsKey(line, key) {
        inside = true
        continue
      }
      if inside && isInsideBlock(line) { continue }
      inside = false
      out.append(line)
    }
    return out
  }

  /// The lines with `section.key` set to the YAML text `value`, or removed when nil. The old
  /// value's own lines (a block sequence under the key) go with it.
  private static func setting(
    _ section: String, _ key: String?, to value: String?, in lines: [String], file: String
  ) throws -> [String] {
    guard let key else {
      // A top-level scalar: its line (and any block value under it) becomes `section: value`.
      let kept = removingBlock(section, from: lines)
      guard let value else { return kept }
      guard let at = lines.firstIndex(where: { startsKey($0, section) }) else { return lines + [section + ": " + value] }
      return Array(kept[..<at]) + [section + ": " + value] + kept[at...]
    }
    guard let start = lines.firstIndex(where: { startsKey($0, section) }) else {
      return value.map { lines + [section + ":", "  " + key + ": " + $0] } ?? lines
    }
    let rest = lines[start].dropFirst(section.count + 1).trimmingCharacters(in: .whitespaces)
    guard rest.isEmpty || rest.hasPrefix("#") else {
      throw FileFormatError.invalid(
        SourceLocation(file: file, line: start + 1, column: section.count + 3),
        "dv edits '\(section)' only in block style (\(section):\\n  \(key): VALUE); change it by hand or rewrite it so")
    }
    var end = start + 1
    while end < lines.count, isInsideBlock(lines[end]) { end += 1 }
    // The block's indentation is that of its first key; its keys are the lines at exactly it.
    let content = (start + 1..<end).filter { !trimmed(lines[$0]).isEmpty && !trimmed(lines[$0]).hasPrefix("#") }
    let indent = content.first.map { String(lines[$0].prefix(lines[$0].count - trimmed(lines[$0]).count)) } ?? "  "
    let isKeyLine = { (i: Int) -> Bool in
      lines[i].count - trimmed(lines[i]).count == indent.count && startsKey(String(trimmed(lines[i])), key)
    }
    var block = Array(lines[(start + 1)..<end])
    if let at = content.first(where: isKeyLine) {
      // The key's line and its value's lines after it: more indented ones, and a block
      // sequence's items, which YAML allows at the key's own indentation.
      var last = at + 1
      while last < end, !lines[last].isEmpty {
        let depth = lines[last].count - trimmed(lines[last]).count
        guard depth > indent.count || (depth == indent.count && trimmed(lines[last]).hasPrefix("-")) else { break }
        last += 1
      }
      let replacement = value.map { [indent + key + ": " + $0] } ?? []
      block.replaceSubrange((at - start - 1)..<(last - start - 1), with: replacement)
    } else if let value {
      let after = (content.last ?? start) - start
      block.insert(indent + key + ": " + value, at: after)
    }
    let keepsContent = block.contains { !trimmed($0).isEmpty && !trimmed($0).hasPrefix("#") }
    let head = Array(lines[..<start]) + (keepsContent ? [lines[start]] + block : [])
    let tail = Array(lines[end...])
    // A section removed whole takes its comments with it, but leaves the blank lines that
    // separated it from what follows.
    return keepsContent ? head + tail : head + block.filter { $0.isEmpty }.prefix(1) + tail
  }
}
