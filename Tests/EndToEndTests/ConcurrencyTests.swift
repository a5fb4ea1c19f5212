import DVBasics
import Foundation
import XCTest

/// Issue 9's concurrency suite: dv processes at once on one workspace. Writers (`add`, `repro`,
/// `gc`, `pull`) serialise through `.pipeline/lock`: the second waits, or after
/// `DV_LOCK_TIMEOUT` fails with one line naming the holder. Readers (`status`) take no lock and
/// must never see a half-written pointer, stages.lock or object. `push` reads the cache without
/// the lock, so `gc` may run during a push; the push must not lose or damage anything.
final class ConcurrencyTests: DVTestCase {
  /// Where background processes write their output (outside the workspace, which they scan).
  var scratch: String!

  override func setUpWithError() throws {
    try super.setUpWithError()
    scratch = root + ".out"
    try FileSystem.createDirectory(scratch)
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeTree(scratch)
    try super.tearDownWithError()
  }

  /// A process started in the background, its output going to files.
  final class Background {
    let process: Process
    let out: String
    let err: String
    let label: String

    init(_ executable: String, _ args: [String], in directory: String, env: [String: String], scratch: String) throws {
      label = args.joined(separator: " ")
      let id = UUID().uuidString
      out = scratch + "/\(id).out"
      err = scratch + "/\(id).err"
      _ = FileManager.default.createFile(atPath: out, contents: nil)
      _ = FileManager.default.createFile(atPath: err, contents: nil)
      process = Process()
      process.executableURL = URL(fileURLWithPath: executable)
      process.arguments = args
      process.currentDirectoryURL = URL(fileURLWithPath: directory)
      process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
      process.standardInput = FileHandle.nullDevice
      process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
      process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
      try process.run()
    }

    /// Waits (bounded: the process is killed after `timeout` seconds) and returns its result.
    func wait(timeout: Double = 60) -> RunResult {
      let deadline = Date().addingTimeInterval(timeout)
      while process.isRunning && Date() < deadline { usleep(20_000) }
      if process.isRunning {
        XCTFail("\(label) did not finish within \(timeout) s")
        process.terminate()
      }
      process.waitUntilExit()
      return RunResult(
        code: process.terminationStatus, stdout: (try? FileSystem.readTextIfPresent(out)) ?? "",
        stderr: (try? FileSystem.readTextIfPresent(err)) ?? "")
    }
  }

  func background(_ args: String..., in cwd: String = "", env: [String: String] = [:]) throws -> Background {
    try Background(
      Self.binary, args, in: cwd.isEmpty ? root : root + "/" + cwd, env: env, scratch: scratch)
  }

  // MARK: - Two repros

  /// A stage that takes a second and counts its runs in `runs.log` (not an out).
  let slowPipeline = """
    stages:
      copy:
        cmd: sleep 1 && echo run >> runs.log && cp in.txt out.txt
        deps: [in.txt]
        outs: [out.txt]
      upper:
        cmd: tr a-z A-Z < out.txt > upper.txt
        deps: [out.txt]
        outs: [upper.txt]
    """

