import CDVSystem
import DVBasics
import Foundation

extension ObjectCache {
  /// Which link types place files from this cache into `directory`, found by trying each with
  /// a small file (what `materialize` would do), not guessed from the filesystem's name. The
  /// result maps every type to nil when it works, or the reason it does not. Nothing is left
  /// behind: the probe files are named as work files of this process, so a killed probe's
  /// leftovers are removed like any other.
  public func probeLinkTypes(into directory: String) -> [(type: LinkType, failure: String?)] {
    let pid = getpid()
    let source = tmp + "/obj.\(pid).link-probe"
    do {
      try FileSystem.createDirectory(tmp)
      try FileSystem.writeFile(Array("dv link probe\n".utf8), to: source, mode: 0o444)
    } catch {
      return LinkType.allCases.map { ($0, "cannot write a probe file in .pipeline/tmp: \(error)") }
    }
    defer { unlink(source) }
    return LinkType.allCases.map { type in
      let target = directory + "/.dv-link-probe.\(pid).\(type.rawValue)"
      defer { unlink(target) }
      return (type, Self.tryLink(type, from: source, to: target))
    }
  }

  /// Places `source` at `target` with `type`; nil on success, else the system's reason.
  private static func tryLink(_ type: LinkType, from source: String, to target: String) -> String? {
    switch type {
    case .hardlink:
      return link(source, target) == 0 ? nil : String(cString: strerror(errno))
    case .symlink:
      return symlink(source, target) == 0 ? nil : String(cString: strerror(errno))
    case .reflink, .copy:
      let src = dv_open(source, O_RDONLY | O_CLOEXEC, 0)
      guard src >= 0 else { return String(cString: strerror(errno)) }
      defer { close(src) }
      let dst = dv_open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
      guard dst >= 0 else { return String(cString: strerror(errno)) }
      defer { close(dst) }
      if type == .reflink {
        return dv_ficlone(dst, src) == 0 ? nil : String(cString: strerror(errno))
      }
      // A copy falls back to read and write where copy_file_range cannot go, so it always works
      // once the file can be created.
      return nil
    }
  }
}
