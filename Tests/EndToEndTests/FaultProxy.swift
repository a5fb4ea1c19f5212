import DVBasics
import Foundation
import XCTest

/// `Tests/Support/fault-proxy` run in front of a test server for one test: started on a free
/// loopback port, asked for its fault counts, stopped by its pid.
final class FaultProxy {
  let process: Process
  /// `http://127.0.0.1:PORT`.
  let url: String

  /// The fault kinds the proxy draws at random, in the order of its stats.
  static let randomKinds = ["drop", "error500", "slowdown", "delay", "truncate", "corrupt"]

  /// Starts the proxy forwarding to `target` with `arguments` (fault rates, `--fail-path`...),
  /// waiting (bounded) until it reports its port; skips the test when python3 cannot run it.
  init(target: String, arguments: [String], scratch: String) throws {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Support/fault-proxy").path
    let portFile = scratch + "/proxy-\(UUID().uuidString).port"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, "--target", target, "--port-file", portFile] + arguments
    process.standardOutput = FileHandle.nullDevice
    // Its stderr (broken pipes of requests dv gave up on) stays out of the test log.
    let log = scratch + "/proxy-\(UUID().uuidString).log"
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    try process.run()
    self.process = process
    var port: Int?
    for _ in 0..<200 {
      if let text = try FileSystem.readTextIfPresent(portFile) {
        port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if port != nil { break }
      }
      guard process.isRunning else { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    try? FileSystem.removeFile(portFile)
    guard let port else {
      if process.isRunning { process.terminate() }
      throw XCTSkip("the fault proxy did not start (is python3 installed?)")
    }
    url = "http://127.0.0.1:\(port)"
  }

  /// The proxy's counts: `forwarded`, each random fault kind, and `permanent`.
  func stats() throws -> [String: Int] {
    let script =
      "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, url + "/__fault-proxy/stats"]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return try JSONDecoder().decode([String: Int].self, from: data)
  }

  /// The faults injected at random so far.
  func injected() throws -> Int {
    let counts = try stats()
    return Self.randomKinds.reduce(0) { $0 + (counts[$1] ?? 0) }
  }

  /// "412 requests forwarded, 83 random faults (drop 14, error500 12, ...)", for the test log:
  /// the counts since `baseline` (an earlier `stats()`).
  static func summary(_ counts: [String: Int], since baseline: [String: Int] = [:]) -> String {
    func count(_ name: String) -> Int { (counts[name] ?? 0) - (baseline[name] ?? 0) }
    let injected = randomKinds.reduce(0) { $0 + count($1) }
    let kinds = randomKinds.map { "\($0) \(count($0))" }.joined(separator: ", ")
    let permanent = count("permanent") > 0 ? ", permanent \(count("permanent"))" : ""
    return "\(count("forwarded")) requests forwarded, \(injected) random faults (\(kinds))\(permanent)"
  }

  func stop() {
    if process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
  }

  deinit { stop() }
}
