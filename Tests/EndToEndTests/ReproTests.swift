import DVBasics
import Foundation
import XCTest

final class ReproTests: DVTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("raw.csv", "b\na\n")
    try write("params.yaml", "seed: 1\n")
  }

  func pipeline(_ text: String) throws { try write("stages.yaml", text) }

  let linear = """
    stages:
      prepare:
        cmd: sort raw.csv > prepared.csv && echo seed ${seed} >> prepared.csv
        deps: [raw.csv]
        params: [seed]
        outs: [prepared.csv]
      count:
        cmd: mkdir -p out && wc -l < prepared.csv > out/count.txt && echo '{"n":1}' > metrics.json
        deps: [prepared.csv]
        outs: [out]
        metrics: [metrics.json]
    """

  func testRunSkipStatusParamsAndDryRun() throws {
    try pipeline(linear)
    let first = try dv("repro")
    XCTAssertEqual(first.code, 0, first.stderr)
    XCTAssertTrue(first.stdout.contains("Running stage 'prepare' (never run):"), first.stdout)
    XCTAssertEqual(read("out/count.txt")?.trimmingCharacters(in: .whitespacesAndNewlines), "3")
    XCTAssertTrue((read("stages.lock") ?? "").contains("seed: 1"))
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")

    let again = try dv("repro")
    XCTAssertEqual(again.stdout, "Stage 'prepare' didn't change, skipping\nStage 'count' didn't change, skipping\n")

    try write("params.yaml", "seed: 2\n")
    XCTAssertEqual(
      try dv("status").stdout,
      "prepare: changed cmd; changed params: seed 1 -> 2\ncount: upstream stage 'prepare' is stale\n")
    let lockBefore = read("stages.lock")
    let dry = try dv("repro", "-n")
    XCTAssertTrue(dry.stdout.contains("Would run stage 'count' (upstream stage 'prepare' is stale)"), dry.stdout)
    XCTAssertEqual(read("stages.lock"), lockBefore, "a dry run changes nothing")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertTrue((read("prepared.csv") ?? "").contains("seed 2"))
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")

    // Outputs are cached: checkout brings them back, gc keeps them.
    try FileSystem.removeTree(root + "/out")
    XCTAssertTrue(try dv("status").stdout.contains("count: missing outs: out"))
    XCTAssertEqual(try dv("checkout").code, 0)
    XCTAssertTrue(try dv("gc").stdout.contains("removed"))
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testEarlyCutoffWhenAnUpstreamOutputComesOutIdentical() throws {
    try pipeline(linear)
    XCTAssertEqual(try dv("repro").code, 0)
    try write("raw.csv", "a\nb\n")  // same lines: the sorted output does not change
    let run = try dv("repro")
    XCTAssertTrue(run.stdout.contains("Running stage 'prepare' (changed deps: modified raw.csv)"), run.stdout)
    XCTAssertTrue(run.stdout.contains("Stage 'count' didn't change, skipping"), run.stdout)
  }

  func testAFailingStageStopsItsDownstreamButKeepsFinishedWork() throws {
    try pipeline(
      """
      stages:
        ok: {cmd: cp raw.csv ok.txt, deps: [raw.csv], outs: [ok.txt]}
        broken: {cmd: exit 3, deps: [raw.csv], outs: [broken.txt]}
        after: {cmd: cp broken.txt after.txt, deps: [broken.txt], outs: [after.txt]}
        other: {cmd: cp raw.csv other.txt, deps: [raw.csv], outs: [other.txt]}
      """)
    let failed = try dv("repro")
    assertFails(failed, code: 1, "stage 'broken' failed with exit code 3")
    XCTAssertTrue((read("stages.lock") ?? "").contains("ok.txt"), "the finished stage is recorded")
    XCTAssertFalse(exists("other.txt"), "without --keep-going the run stops")

    let going = try dv("repro", "--keep-going")
    XCTAssertEqual(going.code, 1)
    XCTAssertTrue(exists("other.txt"))
    XCTAssertFalse(exists("after.txt"))
    XCTAssertTrue(going.stdout.contains("Stage 'ok' didn't change, skipping"))
  }

  func testRetriesStartAFailedStageAgainAfterRemovingWhatItLeft() throws {
    try pipeline(
      """
      stages:
        flaky:
          cmd: echo partial > out.txt; if [ -f tried ]; then echo whole > out.txt; else touch tried; exit 5; fi
          outs: [out.txt]
          retries: 2
        hopeless:
          cmd: echo half > lost.txt; exit 6
          outs: [lost.txt]
          retries: 1
      """)
    let flaky = try dv("repro", "flaky")
    XCTAssertEqual(flaky.code, 0, flaky.stderr)
    XCTAssertTrue(flaky.stdout.contains("Stage 'flaky' failed (exited with code 5); starting attempt 2 of 3"), flaky.stdout)
    XCTAssertEqual(read("out.txt"), "whole\n")
    let log = try dv("lineage", "log", "--limit", "1")
    XCTAssertTrue(log.stdout.contains("flaky  ran") && log.stdout.contains("(2 attempts)"), log.stdout)

    let hopeless = try dv("repro", "hopeless")
    assertFails(hopeless, code: 1, "stage 'hopeless' failed with exit code 6")
    XCTAssertEqual(hopeless.stdout.components(separatedBy: "starting attempt").count, 2, "one retry: \(hopeless.stdout)")
    // What the failed runs left is theirs: a next run may replace it without --force.
    try pipeline(
      """
      stages:
        hopeless:
          cmd: echo whole > lost.txt
          outs: [lost.txt]
      """)
    XCTAssertEqual(try dv("repro", "hopeless").code, 0)
  }

  func testTheSlurmExecutorWithoutSlurmIsOneLineAndChangesNothing() throws {
    try pipeline("stages:\n  a:\n    cmd: echo new > a.txt\n    outs: [a.txt]\n    resources: {cpus: 2}\n")
    try write("a.txt", "mine\n")
    let result = try dv("repro", "--executor", "slurm", env: ["PATH": "/nonexistent"])
    assertFails(result, code: 1, "Slurm does not answer (cannot run squeue: ")
    XCTAssertTrue(result.stderr.contains("check `sinfo` and SLURM_CONF, or run with --executor local"), result.stderr)
    XCTAssertEqual(read("a.txt"), "mine\n", "the output was not touched")
    let bad = try dv("repro", "--executor", "cloud")
    assertFails(bad, code: 2, "unknown executor 'cloud' (use local or slurm)")
  }

  func testOutputsAreCheckedAndUncachedContentIsNeverDeleted() throws {
    try pipeline("stages:\n  make:\n    cmd: echo made > made.txt\n    outs: [made.txt, forgotten.txt]\n")
    assertFails(try dv("repro"), code: 1, "stage 'make' did not create 'forgotten.txt'")

    try pipeline("stages:\n  make:\n    cmd: echo made > made.txt\n    outs: [made.txt]\n")
    try write("made.txt", "precious hand-made content")
    assertFails(try dv("repro"), code: 1, "stage 'make' would delete 'made.txt'")
    XCTAssertEqual(read("made.txt"), "precious hand-made content")
    XCTAssertEqual(try dv("repro", "--force").code, 0)
    XCTAssertEqual(read("made.txt"), "made\n")
  }

  func testTargetsSelection() throws {
    try pipeline(linear)
    assertFails(try dv("repro", "nope"), code: 2, "no stage named 'nope'")
    let single = try dv("repro", "-s", "prepare")
    XCTAssertTrue(single.stdout.contains("Running stage 'prepare'"))
    XCTAssertFalse(single.stdout.contains("count"))
    XCTAssertTrue(try dv("repro", "count").stdout.contains("Running stage 'count'"))
  }

  func testInterruptStopsTheStageAndARerunContinues() throws {
    try pipeline(
      """
      stages:
        quick: {cmd: cp raw.csv quick.txt, deps: [raw.csv], outs: [quick.txt]}
        slow: {cmd: touch started && sleep 30 && touch slow.txt, deps: [quick.txt], outs: [slow.txt]}
      """)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.binary)
    process.arguments = ["repro"]
    process.currentDirectoryURL = URL(fileURLWithPath: root)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    for _ in 0..<200 where !exists("started") { usleep(50_000) }
    XCTAssertTrue(exists("started"))
    let sent = Date()
    kill(process.processIdentifier, SIGINT)
    process.waitUntilExit()
    XCTAssertLessThan(Date().timeIntervalSince(sent), 20, "the sleeping stage was stopped")
    XCTAssertEqual(process.terminationStatus, 130)
    XCTAssertTrue((read("stages.lock") ?? "").contains("quick.txt"))
    XCTAssertFalse((read("stages.lock") ?? "").contains("slow.txt"))

    try pipeline(
      """
      stages:
        quick: {cmd: cp raw.csv quick.txt, deps: [raw.csv], outs: [quick.txt]}
        slow: {cmd: touch slow.txt, deps: [quick.txt], outs: [slow.txt]}
      """)
    let rerun = try dv("repro")
    XCTAssertTrue(rerun.stdout.contains("Stage 'quick' didn't change, skipping"), rerun.stdout)
    XCTAssertTrue(exists("slow.txt"))
  }

  /// Proven with the times the stages write, not with timing assertions.
  func testJobsRunIndependentStagesAtTheSameTime() throws {
    let stage = { (name: String) in
      "  \(name): {cmd: date +%s%N > \(name).start && echo hello from \(name) && sleep 1 && date +%s%N > \(name).end, deps: [raw.csv], outs: [\(name).end]}"
    }
    try pipeline("stages:\n" + stage("a") + "\n" + stage("b") + "\n")
    let run = try dv("repro", "-j", "2")
    XCTAssertEqual(run.code, 0, run.stderr)
    XCTAssertTrue(run.stdout.contains("[a] hello from a"), run.stdout)
    XCTAssertTrue(run.stdout.contains("[b] hello from b"), run.stdout)
    func time(_ file: String) -> Int { Int(read(file)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
    XCTAssertLessThan(time("a.start"), time("b.end"))
    XCTAssertLessThan(time("b.start"), time("a.end"), "the two stages overlapped")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testStageAddAppendsKeepingCommentsAndValidates() throws {
    try pipeline(
      "# my pipeline\nstages:\n  # first\n  upper: {cmd: cp raw.csv upper.csv, deps: [raw.csv], outs: [upper.csv]}\n")
    let add = try dv(
      "stage", "add", "-n", "clean", "-d", "upper.csv", "-o", "clean.csv", "--", "sort", "upper.csv", ">", "clean.csv")
    XCTAssertEqual(add.code, 0, add.stderr)
    let text = read("stages.yaml") ?? ""
    XCTAssertTrue(text.hasPrefix("# my pipeline\nstages:\n  # first\n"), text)
    XCTAssertTrue(
      text.contains("  clean:\n    cmd: \"sort upper.csv > clean.csv\"\n    deps:\n    - upper.csv\n"), text)
    assertFails(try dv("stage", "add", "-n", "clean", "--", "true"), code: 2, "stage 'clean' already exists")
    assertFails(try dv("stage", "add", "-n", "bad name", "--", "true"), code: 2, "'bad name' is not a stage name")
    assertFails(
      try dv("stage", "add", "-n", "dup", "-o", "clean.csv", "--", "true"), code: 2,
      "output 'clean.csv' is declared by both 'clean' and 'dup'")
    XCTAssertFalse((read("stages.yaml") ?? "").contains("dup"), "nothing was written")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(read("clean.csv"), "a\nb\n")
  }

  func testDiamondFrozenAlwaysChangedPersistUncachedAndDownstream() throws {
    try pipeline(
      """
      stages:
        top: {cmd: cp raw.csv top.txt, deps: [raw.csv], outs: [top.txt]}
        left: {cmd: cp top.txt left.txt, deps: [top.txt], outs: [left.txt]}
        right: {cmd: cp top.txt right.txt, deps: [top.txt], outs: [right.txt]}
        join:
          cmd: cat left.txt right.txt > join.txt && echo run >> log.txt && echo '{"n":2}' > score.json
          deps: [left.txt, right.txt]
          outs:
            - join.txt
            - log.txt: {persist: true, cache: false}
          metrics: [score.json]
        stamp: {cmd: date +%s%N > stamp.txt, outs: [stamp.txt], always_changed: true}
        pinned: {cmd: echo pinned > pinned.txt, deps: [raw.csv], outs: [pinned.txt], frozen: true}
      """)
    let first = try dv("repro")
    XCTAssertEqual(first.code, 0, first.stderr)
    XCTAssertTrue(first.stdout.contains("Stage 'pinned' is frozen, skipping"), first.stdout)
    XCTAssertFalse(exists("pinned.txt"))
    XCTAssertEqual(read("join.txt"), "b\na\nb\na\n")

    let second = try dv("repro")
    XCTAssertTrue(second.stdout.contains("Running stage 'stamp' (always changed)"), second.stdout)
    XCTAssertTrue(second.stdout.contains("Stage 'join' didn't change, skipping"), second.stdout)

    // A persisted output survives a rerun; an uncached one is recorded but never cached.
    let again = try dv("repro", "-f", "-s", "join")
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertEqual(read("log.txt"), "run\nrun\n")
    XCTAssertFalse(again.stdout.contains("Running stage 'top'"), "-s runs only the named stage")
    try FileSystem.removeFile(root + "/score.json")
    try FileSystem.removeFile(root + "/join.txt")
    XCTAssertEqual(try dv("checkout").code, 0, "an uncached metric is not reported missing from the cache")
    XCTAssertTrue(exists("join.txt"))

    try write("raw.csv", "c\n")
    let downstream = try dv("repro", "--downstream", "left", "-n")
    XCTAssertTrue(downstream.stdout.contains("Would run stage 'top'"), downstream.stdout)
    XCTAssertTrue(downstream.stdout.contains("Would run stage 'join'"), downstream.stdout)
    XCTAssertFalse(downstream.stdout.contains("stamp"), downstream.stdout)
  }

  func testPluginStagesGoThroughTheRegistry() throws {
    try pipeline(
      "stages:\n  sh:\n    plugin: shell\n    with: {cmd: cp raw.csv sh.txt}\n    deps: [raw.csv]\n    outs: [sh.txt]\n"
    )
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(read("sh.txt"), "b\na\n")
    try pipeline("stages:\n  x:\n    plugin: teleport\n    outs: [x.txt]\n")
    assertFails(try dv("repro"), code: 2, "stages.yaml:2:3: unknown plugin 'teleport' (built in: ")
    assertFails(try dv("status"), code: 2, "unknown plugin 'teleport'")
  }

  func testForeachAndMatrixStagesRun() throws {
    try write("params.yaml", "seed: 1\nsizes: [small, large]\n")
    try pipeline(
      """
      stages:
        train:
          foreach: ${sizes}
          do:
            cmd: echo ${item} > model-${item}.txt
            deps: [raw.csv]
            outs:
              - model-${item}.txt
        grid:
          matrix: {lr: [1, 2], depth: [3]}
          cmd: echo ${item.lr}-${item.depth} > grid-${item.lr}-${item.depth}.txt
          outs:
            - grid-${item.lr}-${item.depth}.txt
      """)
    let run = try dv("repro", "-j", "2")
    XCTAssertEqual(run.code, 0, run.stderr)
    XCTAssertEqual(read("model-large.txt"), "large\n")
    XCTAssertEqual(read("grid-2-3.txt"), "2-3\n")
    XCTAssertTrue((read("stages.lock") ?? "").contains("train@small:"))
    XCTAssertTrue((read("stages.lock") ?? "").contains("grid@1-3:"))
    XCTAssertEqual(try dv("dag").stdout, "train@small\ntrain@large\ngrid@1-3\ngrid@2-3\n")
    let one = try dv("repro", "-f", "train@large")
    XCTAssertTrue(one.stdout.contains("Running stage 'train@large'"), one.stdout)
    XCTAssertFalse(one.stdout.contains("train@small"), one.stdout)
  }
}
