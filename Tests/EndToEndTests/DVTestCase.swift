import DVBasics
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
      process.terminate()
      XCTFail("dv \(args.joined(separator: " ")) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    return RunResult(
      code: process.terminationStatus, stdout: String(decoding: outData.withLock { $0 }, as: UTF8.self),
      stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self))
  }

  /// Runs `dv args...` in the root and returns its result with the peak RSS (KiB) of that one
  /// process, from wait4: getrusage(RUSAGE_CHILDREN) would be the largest child of the whole
  /// test run.
  func dvMeasuringMemory(_ args: String..., timeout: Double = 600) throws -> (RunResult, peakKiB: Int) {
    let out = root + ".stdout"
    let err = root + ".stderr"
    defer {
      try? FileSystem.removeFile(out)
      try? FileSystem.removeFile(err)
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    // sh changes directory and execs dv: the same process, so wait4 reports dv's own usage.
    let argv = (["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", root, Self.binary] + args).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, environ)
    XCTAssertEqual(rc, 0, "posix_spawn")
    let finished = Locked(false)
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
      if !finished.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    finished.withLock { $0 = true }
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let result = RunResult(
      code: code, stdout: (try? FileSystem.readTextIfPresent(out)) ?? "",
      stderr: (try? FileSystem.readTextIfPresent(err)) ?? "")
    return (result, usage.ru_maxrss)
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

  /// Every file under the object store.
  func cachedObjects() -> [String] {
    let base = root + "/.pipeline/cache/sha256"
    guard let fans = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
    return fans.flatMap { fan in
      ((try? FileManager.default.contentsOfDirectory(atPath: base + "/" + fan)) ?? []).map { fan + $0 }
    }.sorted()
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
