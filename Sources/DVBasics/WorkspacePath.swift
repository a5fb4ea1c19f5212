/// A normalized path relative to the workspace root that cannot leave it: no leading `/`,
/// no `.` or `..` components, `/` separators, never empty (the root itself is `"."`).
public struct RelativePath: Hashable, Sendable, Comparable, CustomStringConvertible {
  /// The path as written in pointer files and lock files, e.g. `data/raw`.
  public let value: String

  /// The workspace root itself.
  public static let root = RelativePath(trusted: ".")

  init(trusted value: String) { self.value = value }

  /// Validates a path as written in a workspace file (a pointer's `path`, a lock entry).
  /// Returns nil when it is absolute, leaves the workspace or holds a NUL.
  public init?(validating text: String) {
    // A NUL ends the path where the system reads it: "a/..\0" would name "a/..".
    guard !text.isEmpty, !text.hasPrefix("/"), !text.utf8.contains(0) else { return nil }
    var parts: [Substring] = []
    for part in text.split(separator: "/", omittingEmptySubsequences: true) {
      if part == "." { continue }
      if part == ".." {
        if parts.isEmpty { return nil }
        parts.removeLast()
        continue
      }
      parts.append(part)
    }
    value = parts.isEmpty ? "." : parts.joined(separator: "/")
  }

  public var description: String { value }

  /// The path components; empty for the root.
  public var components: [Substring] { value == "." ? [] : value.split(separator: "/") }

  /// The last component (the root's is ".").
  public var basename: String { components.last.map(String.init) ?? "." }

  /// The parent directory; the root's parent is the root.
  public var parent: RelativePath {
    guard let slash = value.lastIndex(of: "/") else { return .root }
    return RelativePath(trusted: String(value[..<slash]))
  }

  /// `self/name`.
  public func appending(_ name: String) -> RelativePath {
    RelativePath(validating: value == "." ? name : value + "/" + name) ?? self
  }

  /// True when `self` equals `other` or lies inside it.
  public func isInside(_ other: RelativePath) -> Bool {
    if other.value == "." { return true }
    return value == other.value || value.hasPrefix(other.value + "/")
  }

  /// The first of `self`'s proper ancestors (`a` and `a/b` of `a/b/c`) that is a symbolic link
  /// under `root`; nil when none is. Writing or deleting through such a link could reach outside
  /// the workspace.
  public func symlinkedAncestor(under root: String) -> RelativePath? {
    var prefix = ""
    for component in components.dropLast() {
      prefix = prefix.isEmpty ? String(component) : prefix + "/" + component
      var st = stat()
      if lstat(root + "/" + prefix, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
        return RelativePath(trusted: prefix)
      }
    }
    return nil
  }

  /// Throws `PathError.throughSymlink` when a proper ancestor of `self` is a symbolic link.
  public func requireNoSymlinkedAncestor(under root: String) throws {
    if let link = symlinkedAncestor(under: root) { throw PathError.throughSymlink(value, link: link.value) }
  }

  /// The absolute path under `root`.
  public func absolute(under root: String) -> String {
    value == "." ? root : root + "/" + value
  }

  /// Byte-wise order, the order of tree manifests.
  public static func < (a: RelativePath, b: RelativePath) -> Bool {
    utf8Precedes(a.value, b.value)
  }
}

/// Errors about paths a user gave.
public enum PathError: DVError {
  /// The path resolves outside the workspace root.
  case outsideWorkspace(String, root: String)
  /// The path does not exist.
  case missing(String)
  /// The path lies inside dv's own `.pipeline` directory.
  case insideMetadata(String)
  /// A directory (or another non-file) stands where dv reads a file.
  case notAFile(String)
  /// The path leads through a symbolic link (`link`), which could take it out of the workspace.
  case throughSymlink(String, link: String)

  public var kind: FailureKind { .badInput }

  public var description: String {
    switch self {
    case .outsideWorkspace(let p, let root):
      return "'\(p)' is outside the workspace '\(root)'; dv only tracks paths inside it"
    case .missing(let p):
      return "'\(p)' does not exist; check the path"
    case .insideMetadata(let p):
      return "'\(p)' is inside .pipeline/, which dv manages itself; track data outside it"
    case .notAFile(let p):
      return "'\(p)' is a directory where dv expects a file; move it away"
    case .throughSymlink(let p, let link):
      return "'\(p)' lies under '\(link)', a symbolic link that may lead out of the workspace; use the real path"
    }
  }
}

/// Turns paths given on the command line into workspace-relative paths.
public struct PathResolver: Sendable {
  /// The absolute, symlink-free workspace root.
  public let root: String
  /// The absolute current directory.
  public let currentDirectory: String

  public init(root: String, currentDirectory: String) {
    self.root = root
    self.currentDirectory = currentDirectory
  }

  /// Resolves a user path lexically against the current directory; throws when it leaves
  /// the workspace. The path need not exist.
  public func resolve(_ userPath: String) throws -> RelativePath {
    let absolute = userPath.hasPrefix("/") ? userPath : currentDirectory + "/" + userPath
    var parts: [Substring] = []
    for part in absolute.split(separator: "/", omittingEmptySubsequences: true) {
      if part == "." { continue }
      if part == ".." {
        if !parts.isEmpty { parts.removeLast() }
        continue
      }
      parts.append(part)
    }
    let normalized = "/" + parts.joined(separator: "/")
    if normalized == root { return .root }
    guard normalized.hasPrefix(root == "/" ? "/" : root + "/") else {
      throw PathError.outsideWorkspace(userPath, root: root)
    }
    let rel = String(normalized.dropFirst(root == "/" ? 1 : root.count + 1))
    guard let path = RelativePath(validating: rel) else {
      throw PathError.outsideWorkspace(userPath, root: root)
    }
    if path.value == ".pipeline" || path.value.hasPrefix(".pipeline/") {
      throw PathError.insideMetadata(userPath)
    }
    return path
  }
}

/// Byte-wise comparison of two strings' UTF-8 (the order of tree manifests), through memcmp on
/// the contiguous storage of native strings.
@inline(__always)
public func utf8Precedes(_ a: String, _ b: String) -> Bool {
  utf8Compare(a, b) < 0
}

/// Three-way byte-wise comparison of two strings' UTF-8: negative, zero or positive.
@inline(__always)
public func utf8Compare(_ a: String, _ b: String) -> Int {
  let fast = a.utf8.withContiguousStorageIfAvailable { pa in
    b.utf8.withContiguousStorageIfAvailable { pb -> Int in
      let n = min(pa.count, pb.count)
      let c = n == 0 ? 0 : Int(memcmp(pa.baseAddress!, pb.baseAddress!, n))
      return c != 0 ? c : pa.count - pb.count
    }
  }
  if let fast = fast ?? nil { return fast }
  // Bridged or small strings without contiguous storage.
  if a.utf8.lexicographicallyPrecedes(b.utf8) { return -1 }
  return a.utf8.elementsEqual(b.utf8) ? 0 : 1
}

#if canImport(Glibc)
  import Glibc
#endif
