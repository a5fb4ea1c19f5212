import DVBasics
import DVStorage
import Foundation
import XCTest

/// `dv repro` with the Slurm executor against the real single-node cluster `scripts/test`
/// starts (Debian's slurmctld, slurmd and munge; Tests/Support/slurm). Without it the tests skip.
final class SlurmTests: DVTestCase {
  var slurm: [String: String] = [:]

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard let conf = ProcessInfo.processInfo.environment["DV_TEST_SLURM_CONF"] else {
      throw XCTSkip("no Slurm test cluster: run scripts/test, which starts one and sets DV_TEST_SLURM_CONF")
    }
    slurm = ["SLURM_CONF": conf]
  }

  /// `dv` with the cluster's configuration.
  @discardableResult
  func dvSlurm(_ args: String..., timeout: Double = 300) throws -> RunResult {
    try run(Self.binary, args, env: slurm, timeout: timeout)
  }

  /// A Slurm command's output (squeue, scontrol, scancel).
  func slurmCommand(_ args: [String]) throws -> String {
    try run("/usr/bin/env", args, env: slurm).stdout
  }

  /// This workspace's jobs (id, state) as squeue lists them, oldest first.
  func jobs(of workspace: String? = nil) throws -> [(id: String, state: String, name: String)] {
    let names = try jobNames(of: workspace ?? root)
    return try slurmCommand(["squeue", "--states=all", "--noheader", "--format=%i|%T|%j"]).split(separator: "\n")
      .compactMap { line -> (String, String, String)? in
        let fields = line.split(separator: "|").map(String.init)
        guard fields.count == 3, names.contains(fields[2]) else { return nil }
        return (fields[0], fields[1], fields[2])
      }.sorted { (Int($0.0) ?? 0) < (Int($1.0) ?? 0) }
  }

  /// The job names this workspace's stages get (`dv.<tag>.<stage>`), from its own stage names.
  func jobNames(of workspace: String) throws -> Set<String> {
    let tag = SHA256Hasher.hash(Array(workspace.utf8)).hex.prefix(8)
    return Set(["a", "b", "c", "d", "e", "f", "slow", "fail", "flaky", "long", "seen"].map { "dv.\(tag).\($0)" })
  }

  func lineageLog() throws -> [[String: Any]] {
    let log = try dv("lineage", "log", "--limit", "1", "--json")
    let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [[String: Any]])
    return try XCTUnwrap(runs.first?["stage_runs"] as? [[String: Any]])
  }

  let pipeline = """
    stages:
      a:
        cmd: printf 'alpha\\n' > a.txt && echo wrote a
        outs: [a.txt]
        resources: {cpus: 1, mem: 64M, time: "5"}
      b:
        cmd: tr a-z A-Z < a.txt > b.txt
        deps: [a.txt]
        outs: [b.txt]
      c:
        plugin: split
        with: {input: rows.jsonl, ratios: {train: 0.5, test: 0.5}, key: id, outdir: parts}
        deps: [rows.jsonl]
        outs: [parts]

    """

  func writePipeline() throws {
    try write("stages.yaml", pipeline)
    try write("rows.jsonl", (0..<40).map { "{\"id\": \($0)}\n" }.joined())
  }

  func testStagesRunAsJobsAndRecordWhatALocalRunRecords() throws {
    // The same pipeline, locally, in a workspace of its own.
    let local = root + "/local"
    try FileSystem.createDirectory(local)
    XCTAssertEqual(try dv("init", "--no-scm", in: "local").code, 0)
    try write("local/stages.yaml", pipeline)
    try write("local/rows.jsonl", (0..<40).map { "{\"id\": \($0)}\n" }.joined())
    XCTAssertEqual(try dv("repro", in: "local").code, 0)

    try FileSystem.createDirectory(root + "/cluster")
    XCTAssertEqual(try dv("init", "--no-scm", in: "cluster").code, 0)
    try write("cluster/stages.yaml", pipeline)
    try write("cluster/rows.jsonl", (0..<40).map { "{\"id\": \($0)}\n" }.joined())
    XCTAssertEqual(try dv("config", "executor", "slurm", in: "cluster").code, 0)
    let repro = try run(Self.binary, ["repro"], in: "cluster", env: slurm, timeout: 300)
    XCTAssertEqual(repro.code, 0, repro.stderr)
    XCTAssertTrue(repro.stdout.contains("wrote a"), "the job's output streams back: \(repro.stdout)")
    for file in ["a.txt", "b.txt", "parts/train.jsonl", "parts/test.jsonl"] {
      XCTAssertEqual(read("cluster/" + file), read("local/" + file), file)
    }
    XCTAssertEqual(read("cluster/stages.lock"), read("local/stages.lock"), "the same lock as a local run")

    let log = try run(Self.binary, ["lineage", "log", "--limit", "1", "--json"], in: "cluster")
    let runs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [[String: Any]])
    let stageRuns = try XCTUnwrap(runs.first?["stage_runs"] as? [[String: Any]])
    XCTAssertEqual(stageRuns.count, 3)
    for stageRun in stageRuns {
      let execution = try XCTUnwrap(stageRun["execution"] as? [String: Any], "\(stageRun)")
      XCTAssertEqual(execution["executor"] as? String, "slurm")
      XCTAssertEqual(execution["job_state"] as? String, "COMPLETED")
      XCTAssertNotNil(execution["job_id"] as? String)
      XCTAssertNotNil(execution["node"] as? String)
      XCTAssertNotNil(execution["queue_ms"] as? Int)
      XCTAssertNotNil(execution["run_ms"] as? Int)
    }
    let text = try run(Self.binary, ["lineage", "log", "--limit", "1"], in: "cluster")
    XCTAssertTrue(text.stdout.contains("(slurm job "), text.stdout)

    // Nothing stale: nothing is submitted.
    let cluster = root + "/cluster"
    let count = try jobs(of: cluster).count
    XCTAssertEqual(count, 3)
    let again = try run(Self.binary, ["repro"], in: "cluster", env: slurm)
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertFalse(again.stdout.contains("Running"), again.stdout)
    XCTAssertEqual(try jobs(of: cluster).count, count)

    // Another command for b runs as a job; going back to the first restores b's outputs from
    // the run cache, without a job.
    try write("cluster/stages.yaml", pipeline.replacingOccurrences(of: "tr a-z A-Z", with: "tr a-z B-Z"))
    let changed = try run(Self.binary, ["repro"], in: "cluster", env: slurm)
    XCTAssertEqual(changed.code, 0, changed.stderr)
    XCTAssertEqual(try jobs(of: cluster).count, count + 1)
    try write("cluster/stages.yaml", pipeline)
    let restored = try run(Self.binary, ["repro"], in: "cluster", env: slurm)
    XCTAssertEqual(restored.code, 0, restored.stderr)
    XCTAssertTrue(restored.stdout.contains("restored its outputs from the run cache"), restored.stdout)
    XCTAssertEqual(read("cluster/b.txt"), read("local/b.txt"))
    XCTAssertEqual(try jobs(of: cluster).count, count + 1, "no job for a restore")
  }

  func testJobsKeepsNJobsInTheClusterAtOnce() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let stages = ["a", "b", "c", "d", "e", "f"].map { name in
      "  \(name):\n    cmd: date +%s.%N > \(name).start && sleep 2 && date +%s.%N > \(name).end\n    outs: [\(name).start, \(name).end]\n"
    }.joined()
    try write("stages.yaml", "stages:\n" + stages)
    let repro = try dvSlurm("repro", "--executor", "slurm", "-j", "3")
    XCTAssertEqual(repro.code, 0, repro.stderr)
    // The most stages whose [start, end] overlap at one moment.
    let spans = try ["a", "b", "c", "d", "e", "f"].map { name -> (Double, Double) in
      (Double(try XCTUnwrap(read(name + ".start")).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0,
        Double(try XCTUnwrap(read(name + ".end")).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
    }
    let most = spans.map { span in spans.filter { $0.0 <= span.0 && span.0 < $0.1 }.count }.max() ?? 0
    XCTAssertEqual(most, 3, "three jobs at a time: \(spans)")
    XCTAssertEqual(try jobs().count, 6)
  }

  func testFailingTimedOutCancelledAndRetriedJobs() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write(
      "stages.yaml",
      """
      stages:
        fail:
          cmd: echo going down; exit 3
          outs: [never.txt]
        flaky:
          cmd: if [ -f ../tried ]; then echo ok > flaky.txt; else touch ../tried; exit 4; fi
          wdir: sub
          outs: [flaky.txt]
          retries: 1
        long:
          cmd: sleep 300 && touch long.txt
          outs: [long.txt]
          resources: {partition: short, time: "1"}

      """)
    try FileSystem.createDirectory(root + "/sub")

    let failed = try dvSlurm("repro", "--executor", "slurm", "fail")
    XCTAssertEqual(failed.code, 1)
    XCTAssertTrue(failed.stdout.contains("going down"), failed.stdout)
    XCTAssertEqual(failed.stderr, "error: stage 'fail' failed with exit code 3; finished stages are recorded in stages.lock, rerun `dv repro` after fixing it\n")
    let failedRun = try XCTUnwrap(try lineageLog().first?["execution"] as? [String: Any])
    XCTAssertEqual(failedRun["job_state"] as? String, "FAILED")

    let retried = try dvSlurm("repro", "--executor", "slurm", "flaky")
    XCTAssertEqual(retried.code, 0, retried.stderr)
    XCTAssertTrue(
      retried.stdout.contains("Stage 'flaky' failed (exited with code 4); starting attempt 2 of 2"), retried.stdout)
    XCTAssertEqual(read("sub/flaky.txt"), "ok\n")
    let retriedRun = try XCTUnwrap(try lineageLog().first?["execution"] as? [String: Any])
    XCTAssertEqual(retriedRun["attempts"] as? Int, 2)

    // Over its time limit: Slurm ends it between 60 and ~90 s after it started.
    let timedOut = try dvSlurm("repro", "--executor", "slurm", "long", timeout: 400)
    XCTAssertEqual(timedOut.code, 1)
    XCTAssertTrue(timedOut.stderr.contains("stage 'long' failed: Slurm job "), timedOut.stderr)
    XCTAssertTrue(timedOut.stderr.contains("State=TIMEOUT"), timedOut.stderr)
    XCTAssertTrue(timedOut.stderr.contains("ran past its time limit (resources.time)"), timedOut.stderr)
    XCTAssertEqual(timedOut.stderr.filter { $0 == "\n" }.count, 1, timedOut.stderr)
  }

  func testACancelledJobFailsItsStageWithSlurmsReason() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", "stages:\n  slow:\n    cmd: sleep 120 && touch slow.txt\n    outs: [slow.txt]\n")
    let repro = try startDV(["repro", "--executor", "slurm"])
    let job = try waitForJob(state: "RUNNING")
    _ = try slurmCommand(["scancel", job])
    repro.waitUntilExit()
    XCTAssertEqual(repro.terminationStatus, 1)
    let stderr = String(decoding: try XCTUnwrap(repro.stderrData), as: UTF8.self)
    XCTAssertTrue(stderr.contains("State=CANCELLED"), stderr)
    XCTAssertTrue(stderr.contains("it was cancelled (scancel)"), stderr)

    // A job that waits in the queue is said to, once, with Slurm's reason; cancelled there, it
    // has no node and no output.
    try write(
      "stages.yaml",
      "stages:\n  slow:\n    cmd: touch slow.txt\n    outs: [slow.txt]\n    resources: {slurm_extra: [\"--begin=now+3600\"]}\n")
    let waiting = try startDV(["repro", "--executor", "slurm"])
    let pending = try waitForJob(state: "PENDING")
    Thread.sleep(forTimeInterval: 7)  // dv says so after 5 s in the queue
    _ = try slurmCommand(["scancel", pending])
    waiting.waitUntilExit()
    XCTAssertEqual(waiting.terminationStatus, 1)
    let said = String(decoding: try XCTUnwrap(waiting.stderrData), as: UTF8.self)
    XCTAssertTrue(said.contains("dv: Slurm job \(pending) is waiting in the queue (BeginTime)"), said)
    XCTAssertTrue(said.contains("State=CANCELLED"), said)
  }

  func testCtrlCCancelsEveryJobAndRecordsThem() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let stages = ["a", "b", "c"].map { "  \($0):\n    cmd: sleep 120 && touch \($0).txt\n    outs: [\($0).txt]\n" }.joined()
    try write("stages.yaml", "stages:\n" + stages)
    let repro = try startDV(["repro", "--executor", "slurm", "-j", "3"])
    for _ in 0..<300 {  // up to 30 s for all three to run
      if try jobs().filter({ $0.state == "RUNNING" }).count == 3 { break }
      Thread.sleep(forTimeInterval: 0.1)
    }
    XCTAssertEqual(try jobs().filter { $0.state == "RUNNING" }.count, 3)
    kill(repro.processIdentifier, SIGINT)
    repro.waitUntilExit()
    XCTAssertEqual(repro.terminationStatus, 130)
    let states = Set(try jobs().map(\.state))
    XCTAssertEqual(states, ["CANCELLED"], "every job was cancelled")
    let stageRuns = try lineageLog()
    XCTAssertEqual(stageRuns.count, 3)
    for stageRun in stageRuns {
      XCTAssertEqual((stageRun["execution"] as? [String: Any])?["job_state"] as? String, "CANCELLED", "\(stageRun)")
    }
    for name in ["a", "b", "c"] { XCTAssertFalse(exists(name + ".txt")) }
  }

  func testARerunAfterAKilledReproWaitsForItsJobInsteadOfSubmittingAgain() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", "stages:\n  seen:\n    cmd: sleep 4 && echo done > seen.txt\n    outs: [seen.txt]\n")
    let first = try startDV(["repro", "--executor", "slurm"])
    let job = try waitForJob(state: "RUNNING")
    kill(first.processIdentifier, SIGKILL)
    first.waitUntilExit()
    let rerun = try dvSlurm("repro", "--executor", "slurm")
    XCTAssertEqual(rerun.code, 0, rerun.stderr)
    XCTAssertTrue(rerun.stderr.contains("waiting for Slurm job \(job), which an earlier dv started"), rerun.stderr)
    XCTAssertEqual(try jobs().map(\.id), [job], "no second job")
    XCTAssertEqual(read("seen.txt"), "done\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testANodeThatCannotSeeTheWorkspaceFailsTheStageWithOneLine() throws {
    // A workspace on a tmpfs mounted in a mount namespace of its own: dv sees it, slurmd (in
    // the machine's namespace) does not, as a node without the shared filesystem would not.
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { throw XCTSkip("no unshare") }
    let script = """
      set -e
      mkdir -p "$1/hidden"
      mount -t tmpfs dv-hidden "$1/hidden"
      cd "$1/hidden"
      "$2" init --no-scm > /dev/null
      printf 'stages:\\n  a:\\n    cmd: touch a.txt\\n    outs: [a.txt]\\n' > stages.yaml
      "$2" repro --executor slurm
      """
    let result = try run(
      "/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", root, Self.binary],
      env: slurm, timeout: 120)
    XCTAssertEqual(result.code, 1, result.stdout + result.stderr)
    XCTAssertTrue(result.stderr.hasPrefix("error: stage 'a' failed: Slurm job "), result.stderr)
    XCTAssertTrue(result.stderr.contains("see the workspace"), result.stderr)
    XCTAssertTrue(result.stderr.contains("docs/cluster.md"), result.stderr)
    XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
  }

  func testBadResourcesAreRejectedWhereTheyAreWritten() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let cases: [(String, String)] = [
      ("{cpus: 0}", "stages.yaml:4:23: resources.cpus must be a whole number of at least 1, not '0'"),
      ("{mem: lots}", "stages.yaml:4:22: resources.mem must be a size such as 512M, 4G or 4096 (MiB), not 'lots'"),
      ("{time: \"1:xx\"}", "stages.yaml:4:23: resources.time must be a time such as 30 (minutes), 1:30:00 or 2-00:00:00"),
      ("{gpu: 1}", "stages.yaml:4:17: unknown key 'gpu'"),
      ("{slurm_extra: [\"--job-name=x\"]}", "stages.yaml:4:31: resources.slurm_extra: dv sets --job-name itself"),
      ("{partition: \"-x\"}", "stages.yaml:4:28: resources.partition must be a name, not '-x'"),
    ]
    for (resources, message) in cases {
      try write("stages.yaml", "stages:\n  a:\n    cmd: touch a\n    resources: \(resources)\n    outs: [a]\n")
      let result = try dvSlurm("repro", "--executor", "slurm")
      XCTAssertEqual(result.code, 2, resources)
      XCTAssertTrue(result.stderr.hasPrefix("error: " + message), "\(resources): \(result.stderr)")
      XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1)
    }
    try write("stages.yaml", "stages:\n  a:\n    cmd: touch a\n    executor: cloud\n    outs: [a]\n")
    XCTAssertTrue(try dv("repro").stderr.hasPrefix("error: stages.yaml:4:15: unknown executor 'cloud' (use local or slurm)"))
    XCTAssertEqual(try dv("repro", "--executor", "cloud").code, 2)
    XCTAssertEqual(try jobs().count, 0, "nothing was submitted")
  }

  func testQueuedExperimentsRunTheirStagesOnTheCluster() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("params.yaml", "n: 1\n")
    try write("stages.yaml", "stages:\n  a:\n    cmd: echo ${n} > a.txt\n    params: [n]\n    outs: [a.txt]\n")
    XCTAssertEqual(try dv("config", "executor", "slurm").code, 0)
    XCTAssertEqual(try dv("exp", "run", "--queue", "-S", "n=2,3", "-n", "q").code, 0)
    let start = try dvSlurm("queue", "start", "-j", "2")
    XCTAssertEqual(start.code, 0, start.stdout + start.stderr)
    // Each copy's stage ran as a Slurm job named after the copy's workspace.
    for name in ["q-1", "q-2"] {
      let tag = SHA256Hasher.hash(Array((root + "/.pipeline/exps/" + name).utf8)).hex.prefix(8)
      let jobs = try slurmCommand(["squeue", "--states=all", "--noheader", "--name=dv.\(tag).a", "--format=%T"])
      XCTAssertEqual(jobs, "COMPLETED\n", name)
    }
    // Without git the workspace's own params.yaml counts as uncommitted work: --force replaces it.
    XCTAssertEqual(try dv("exp", "apply", "q-2", "--force").code, 0)
    XCTAssertEqual(read("a.txt"), "3\n")
  }

  // MARK: - Helpers

  /// Starts `dv args` in the root without waiting; its stderr is collected.
  func startDV(_ args: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.binary)
    process.arguments = args
    process.currentDirectoryURL = URL(fileURLWithPath: root)
    process.environment = ProcessInfo.processInfo.environment.merging(slurm) { $1 }
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.collectStderr(errors)
    return process
  }

  /// Waits (up to 60 s) until one of this workspace's jobs is in `state`; its id.
  func waitForJob(state: String) throws -> String {
    for _ in 0..<600 {
      if let job = try jobs().first(where: { $0.state == state }) { return job.id }
      Thread.sleep(forTimeInterval: 0.1)
    }
    XCTFail("no job reached \(state) within 60 s")
    return ""
  }
}

private let collected = Locked<[ObjectIdentifier: Data]>([:])

extension Process {
  /// Reads `pipe` to its end in the background; `stderrData` has it once the process ended.
  func collectStderr(_ pipe: Pipe) {
    let key = ObjectIdentifier(self)
    DispatchQueue.global().async {
      let data = pipe.fileHandleForReading.readDataToEndOfFile()
      collected.withLock { $0[key] = data }
    }
  }

  var stderrData: Data? {
    for _ in 0..<100 {  // the reader finishes right after the process ends
      if let data = collected.withLock({ $0[ObjectIdentifier(self)] }) { return data }
      Thread.sleep(forTimeInterval: 0.05)
    }
    return nil
  }
}
