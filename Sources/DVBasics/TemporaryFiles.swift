import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// dv's temporary files carry the pid of the process writing them, so that one whose writer died
/// (a crash, `kill -9`) is recognised and removed by a later dv instead of lingering, and is
/// never taken for data meanwhile.
///
/// Two shapes exist: a sibling for an atomic replace, `.<name>.dvtmp.<pid>.<random>` next to the
/// file it will become, and files in `.pipeline/tmp` named `<kind>.<pid>.<rest>` (`obj.`,
/// `pack.`, `run.`, `download.`).
public enum TemporaryFiles {
  /// The marker inside a sibling's name.
  public static let siblingMarker = ".dvtmp."

  /// The temporary sibling of `path` this process writes before renaming it over `path`.
  public static func sibling(of path: String) -> String {
    let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
    return path[..<slash] + "." + path[slash...] + siblingMarker + "\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
  }

  /// The writer's pid of a temporary sibling's name, or nil when `name` (a file name, no
  /// slashes) is not one: `.<name>.dvtmp.<pid>.<digits>`.
  public static func writerOfSibling(_ name: String) -> Int32? {
    let utf8 = name.utf8
    guard utf8.first == UInt8(ascii: "."), let marker = name.range(of: siblingMarker, options: .backwards) else {
      return nil
    }
    let tail = name[marker.upperBound...].split(separator: ".", omittingEmptySubsequences: false)
    guard tail.count == 2, tail[1].allSatisfy(\.isASCIIDigit), !tail[1].isEmpty else { return nil }
    return pid(tail[0])
  }

  /// The writer's pid of a file dv keeps in `.pipeline/tmp` (`<kind>.<pid>.<rest>`, `kind` one
  /// of `kinds`), or of a temporary sibling there; nil for anything else.
  public static func writerOfWorkFile(_ name: String, kinds: [String]) -> Int32? {
    if let pid = writerOfSibling(name) { return pid }
    for kind in kinds where name.hasPrefix(kind + ".") {
      let rest = name.dropFirst(kind.count + 1)
      if let dot = rest.firstIndex(of: "."), let pid = pid(rest[..<dot]) { return pid }
    }
    return nil
  }

  /// True when no process `pid` exists here any more (its temporary files are nobody's).
  public static func isGone(_ pid: Int32) -> Bool {
    pid > 0 && kill(pid, 0) != 0 && errno == ESRCH
  }

  /// Deletes the files directly in `directory` that `writer` attributes to a process that is
  /// gone; returns how many. Files of live processes (a concurrent dv) are left alone.
  @discardableResult
  public static func removeAbandoned(in directory: String, writer: (String) -> Int32?) -> Int {
    guard let entries = try? FileSystem.listDirectory(directory) else { return 0 }
    var removed = 0
    for entry in entries where entry.type != UInt8(DT_DIR) {
      guard let pid = writer(entry.name), isGone(pid) else { continue }
      if unlink(directory + "/" + entry.name) == 0 { removed += 1 }
    }
    return removed
  }

  private static func pid(_ text: Substring) -> Int32? {
    guard !text.isEmpty, text.count <= 10, text.allSatisfy(\.isASCIIDigit) else { return nil }
    return Int32(text)
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
