/// Text safe to keep: URLs lose their user:password and the values of query parameters that
/// look like credentials.
public enum SecretScrubber {
  public static func scrub(_ text: String) -> String {
    guard text.contains("://") else { return text }
    var out = ""
    var rest = Substring(text)
    while let scheme = rest.range(of: "://") {
      out += rest[..<scheme.upperBound]
      rest = rest[scheme.upperBound...]
      let end = rest.firstIndex { $0 == " " || $0 == "," || $0 == "}" || $0 == "]" || $0 == "\"" } ?? rest.endIndex
      var url = String(rest[..<end])
      let hostEnd = url.firstIndex(of: "/") ?? url.endIndex
      if let at = url[..<hostEnd].lastIndex(of: "@") { url = String(url[url.index(after: at)...]) }
      if let question = url.firstIndex(of: "?") {
        let query = url[url.index(after: question)...].split(separator: "&").map { pair -> String in
          let name = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
          let lowered = name.lowercased()
          let secret = ["sig", "token", "key", "secret", "password", "credential", "auth"].contains {
            lowered.contains($0)
          }
          return secret ? name + "=REDACTED" : String(pair)
        }
        url = String(url[...question]) + query.joined(separator: "&")
      }
      out += url
      rest = rest[end...]
    }
    return out + rest
  }
}
