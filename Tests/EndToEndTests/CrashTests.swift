import DVBasics
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The crash suite (issue 9): `dv add`, `repro`, `checkout`, `push`, `pull` and `gc` are stopped
/// with SIGKILL right before their Nth durable write (`DV_FAILPOINT=write@N:kill`), for N spread
/// over every write an uninterrupted run makes; `dv add` is also killed after seeded random
/// delays. After each kill: `dv fsck` finds no corrupt object, `dv status` can parse the pointers
/// and stages.lock, no workspace file that was there before is lost unless its content is cached,
/// no object an uninterrupted run keeps is lost; then the same command, run again, succeeds and
/// leaves exactly what an uninterrupted run leaves (workspace, cache, remote), with no temporary
/// file behind.
final class CrashTests: DVTestCase {
  /// One command under test, in a workspace `prepare` builds.
  struct Scenario {
    var name: String
    var arguments: [String]
    /// How many kill points to try, spread evenly over the writes of an uninterrupted run.
    var trials: Int
    /// Builds the workspace (relative to the test root) the command starts from.
    var prepare: (_ directory: String) throws -> Void
    /// More checks after the rerun.
    var verify: ((_ directory: String, _ context: String) throws -> Void)? = nil
  }

  /// What a finished run leaves, for comparing an interrupted-then-rerun command with an
  /// uninterrupted one.
  struct Outcome: Equatable {
    /// Workspace files (outside `.pipeline` and the remote) with their bytes.
    var workspace: [String: Data]
    var cachedObjects: Set<String>
    /// The directory remote's files, orphan packs (a pack without index) left out.
    var remote: [String: Data]
  }

  /// A workspace before the command: its files, and the objects in its cache.
  struct Before {
    var workspace: [String: Data]
    var cachedObjects: Set<String>
  }

  /// The name of the directory remote inside each workspace.
  let remoteName = "store"

  // MARK: - The suite, one test per command

