import DVBasics
import DVStorage
import Foundation
import XCTest

/// What one run of the `dv` binary produced.
struct RunResult {
  var code: Int32
  var stdout: String
  var stderr: String
}

/// End-to-end tests run the built `dv` in a fresh temporary workspace and check its output,
/// exit code and files, as a user would see them.
class DVTestCase: XCTestCase {
  /// The temporary directory the test works in (symlink-free).
  var root: String!

  static let binary: String = {
    if let path = ProcessInfo.processInfo.environment["DV_BINARY"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dv")
      .path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return package.appendingPathComponent(".build/debug/dv").path
  }()

  override func setUpWithError() throws {
    root = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-e2e-\(UUID().uuidString)"
    try FileSystem.createDirectory(root)
    XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary), "build dv first: \(Self.binary)")
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeTree(root)
  }

  /// Runs `dv args...` in `root/cwd` and waits (bounded by `timeout`).
  @discardableResult
  func dv(_ args: String..., in cwd: String = "", env: [String: String] = [:], timeout: Double = 120) throws
    -> RunResult
  {
    try run(Self.binary, args, in: cwd, env: env, timeout: timeout)
  }

  @discardableResult
  func run(
    _ executable: String, _ args: [String], in cwd: String = "", env: [String: String] = [:], timeout: Double = 120
  )
    throws -> RunResult
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = args
    process.currentDirectoryURL = URL(fileURLWithPath: cwd.isEmpty ? root : root + "/" + cwd)
    var environment = ProcessInfo.processInfo.environment
    environment.merge(env) { $1 }
    process.environment = environment
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let outData = Locked(Data())
    let errData = Locked(Data())
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
      DispatchQueue.global().async(group: group) {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        sink.withLock { $0 = data }
      }
    }
    if group.wait(timeout: .now() + timeout) == .timedOut {
      let stacks = Self.threadStacks(of: process.processIdentifier)
      process.terminate()
      // A process that does not stop on SIGTERM within 5 s is killed: a hang fails the test
      // instead of stalling the suite.
      if group.wait(timeout: .now() + 5) == .timedOut { kill(process.processIdentifier, SIGKILL) }
      XCTFail(
        "\(executable) \(args.joined(separator: " ")) did not finish within \(timeout) s; its threads:\n\(stacks)")
    }
    process.waitUntilExit()
    return RunResult(
      code: process.terminationStatus, stdout: String(decoding: outData.withLock { $0 }, as: UTF8.self),
      stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self))
  }

  /// What each thread of a hung process is doing, for the failure message: gdb's backtraces
  /// where gdb is installed (at most 30 s), else each thread's kernel wait channel.
  static func threadStacks(of pid: Int32) -> String {
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb") {
      let gdb = Process()
      gdb.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
      gdb.arguments = ["30", "/usr/bin/gdb", "-p", String(pid), "-batch", "-nx", "-ex", "thread apply all bt 30"]
      let pipe = Pipe()
      gdb.standardOutput = pipe
      gdb.standardError = FileHandle.nullDevice
      if (try? gdb.run()) != nil {
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        gdb.waitUntilExit()
        let text = String(decoding: out, as: UTF8.self).split(separator: "\n").filter {
          $0.hasPrefix("Thread ") || $0.hasPrefix("#")
        }
        if !text.isEmpty { return text.prefix(400).joined(separator: "\n") }
      }
    }
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.sorted().map { tid in
      let wchan = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/wchan", encoding: .utf8)) ?? "?"
      return "thread \(tid): waiting in \(wchan)"
    }.joined(separator: "\n")
  }

  /// Runs `dv args...` in the root and returns its result with the peak RSS (KiB) of that one
  /// process. A child spawned straight from this test process starts with the test process's
  /// own high-water mark (the kernel carries it across the exec), so a small Python parent
  /// spawns dv and reports dv's ru_maxrss from wait4.
  func dvMeasuringMemory(_ args: String..., timeout: Double = 600) throws -> (RunResult, peakKiB: Int) {
    let script = """
      import os, sys
      root, exe, *args = sys.argv[1:]
      os.chdir(root)
      pid = os.posix_spawn(exe, [exe] + args, os.environ)
      _, status, usage = os.wait4(pid, 0)
      sys.stderr.write("\\nDV_PEAK_RSS_KIB=%d\\n" % usage.ru_maxrss)
      sys.exit(os.waitstatus_to_exitcode(status))
      """
    var result = try run("/usr/bin/env", ["python3", "-c", script, root, Self.binary] + args, timeout: timeout)
    var peak = -1
    if let marker = result.stderr.range(of: "\nDV_PEAK_RSS_KIB=") {
      peak = Int(result.stderr[marker.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
      result.stderr = String(result.stderr[..<marker.lowerBound])
    }
    XCTAssertGreaterThan(peak, 0, "the peak RSS was reported")
    return (result, peak)
  }

  /// Writes a file under the root, creating parents; backdated so the stat cache trusts it.
  func write(_ relative: String, _ content: String) throws {
    let path = root + "/" + relative
    try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
    if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    try Data(content.utf8).write(to: URL(fileURLWithPath: path))
    try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-5)], ofItemAtPath: path)
  }

  func read(_ relative: String) -> String? {
    try? FileSystem.readTextIfPresent(root + "/" + relative)
  }

  func exists(_ relative: String) -> Bool { FileSystem.exists(root + "/" + relative) }

  /// Every regular file under `relative` with its bytes.
  func files(_ relative: String) -> [String: String] {
    var result: [String: String] = [:]
    let base = root + "/" + relative
    guard let enumerator = FileManager.default.enumerator(atPath: base) else { return [:] }
    while let path = enumerator.nextObject() as? String {
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
        result[path] = read(relative + "/" + path)
      }
    }
    return result
  }

  /// A `dv init --no-scm` workspace with `data/raw` holding a.csv, b.csv and sub/c.csv.
  func makeWorkspaceWithData(git: Bool = false) throws {
    if git {
      XCTAssertEqual(try run("/usr/bin/env", ["git", "init", "-q"]).code, 0)
      XCTAssertEqual(try dv("init").code, 0)
    } else {
      XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    }
    try write("data/raw/a.csv", "id,v\n1,a\n")
    try write("data/raw/b.csv", "id,v\n2,b\n")
    try write("data/raw/sub/c.csv", "id,v\n3,c\n")
  }

  /// The names (64 hex) of every object in the cache: loose files and packed objects.
  func cachedObjects(in workspace: String = "") -> [String] {
    cacheContents(in: workspace).keys.sorted()
  }

  /// Every object in a workspace's cache, by name, with its stored bytes as they are (not
  /// checked): the loose files under `sha256/` and what the indexes under `packs/` list.
  func cacheContents(in workspace: String = "") -> [String: [UInt8]] {
    let cache = root + (workspace.isEmpty ? "" : "/" + workspace) + "/.pipeline/cache"
    var contents: [String: [UInt8]] = [:]
    for fan in (try? FileSystem.listDirectory(cache + "/sha256")) ?? [] where fan.name.utf8.count == 2 {
      for entry in (try? FileSystem.listDirectory(cache + "/sha256/" + fan.name)) ?? [] {
        let bytes = try? FileSystem.readFileIfPresent(cache + "/sha256/" + fan.name + "/" + entry.name)
        contents[fan.name + entry.name] = bytes ?? []
      }
    }
    for entry in (try? FileSystem.listDirectory(cache + "/packs")) ?? [] where entry.name.hasSuffix(".idx") {
      let name = String(entry.name.dropLast(4))
      guard let pack = ObjectID(hex: Array(name.utf8)),
        let index = try? FileSystem.readFileIfPresent(cache + "/packs/" + entry.name),
        let (slots, _) = try? PackLayout.decodeIndex(index, pack: pack),
        let bytes = try? FileSystem.readFileIfPresent(cache + "/packs/" + name + ".pack")
      else { continue }
      for slot in slots where contents[slot.id.hex] == nil {
        let range = Int(min(slot.offset, Int64(bytes.count)))..<Int(min(slot.end, Int64(bytes.count)))
        contents[slot.id.hex] = Array(bytes[range])
      }
    }
    return contents
  }

  /// Asserts a failure: the exit code, one line on stderr containing `message`, nothing on stdout.
  func assertFails(
    _ result: RunResult, code: Int32, _ message: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(result.code, code, result.stderr, file: file, line: line)
    XCTAssertTrue(result.stderr.contains(message), "stderr was: \(result.stderr)", file: file, line: line)
    XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "one line: \(result.stderr)", file: file, line: line)
    XCTAssertFalse(result.stderr.contains("Fatal error"), file: file, line: line)
  }
}
