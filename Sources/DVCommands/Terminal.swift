import CDVSystem
import DVBasics
import Foundation

/// Output helpers: the only place dv writes to the terminal.
enum Terminal {
  static let stderrIsTerminal = dv_isatty(2) == 1

  /// Prints an error as one line on stderr.
  static func error(_ message: String) {
    FileHandle.standardError.write(Data("error: \(oneLine(message))\n".utf8))
  }

  /// Prints a warning on stderr.
  static func warning(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(oneLine(message))\n".utf8))
  }

  /// `message` with line breaks and other control characters escaped (`\n`, `\u{1b}`): names
  /// quoted from files and servers may hold them, and an error is one line.
  static func oneLine(_ message: String) -> String {
    guard message.unicodeScalars.contains(where: isControl) else { return message }
    var out = ""
    for c in message.unicodeScalars {
      switch c {
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if isControl(c) {
          out += "\\u{" + String(c.value, radix: 16) + "}"
        } else {
          out.unicodeScalars.append(c)
        }
      }
    }
    return out
  }

  /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
  private static func isControl(_ c: Unicode.Scalar) -> Bool {
    c.value < 0x20 || (0x7F...0x9F).contains(c.value) || c.value == 0x2028 || c.value == 0x2029
  }

  /// Prints `lines` to stdout; on a terminal narrower than the longest line, through the pager
  /// (`$PAGER`, else `less -FRSX`), as git pages what does not fit.
  static func printPaged(_ lines: [String]) {
    let columns = Int(dv_terminal_columns(1))
    guard columns > 0, lines.contains(where: { $0.count > columns }) else {
      for line in lines { print(line) }
      return
    }
    let pager = Process()
    pager.executableURL = URL(fileURLWithPath: "/bin/sh")
    pager.arguments = ["-c", ProcessInfo.processInfo.environment["PAGER"].flatMap { $0.isEmpty ? nil : $0 } ?? "less -FRSX"]
    let input = Pipe()
    pager.standardInput = input
    guard (try? pager.run()) != nil else {
      for line in lines { print(line) }
      return
    }
    input.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    try? input.fileHandleForWriting.close()
    pager.waitUntilExit()
  }

  /// Writes a JSON value to stdout.
  static func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(
      withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
  }
}

/// Human-readable numbers.
enum Format {
  /// `104857600` -> `104.9 MB`.
  static func bytes(_ n: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(n)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
      value /= 1000
      unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
  }

  /// `10000` -> `10,000`.
  static func count(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, c) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
      out.append(c)
    }
    return out
  }

  /// `1 file`, `2 files`.
  static func plural(_ n: Int, _ word: String) -> String {
    "\(count(n)) \(word)\(n == 1 ? "" : "s")"
  }
}

/// A one-line progress display on stderr, redrawn at most ten times a second.
final class TerminalProgress: ProgressReporter, @unchecked Sendable {
  private struct Phase {
    var name = ""
    var totalItems: Int?
    var totalBytes: Int64?
    var items = 0
    var bytes: Int64 = 0
    var start = Date()
    var lastDraw = Date.distantPast
    var drawn = false
  }

  private let phase = Locked(Phase())
  /// Seconds before the first draw, so quick commands print nothing (`DV_PROGRESS_DELAY`).
  private let delay = Double(ProcessInfo.processInfo.environment["DV_PROGRESS_DELAY"] ?? "") ?? 0.2

  func begin(_ name: String, totalItems: Int?, totalBytes: Int64?) {
    phase.withLock { $0 = Phase(name: name, totalItems: totalItems, totalBytes: totalBytes) }
  }

  func advance(items: Int, bytes: Int64) {
    let line: String? = phase.withLock { p in
      p.items += items
      p.bytes += bytes
      let now = Date()
      guard now.timeIntervalSince(p.lastDraw) >= 0.1, now.timeIntervalSince(p.start) >= delay else { return nil }
      p.lastDraw = now
      p.drawn = true
      return Self.render(p, now: now)
    }
    if let line { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
  }

  func end() {
    let drawn = phase.withLock { p -> Bool in
      defer { p.drawn = false }
      return p.drawn
    }
    if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
  }

  private static func render(_ p: Phase, now: Date) -> String {
    var parts = [p.name]
    if let total = p.totalItems { parts.append("\(Format.count(p.items))/\(Format.count(total)) files") }
    if let total = p.totalBytes, total > 0 {
      parts.append("\(Format.bytes(p.bytes))/\(Format.bytes(total))")
    } else {
      parts.append(Format.bytes(p.bytes))
    }
    let seconds = now.timeIntervalSince(p.start)
    if seconds > 0 { parts.append("\(Format.bytes(Int64(Double(p.bytes) / seconds)))/s") }
    return parts.joined(separator: "  ")
  }
}