  func testAddKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(
        name: "add", arguments: ["add", "data/raw", "data/many", "data/one.bin"], trials: 45,
        prepare: { dir in
          try self.initWorkspace(dir)
          try self.writeData(dir)
        },
        verify: { dir, context in
          // The ledger knows who made the data, even when the kill came between pointer and ledger.
          let lineage = try self.dv("lineage", "show", "data/many", in: dir)
          XCTAssertTrue(lineage.stdout.contains("dv add"), "\(context): \(lineage.stdout)\(lineage.stderr)")
        }))
  }

  func testReproKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(name: "repro", arguments: ["repro"], trials: 30) { dir in
        try self.initWorkspace(dir)
        try self.write(dir + "/raw.csv", "c\nb\na\n")
        try self.write(dir + "/params.yaml", "seed: 1\n")
        try self.write(dir + "/stages.yaml", self.pipeline)
        let first = try self.dv("repro", in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        // Every stage is stale again: outputs recorded and cached, about to be replaced.
        try self.write(dir + "/params.yaml", "seed: 2\n")
      })
  }

  func testCheckoutKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(name: "checkout", arguments: ["checkout"], trials: 35) { dir in
        try self.initWorkspace(dir)
        try self.writeData(dir)
        try self.addData(dir)
        try FileSystem.removeTree(self.root + "/" + dir + "/data/many")
        try FileSystem.removeTree(self.root + "/" + dir + "/data/one.bin")
        // A file checkout deletes (its content is cached) and one it rewrites.
        try self.write(dir + "/data/raw/extra.csv", "id,v\n1,a\n")
        try self.write(dir + "/data/raw/b.csv", "id,v\n3,c\n")
      })
  }

  func testPushKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(name: "push", arguments: ["push"], trials: 35) { dir in
        try self.initWorkspace(dir)
        try self.writeData(dir)
        try self.addData(dir)
        XCTAssertEqual(try self.dv("remote", "add", "-d", self.remoteName, self.remoteName, in: dir).code, 0)
      })
  }

  func testPullKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(name: "pull", arguments: ["pull"], trials: 40) { dir in
        try self.initWorkspace(dir)
        try self.writeData(dir)
        try self.addData(dir)
        XCTAssertEqual(try self.dv("remote", "add", "-d", self.remoteName, self.remoteName, in: dir).code, 0)
        let push = try self.dv("push", in: dir)
        XCTAssertEqual(push.code, 0, push.stderr)
        // A fresh clone: pointers only, no cache, no copy of the remote's pack indexes.
        for gone in [".pipeline/cache", ".pipeline/tmp/remotes", "data/raw", "data/many", "data/one.bin"] {
          try FileSystem.removeTree(self.root + "/" + dir + "/" + gone)
        }
      })
  }

  func testGCKilledAtAnyWrite() throws {
    try crashSuite(
      Scenario(name: "gc", arguments: ["gc"], trials: 26) { dir in
        try self.initWorkspace(dir)
        try self.writeData(dir)
        try self.addData(dir)
        // New content for data/many and data/one.bin untracked: 42 objects become garbage.
        for i in 0..<40 { try self.write(dir + "/data/many/f\(i).txt", "changed line \(i)\n") }
        XCTAssertEqual(try self.dv("add", "data/many", in: dir).code, 0)
        try FileSystem.removeFile(self.root + "/" + dir + "/data/one.bin.dv")
      })
  }

  /// `dv add` of a larger directory killed by a signal after a random 5–200 ms (seeded, so a
  /// failure can be replayed), rather than at a write dv chose.
  func testAddKilledAfterRandomDelays() throws {
    let started = Date()
    let template = "template-delay"
    try initWorkspace(template)
    try writeData(template)
    for i in 0..<300 {
      try write(template + "/data/big/d\(i % 7)/f\(i).txt", String(repeating: "row \(i)\n", count: 800))
    }
    for i in 0..<3 { try write(template + "/data/big/large\(i).bin", String(repeating: "large \(i) ", count: 300_000)) }
    let arguments = ["add", "data/big", "data/raw"]
    let reference = try referenceOutcome(template: template, arguments: arguments)
    let before = Before(workspace: snapshot(template), cachedObjects: cachedObjectNames(template))
    var random = SeededRandom(seed: 0x5EED_0009)
    var killed = 0
    for trial in 0..<10 {
      let delay = 5 + Int(random.next() % 196)
      let dir = "delay-\(trial)"
      try copy(template, to: dir)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: Self.binary)
      process.arguments = arguments
      process.currentDirectoryURL = URL(fileURLWithPath: root + "/" + dir)
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      usleep(UInt32(delay * 1000))
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      if process.terminationReason == .uncaughtSignal { killed += 1 }
      let context = "add killed after \(delay) ms"
      try checkAfterKill(dir, before: before, reference: reference, context: context)
      try checkRerun(dir, arguments: arguments, reference: reference, context: context)
      try FileSystem.removeTree(root + "/" + dir)
    }
    print(
      "crash suite: add (random delay): 10 trials, \(killed) killed mid-run, in \(seconds(since: started)) s")
  }

  // MARK: - Regressions the suite found

  /// A checkout killed while it copied a file left `.name.dvtmp.<pid>.<n>` in the tracked
  /// directory: status called the directory modified and the next checkout refused to delete
  /// the partial copy as uncached data.
  func testAPartialCopyOfAKilledCheckoutIsNeitherDataNorKept() throws {
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "data/raw").code, 0)
    let dead = try pidOfAFinishedProcess()
    try write("data/raw/.a.csv.dvtmp.\(dead).12345", "id,v\n1")
    try write("data/.raw.dv.dvtmp.\(dead).777", "version: 1\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    try FileSystem.removeFile(root + "/data/raw/b.csv")
    let checkout = try dv("checkout")
    XCTAssertEqual(checkout.code, 0, checkout.stderr)
    XCTAssertEqual(read("data/raw/b.csv"), "id,v\n2,b\n")
    XCTAssertFalse(exists("data/raw/.a.csv.dvtmp.\(dead).12345"), "the dead process's file is removed")
    XCTAssertFalse(exists("data/.raw.dv.dvtmp.\(dead).777"))
    // A live writer's temporary file is skipped, never removed.
    try write("data/raw/.c.csv.dvtmp.\(getpid()).1", "partial")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
    XCTAssertTrue(exists("data/raw/.c.csv.dvtmp.\(getpid()).1"))
  }

  /// A repro killed after a stage ran but before its outputs were cached and locked left
  /// outputs that the next repro refused to delete ("not in the cache").
  func testAReproKilledWhileRecordingAStageRunsAgain() throws {
    try initWorkspace("")
    try write("raw.csv", "c\nb\na\n")
    try write("params.yaml", "seed: 1\n")
    try write("stages.yaml", pipeline)
    let killed = try dv("repro", env: ["DV_FAILPOINT": "cache:before-commit@3:kill"])
    XCTAssertEqual(killed.code, SIGKILL, killed.stderr)
    let again = try dv("repro")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertEqual(read("out/count.txt")?.trimmingCharacters(in: .whitespaces), "40\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  /// A repro killed while it deleted a stage's old output directory left part of it; every file
  /// left was cached, but the partial directory as a whole was not, and the next repro refused.
  func testAnOutputDirectoryHalfDeletedByAKilledReproIsReplaced() throws {
    try initWorkspace("")
    try write("raw.csv", "c\nb\na\n")
    try write("params.yaml", "seed: 1\n")
    try write("stages.yaml", pipeline)
    XCTAssertEqual(try dv("repro").code, 0)
    for i in 1...20 { try FileSystem.removeFile(root + "/parts/p\(i).txt") }
    try write("params.yaml", "seed: 2\n")
    let again = try dv("repro")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertEqual(read("parts/p7.txt"), "part 7 seed 2\n")
  }

  /// A push killed mid-upload left `.dvtmp.*` files in a directory remote for good; a pack being
  /// built stayed in `.pipeline/tmp`.
  func testAKilledPushLeavesNoTemporaryFilesAfterTheNextPush() throws {
    try initWorkspace("")
    try writeData("")
    try addData("")
    XCTAssertEqual(try dv("remote", "add", "-d", remoteName, remoteName).code, 0)
    let killed = try dv("push", "-j", "1", env: ["DV_FAILPOINT": "local-remote:before-rename:kill"])
    XCTAssertEqual(killed.code, SIGKILL)
    XCTAssertFalse(temporaryFiles("").isEmpty, "the kill left a temporary file")
    let push = try dv("push")
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertEqual(temporaryFiles(""), [])
  }

  /// A gc killed between removing objects and telling the stat cache so left the stat cache
  /// vouching for objects that were gone: the next `dv add` skipped them.
  func testAGCKilledHalfwayLeavesNoStaleCachedFlags() throws {
    try initWorkspace("")
    for i in 0..<5 { try write("data/d/f\(i).txt", "file \(i)\n") }
    XCTAssertEqual(try dv("add", "data/d").code, 0)
    XCTAssertEqual(cachedObjects().count, 6)
    try FileSystem.removeFile(root + "/data/d.dv")
    let killed = try dv("gc", env: ["DV_FAILPOINT": "write@6:kill"])
    XCTAssertEqual(killed.code, SIGKILL)
    XCTAssertEqual(try dv("add", "data/d").code, 0)
    XCTAssertEqual(cachedObjects().count, 6, "every object is back in the cache")
    try FileSystem.removeTree(root + "/data/d")
    let checkout = try dv("checkout")
    XCTAssertEqual(checkout.code, 0, checkout.stderr)
    XCTAssertEqual(read("data/d/f3.txt"), "file 3\n")
  }

  // MARK: - The loop

  func crashSuite(_ scenario: Scenario) throws {
    let started = Date()
    let template = "template-" + scenario.name
    try scenario.prepare(template)
    let reference = try referenceOutcome(template: template, arguments: scenario.arguments)
    let before = Before(workspace: snapshot(template), cachedObjects: cachedObjectNames(template))
    let writes = try countWrites(template: template, arguments: scenario.arguments)
    XCTAssertGreaterThan(writes, 0, "\(scenario.name) writes")
    let points = killPoints(writes: writes, trials: scenario.trials)
    var trials = 0
    for n in points {
      let dir = "trial-\(scenario.name)-\(n)"
      try copy(template, to: dir)
      let context = "\(scenario.name) killed before write \(n) of \(writes)"
      let run = try self.run(Self.binary, scenario.arguments, in: dir, env: ["DV_FAILPOINT": "write@\(n):kill"])
      trials += 1
      if run.code == SIGKILL {
        try checkAfterKill(dir, before: before, reference: reference, context: context)
      } else {
        // The run made fewer writes this time (parallel work varies a little): it completed.
        XCTAssertEqual(run.code, 0, "\(context): \(run.stderr)")
      }
      try checkRerun(dir, arguments: scenario.arguments, reference: reference, context: context)
      try scenario.verify?(dir, context)
      try FileSystem.removeTree(root + "/" + dir)
      if run.code != SIGKILL { break }
    }
    print(
      "crash suite: \(scenario.name): \(trials) trials over \(writes) writes in \(seconds(since: started)) s")
  }

  /// Up to `trials` kill points spread evenly over `1...writes`, always including the first and
  /// the last write.
  func killPoints(writes: Int, trials: Int) -> [Int] {
    guard writes > trials else { return Array(1...max(1, writes)) }
    var points: [Int] = []
    for k in 0..<trials {
      let n = 1 + k * (writes - 1) / (trials - 1)
      if points.last != n { points.append(n) }
    }
    return points
  }

  /// How many writes an uninterrupted run makes: the smallest N at which `write@N:kill` no longer
  /// kills, found by doubling and bisection on copies of the template.
  func countWrites(template: String, arguments: [String]) throws -> Int {
    func completes(_ n: Int) throws -> Bool {
      let dir = "count-\(n)"
      try copy(template, to: dir)
      defer { try? FileSystem.removeTree(root + "/" + dir) }
      let run = try self.run(Self.binary, arguments, in: dir, env: ["DV_FAILPOINT": "write@\(n):kill"])
      XCTAssertTrue(run.code == 0 || run.code == SIGKILL, run.stderr)
      return run.code != SIGKILL
    }
    var low = 0
    var high = 16
    while try !completes(high) {
      low = high
      high *= 2
      if high > 1 << 16 { XCTFail("no end to the writes of \(arguments)"); return low }
    }
    while high - low > 1 {
      let mid = (low + high) / 2
      if try completes(mid) { high = mid } else { low = mid }
    }
    return low
  }

  /// What an uninterrupted run of the command leaves.
  func referenceOutcome(template: String, arguments: [String]) throws -> Outcome {
    let dir = template + "-reference"
    try copy(template, to: dir)
    defer { try? FileSystem.removeTree(root + "/" + dir) }
    let run = try self.run(Self.binary, arguments, in: dir)
    XCTAssertEqual(run.code, 0, "uninterrupted \(arguments): \(run.stderr)")
    return outcome(dir)
  }

  // MARK: - The checks

  /// The invariants right after a kill, before anything else runs.
  func checkAfterKill(_ dir: String, before: Before, reference: Outcome, context: String) throws {
    let cacheAfterKill = cachedObjectNames(dir)
    let contents = cachedContents(dir)
    let workspace = snapshot(dir)
    for (path, bytes) in before.workspace where !isRecord(path) {
      if workspace[path] != bytes && !contents.contains(bytes) {
        XCTFail("\(context): '\(path)' is lost (not in the workspace, not in the cache)")
      }
    }
    // Objects that were cached before and that an uninterrupted run keeps are still cached.
    let kept = before.cachedObjects.intersection(reference.cachedObjects)
    XCTAssertTrue(
      kept.isSubset(of: cacheAfterKill), "\(context): cached objects lost: \(kept.subtracting(cacheAfterKill).sorted())"
    )
    let objects = root + "/" + dir + "/.pipeline/cache/sha256/"
    let writable = cacheAfterKill.filter { name in
      var st = stat()
      return lstat(objects + name.prefix(2) + "/" + name.dropFirst(2), &st) == 0 && st.st_mode & 0o222 != 0
    }
    XCTAssertEqual(writable, [], "\(context): cache objects are not read-only")
    let fsck = try dv("fsck", in: dir)
    XCTAssertEqual(fsck.code, 0, "\(context): fsck: \(fsck.stdout)\(fsck.stderr)")
    let status = try dv("status", in: dir)
    XCTAssertNotEqual(status.code, 2, "\(context): status cannot read the records: \(status.stderr)")
    XCTAssertFalse(status.stderr.contains("Fatal error"), "\(context): \(status.stderr)")
  }

  /// Runs the command again (no fail point): it succeeds and leaves what an uninterrupted run
  /// leaves, and no temporary file.
  func checkRerun(_ dir: String, arguments: [String], reference: Outcome, context: String) throws {
    let rerun = try self.run(Self.binary, arguments, in: dir)
    XCTAssertEqual(rerun.code, 0, "\(context): the rerun failed: \(rerun.stderr)")
    let after = outcome(dir)
    if after.workspace != reference.workspace {
      let differing = Set(after.workspace.keys).union(reference.workspace.keys).filter {
        after.workspace[$0] != reference.workspace[$0]
      }
      XCTFail("\(context): after the rerun these workspace files differ: \(differing.sorted())")
    }
    XCTAssertEqual(
      after.cachedObjects.symmetricDifference(reference.cachedObjects).count, 0,
      "\(context): the cache differs after the rerun")
    if after.remote != reference.remote {
      let differing = Set(after.remote.keys).union(reference.remote.keys).filter {
        after.remote[$0] != reference.remote[$0]
      }
      XCTFail("\(context): after the rerun the remote differs: \(differing.sorted())")
    }
    XCTAssertEqual(temporaryFiles(dir), [], "\(context): temporary files stay")
  }

  /// dv's own records, rewritten by design: checked by parsing (status), not by content.
  func isRecord(_ path: String) -> Bool { path.hasSuffix(".dv") || path == "stages.lock" }

  // MARK: - Workspaces

  let pipeline = """
    stages:
      prepare:
        cmd: sort raw.csv > prepared.csv && echo seed ${seed} >> prepared.csv
        deps: [raw.csv]
        params: [seed]
        outs: [prepared.csv]
      split:
        cmd: mkdir -p parts && for i in $(seq 1 40); do echo "part $i seed ${seed}" > parts/p$i.txt; done
        deps: [prepared.csv]
        params: [seed]
        outs: [parts]
      count:
        cmd: mkdir -p out && cat parts/* | wc -l > out/count.txt && echo '{"n":1}' > metrics.json
        deps: [parts]
        outs: [out]
        metrics: [metrics.json]
    """

  func initWorkspace(_ dir: String) throws {
    try FileSystem.createDirectory(root + "/" + dir)
    XCTAssertEqual(try dv("init", "--no-scm", in: dir).code, 0)
  }

  /// Three small files in a tree, 40 small files (enough for a pack) and one file above the pack
  /// threshold (a loose object on a remote).
  func writeData(_ dir: String) throws {
    let prefix = dir.isEmpty ? "" : dir + "/"
    try write(prefix + "data/raw/a.csv", "id,v\n1,a\n")
    try write(prefix + "data/raw/b.csv", "id,v\n2,b\n")
    try write(prefix + "data/raw/sub/c.csv", "id,v\n3,c\n")
    for i in 0..<40 {
      try write(prefix + "data/many/f\(i).txt", "line \(i) " + String(repeating: "x", count: i * 7) + "\n")
    }
    try write(prefix + "data/one.bin", String(repeating: "one large object ", count: 75_000))
  }

  func addData(_ dir: String) throws {
    let add = try dv("add", "data/raw", "data/many", "data/one.bin", in: dir)
    XCTAssertEqual(add.code, 0, add.stderr)
  }

  func copy(_ from: String, to: String) throws {
    try? FileSystem.removeTree(root + "/" + to)
    let result = try run("/bin/cp", ["-a", root + "/" + from, root + "/" + to])
    XCTAssertEqual(result.code, 0, result.stderr)
  }

  // MARK: - Looking at a workspace

  func outcome(_ dir: String) -> Outcome {
    var remote = snapshot(dir + "/" + remoteName, skipping: [])
    // A pack without its index (a push killed between the two) is garbage for `gc --remote`.
    for key in remote.keys where key.hasPrefix("packs/") && key.hasSuffix(".pack") {
      if remote[String(key.dropLast(5)) + ".idx"] == nil { remote[key] = nil }
    }
    return Outcome(workspace: snapshot(dir), cachedObjects: cachedObjectNames(dir), remote: remote)
  }

  /// Regular files under `dir` (relative to the test root) with their bytes; hidden files
  /// included, `skipping` top-level names.
  func snapshot(_ dir: String, skipping: Set<String>? = nil) -> [String: Data] {
    let skip = skipping ?? [".pipeline", remoteName]
    let base = root + "/" + dir
    var result: [String: Data] = [:]
    var pending = [""]
    while let relative = pending.popLast() {
      guard let entries = try? FileSystem.listDirectory(relative.isEmpty ? base : base + "/" + relative) else {
        continue
      }
      for entry in entries {
        if relative.isEmpty && skip.contains(entry.name) { continue }
        let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
        if isDirectory(base + "/" + path, type: entry.type) {
          pending.append(path)
        } else if let bytes = try? FileSystem.readFileIfPresent(base + "/" + path) {
          result[path] = Data(bytes)
        }
      }
    }
    return result
  }

  func cachedObjectNames(_ dir: String) -> Set<String> {
    Set(cachedObjects(in: dir))
  }

  func cachedContents(_ dir: String) -> Set<Data> {
    Set(cacheContents(in: dir).values.map { Data($0) })
  }

  /// dv temporary files anywhere under `dir` (workspace, `.pipeline`, the remote): siblings of
  /// atomic writes and upload temporaries (`.dvtmp.`) and work files in `.pipeline/tmp`.
  func temporaryFiles(_ dir: String) -> [String] {
    let base = dir.isEmpty ? root! : root + "/" + dir
    var found: [String] = []
    var pending = [""]
    while let relative = pending.popLast() {
      guard let entries = try? FileSystem.listDirectory(relative.isEmpty ? base : base + "/" + relative) else {
        continue
      }
      for entry in entries {
        let path = relative.isEmpty ? entry.name : relative + "/" + entry.name
        if isDirectory(base + "/" + path, type: entry.type) {
          pending.append(path)
        } else if entry.name.contains(".dvtmp.")
          || (relative == ".pipeline/tmp"
            && ["obj.", "pack.", "run.", "download."].contains(where: { entry.name.hasPrefix($0) }))
        {
          found.append(path)
        }
      }
    }
    return found.sorted()
  }

  func isDirectory(_ path: String, type: UInt8) -> Bool {
    if type != UInt8(DT_UNKNOWN) { return type == UInt8(DT_DIR) }
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
  }

  /// The pid of a process that has exited (so its temporary files are nobody's).
  func pidOfAFinishedProcess() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    return process.processIdentifier
  }

  func seconds(since start: Date) -> String { String(format: "%.1f", Date().timeIntervalSince(start)) }
}

/// A small deterministic generator (SplitMix64), so a failing random-delay trial can be replayed.
struct SeededRandom {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
