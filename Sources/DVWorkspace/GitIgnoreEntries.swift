import DVBasics
import Foundation

/// Keeps tracked data out of git: `data/raw` gets the line `/raw` in `data/.gitignore`.
enum GitIgnoreEntries {
  /// Adds the entry for `path` unless it is there; returns the .gitignore path when it changed.
  static func add(_ path: RelativePath, root: String) throws -> RelativePath? {
    let file = path.parent.appending(".gitignore")
    let absolute = file.absolute(under: root)
    let line = "/" + path.basename
    let existing = try FileSystem.readTextIfPresent(absolute) ?? ""
    let lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    if lines.contains(line) { return nil }
    var text = existing
    if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
    text += line + "\n"
    try FileSystem.writeAtomically(text, to: absolute)
    return file
  }
}
