import DVBasics

/// Patterns from the workspace's `.dvignore`, in gitignore syntax, that leave paths out of
/// directory hashing and out of dv's view of the workspace.
///
/// Supported: `#` comments, blank lines, `!` negation, trailing `/` (directories only), a leading
/// or inner `/` anchoring the pattern at the root, `*`, `?`, `[…]` classes, and `**` in any
/// position. As in git, a file inside an ignored directory cannot be re-included.
public struct IgnoreRules: Sendable {
  struct Rule: Sendable {
    var pattern: [UInt8]
    var negated: Bool
    var directoryOnly: Bool
    /// Matched against the whole root-relative path (else against the basename).
    var anchored: Bool
  }

  let rules: [Rule]
  /// SHA-256 of the rules text: part of every directory fingerprint, so editing `.dvignore`
  /// invalidates cached directory hashes.
  public let digest: ObjectID

  /// True when there are no patterns.
  public var isEmpty: Bool { rules.isEmpty }

  /// No rules.
  public static let none = IgnoreRules(text: "")

  /// Parses the text of a `.dvignore` file.
  public init(text: String) {
    var rules: [Rule] = []
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
      var line = Substring(rawLine)
      if line.hasSuffix("\r") { line = line.dropLast() }
      // Trailing spaces are ignored unless escaped.
      while line.hasSuffix(" "), !line.hasSuffix("\\ ") { line = line.dropLast() }
      if line.isEmpty || line.hasPrefix("#") { continue }
      var negated = false
      if line.hasPrefix("!") {
        negated = true
        line = line.dropFirst()
      } else if line.hasPrefix("\\!") || line.hasPrefix("\\#") {
        line = line.dropFirst()
      }
      var directoryOnly = false
      if line.hasSuffix("/") {
        directoryOnly = true
        line = line.dropLast()
      }
      if line.isEmpty { continue }
      var anchored = line.contains("/")
      if line.hasPrefix("/") {
        line = line.dropFirst()
        anchored = true
      }
      if line.hasPrefix("**/") {
        // "**/x" matches x at any depth: the same as an unanchored basename pattern when x has no "/".
        let rest = line.dropFirst(3)
        if !rest.contains("/") {
          line = rest
          anchored = false
        }
      }
      rules.append(Rule(pattern: Array(line.utf8), negated: negated, directoryOnly: directoryOnly, anchored: anchored))
    }
    self.rules = rules
    digest = SHA256Hasher.hash(Array(text.utf8))
  }

  /// Reads `.dvignore` at the workspace root; no file means no rules.
  public static func load(workspaceRoot: String) throws -> IgnoreRules {
    guard let text = try FileSystem.readTextIfPresent(workspaceRoot + "/.dvignore") else { return .none }
    return IgnoreRules(text: text)
  }

  /// True when the root-relative `path` is ignored. The caller checks parents first (a walk
  /// does not descend into an ignored directory).
  public func isIgnored(_ path: String, isDirectory: Bool) -> Bool {
    if rules.isEmpty { return false }
    let full = Array(path.utf8)
    let base: ArraySlice<UInt8>
    if let slash = full.lastIndex(of: UInt8(ascii: "/")) { base = full[(slash + 1)...] } else { base = full[...] }
    var ignored = false
    for rule in rules {
      if rule.directoryOnly && !isDirectory { continue }
      if ignored == !rule.negated { continue }
      let subject = rule.anchored ? full[...] : base
      if Self.glob(rule.pattern[...], subject) { ignored = !rule.negated }
    }
    return ignored
  }

  /// gitignore glob matching: `*` and `?` never match `/`; `**` matches across directories.
  static func glob(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
    var p = pattern.startIndex
    var t = text.startIndex
    while p < pattern.endIndex {
      let c = pattern[p]
      if c == UInt8(ascii: "*") {
        let doubleStar = p + 1 < pattern.endIndex && pattern[p + 1] == UInt8(ascii: "*")
        if doubleStar {
          var rest = p + 2
          // "**/" also matches zero directories.
          if rest < pattern.endIndex, pattern[rest] == UInt8(ascii: "/") {
            rest += 1
            if glob(pattern[rest...], text[t...]) { return true }
            var k = t
            while k < text.endIndex {
              if text[k] == UInt8(ascii: "/"), glob(pattern[rest...], text[(k + 1)...]) { return true }
              k += 1
            }
            return false
          }
          if rest == pattern.endIndex { return true }
          var k = t
          while k <= text.endIndex {
            if glob(pattern[rest...], text[k...]) { return true }
            k += 1
          }
          return false
        }
        var k = t
        while true {
          if glob(pattern[(p + 1)...], text[k...]) { return true }
          if k == text.endIndex || text[k] == UInt8(ascii: "/") { return false }
          k += 1
        }
      }
      guard t < text.endIndex else { return false }
      switch c {
      case UInt8(ascii: "?"):
        if text[t] == UInt8(ascii: "/") { return false }
        p += 1
        t += 1
      case UInt8(ascii: "["):
        guard let (matched, next) = matchClass(pattern, p, text[t]) else {
          // An unterminated class matches a literal "[".
          if text[t] != c { return false }
          p += 1
          t += 1
          continue
        }
        if !matched || text[t] == UInt8(ascii: "/") { return false }
        p = next
        t += 1
      case UInt8(ascii: "\\") where p + 1 < pattern.endIndex:
        if pattern[p + 1] != text[t] { return false }
        p += 2
        t += 1
      default:
        if c != text[t] { return false }
        p += 1
        t += 1
      }
    }
    return t == text.endIndex
  }

  private static func matchClass(_ pattern: ArraySlice<UInt8>, _ start: Int, _ ch: UInt8) -> (Bool, Int)? {
    var i = start + 1
    var negate = false
    if i < pattern.endIndex, pattern[i] == UInt8(ascii: "!") || pattern[i] == UInt8(ascii: "^") {
      negate = true
      i += 1
    }
    var matched = false
    var first = true
    while i < pattern.endIndex {
      let c = pattern[i]
      if c == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
      first = false
      if i + 2 < pattern.endIndex, pattern[i + 1] == UInt8(ascii: "-"), pattern[i + 2] != UInt8(ascii: "]") {
        if ch >= c && ch <= pattern[i + 2] { matched = true }
        i += 3
      } else {
        if ch == c { matched = true }
        i += 1
      }
    }
    return nil
  }
}