  /// Two `dv repro` at once, three times with a changed input each: the second waits for the
  /// lock and then finds nothing stale, so each change runs the stages exactly once; the
  /// results are right and stages.lock parses.
  func testTwoReprosAtOnceRunEachStageOnce() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", slowPipeline)
    let waitLong = ["DV_LOCK_TIMEOUT": "30"]
    for trial in 1...3 {
      try write("in.txt", "input version \(trial)\n")
      let first = try background("repro", env: waitLong)
      let second = try background("repro", env: waitLong)
      let results = [first.wait(), second.wait()]
      XCTAssertEqual(results.map(\.code), [0, 0], results.map(\.stderr).joined(separator: " | "))
      XCTAssertEqual(read("runs.log")?.split(separator: "\n").count, trial, "the stage ran once per change")
      XCTAssertEqual(read("upper.txt"), "INPUT VERSION \(trial)\n")
      let status = try dv("status", "--check")
      XCTAssertEqual(status.code, 0, "stages.lock is whole and current: \(status.stdout)\(status.stderr)")
    }
    let ran = try dv("lineage", "log", "--json")
    let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [[String: Any]])
    XCTAssertEqual(runs.count, 6, "every repro is a run in the ledger")
    print(
      "concurrency: 3 trials of two repros at once, \(read("runs.log")?.split(separator: "\n").count ?? 0) stage runs")
  }

  /// A repro that cannot wait as long as the other holds the lock fails with exit 1 and one
  /// line naming the holder's pid, changing nothing.
  func testASecondReproThatCannotWaitFailsWithOneLine() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", slowPipeline)
    try write("in.txt", "input\n")
    let first = try background("repro")
    // The first holds the lock once its stage started (runs.log appears a second later).
    let lockFile = root + "/.pipeline/lock"
    for _ in 0..<250 where (try? FileSystem.readTextIfPresent(lockFile))?.isEmpty ?? true { usleep(20_000) }
    let second = try dv("repro", env: ["DV_LOCK_TIMEOUT": "0.2"])
    assertFails(second, code: 1, "another dv process (pid \(first.process.processIdentifier)) is using this workspace")
    XCTAssertEqual(first.wait().code, 0)
    XCTAssertEqual(read("runs.log"), "run\n")
    XCTAssertEqual(try dv("status", "--check").code, 0)
  }

  // MARK: - Readers during writers

  /// `dv add` and `dv repro` in a loop (bounded) while `dv status` runs again and again: every
  /// status exits 0 or 1 (never 2, which a half-written pointer, stages.lock or manifest would
  /// give), its JSON always parses, and at the end everything is consistent.
  func testStatusDuringAddAndReproNeverSeesAHalfWrittenFile() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for i in 0..<300 { try write("data/raw/f\(i).txt", "row \(i)\n" + String(repeating: "x", count: i * 7)) }
    try write("model.bin", "model v0\n")
    try write(
      "stages.yaml",
      """
      stages:
        count:
          cmd: ls data/raw | wc -l > count.txt && wc -c < model.bin >> count.txt
          deps: [data/raw, model.bin]
          outs: [count.txt]
      """)
    XCTAssertEqual(try dv("add", "data/raw", "model.bin").code, 0)
    XCTAssertEqual(try dv("repro").code, 0)

    let rounds = 30
    let script = """
      set -e
      for i in $(seq 1 \(rounds)); do
        for j in $(seq 0 29); do echo "round $i file $j" > data/raw/f$j.txt; done
        echo "round $i new" > data/raw/new$i.txt
        echo "model v$i" > model.bin
        "$DV" add data/raw model.bin > /dev/null
        "$DV" repro > /dev/null
      done
      """
    let writer = try Background(
      "/bin/bash", ["-c", script], in: root, env: ["DV": Self.binary, "DV_LOCK_TIMEOUT": "30"], scratch: scratch)
    var codes: [Int32: Int] = [:]
    var problems: [String] = []
    let deadline = Date().addingTimeInterval(50)
    var reads = 0
    while writer.process.isRunning && reads < 400 && Date() < deadline {
      let status = try dv("status", "--check", "--json", env: ["DV_LOCK_TIMEOUT": "30"])
      reads += 1
      codes[status.code, default: 0] += 1
      if status.code > 1 || (try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8))) == nil {
        problems.append("exit \(status.code): \(status.stderr) \(status.stdout.prefix(200))")
      }
    }
    let written = writer.wait()
    XCTAssertEqual(written.code, 0, written.stderr)
    XCTAssertEqual(problems.prefix(3), [], "\(problems.count) of \(reads) status runs failed")
    XCTAssertGreaterThan(reads, 5, "status ran while the writer did")
    print("concurrency: \(reads) status runs during \(rounds) rounds of add + repro; exit codes \(codes)")
    let final = try dv("status", "--check")
    XCTAssertEqual(final.code, 0, final.stdout + final.stderr)
    XCTAssertEqual(read("count.txt")?.split(separator: "\n").first.map(String.init), "\(300 + rounds)")
    XCTAssertEqual(try dv("fsck").code, 0)
  }

  // MARK: - gc during push

  /// `dv gc` while `dv push` runs (a directory remote), three times with new data and new
  /// garbage each time: both exit 0; afterwards a push finds nothing missing or uploads the
  /// rest, and a fresh workspace with the same pointers pulls every file byte for byte.
  func testGCDuringPushLosesNothing() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let remote = root + ".remote"
    defer { try? FileSystem.removeTree(remote) }
    XCTAssertEqual(try dv("remote", "add", "-d", "store", remote).code, 0)
    var expected: [String: String] = [:]
    var overlaps = 0
    for trial in 1...3 {
      // Garbage: a first version of this trial's data, replaced before the push.
      for i in 0..<400 { try write("data/t\(trial)/f\(i).txt", "old \(trial) \(i)\n") }
      XCTAssertEqual(try dv("add", "data/t\(trial)").code, 0)
      for i in 0..<400 {
        let content = "trial \(trial) file \(i) " + String(repeating: "d", count: i % 50) + "\n"
        try write("data/t\(trial)/f\(i).txt", content)
        expected["data/t\(trial)/f\(i).txt"] = content
      }
      try write("data/big\(trial).bin", String(repeating: "big \(trial) ", count: 200_000))
      expected["data/big\(trial).bin"] = read("data/big\(trial).bin")
      XCTAssertEqual(try dv("add", "data/t\(trial)", "data/big\(trial).bin").code, 0)

      let push = try background("push", "-j", "2")
      usleep(UInt32(30_000 * trial))
      let overlapped = push.process.isRunning
      let gc = try dv("gc", env: ["DV_LOCK_TIMEOUT": "30"])
      let pushed = push.wait()
      if overlapped { overlaps += 1 }
      XCTAssertEqual(gc.code, 0, gc.stderr)
      XCTAssertTrue(gc.stdout.hasPrefix("removed 401 objects ("), "the old version is garbage: \(gc.stdout)")
      XCTAssertEqual(pushed.code, 0, pushed.stderr)
      print(
        "concurrency: gc during push, trial \(trial): push '\(pushed.stdout.trimmingCharacters(in: .newlines))', gc '\(gc.stdout.split(separator: "\n").first ?? "")'"
      )
    }
    print("concurrency: gc started while push was running in \(overlaps) of 3 trials")
    let again = try dv("push")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertEqual(again.stdout, "everything is already on 'store'\n")
    XCTAssertEqual(try dv("fsck").code, 0)

    // A fresh workspace with the same pointers and remote gets everything.
    try FileSystem.createDirectory(root + "/fresh")
    XCTAssertEqual(try dv("init", "--no-scm", in: "fresh").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "store", remote, in: "fresh").code, 0)
    for trial in 1...3 {
      for name in ["data/t\(trial).dv", "data/big\(trial).bin.dv"] {
        try FileSystem.createDirectory(root + "/fresh/data")
        try FileSystem.writeAtomically(
          try XCTUnwrap(try FileSystem.readFileIfPresent(root + "/" + name)), to: root + "/fresh/" + name)
      }
    }
    let pull = try dv("pull", in: "fresh")
    XCTAssertEqual(pull.code, 0, pull.stderr)
    let wrong = expected.filter { read("fresh/" + $0.key) != $0.value }.keys.sorted()
    XCTAssertEqual(wrong.prefix(5), [], "\(wrong.count) of \(expected.count) files differ after the pull")
  }
}
