import DVBasics
import Foundation
import XCTest

/// `dv exp`: experiments run in the workspace with params overridden, compared, applied and
/// removed, with git and without.
final class ExperimentTests: DVTestCase {
  let params = "train:\n  lr: 0.1  # learning rate\n  epochs: 10\nprep:\n  seed: 1\n"
  let script = """
    lr=$1; epochs=$2
    if [ "$lr" = "9" ]; then echo diverged >&2; exit 7; fi
    python3 -c "import json; print(json.dumps({'loss': round($lr * $epochs, 6), 'acc': round(1 - $lr, 6)}))" > metrics.json
    echo "model lr=$lr epochs=$epochs" > model.txt

    """
  let stages = """
    stages:
      prep:
        cmd: echo seed ${prep.seed} > prep.txt
        params: [prep.seed]
        outs: [prep.txt]
      train:
        cmd: sh train.sh ${train.lr} ${train.epochs}
        deps: [train.sh, prep.txt]
        params: [train.lr, train.epochs]
        outs: [model.txt]
        metrics: [metrics.json]

    """

  func makePipeline(in directory: String = "", git: Bool) throws {
    let prefix = directory.isEmpty ? "" : directory + "/"
    if git { XCTAssertEqual(try run("/usr/bin/env", ["git", "init", "-q"], in: directory).code, 0) }
    XCTAssertEqual(try dv(git ? ["init"] : ["init", "--no-scm"], in: directory).code, 0)
    try write(prefix + "params.yaml", params)
    try write(prefix + "train.sh", script)
    try write(prefix + "stages.yaml", stages)
    XCTAssertEqual(try dv("repro", in: directory).code, 0)
  }

  func commitAll() throws {
    for args in [["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]] {
      XCTAssertEqual(try run("/usr/bin/env", ["git"] + args).code, 0)
    }
  }

  func showJSON(_ extra: String...) throws -> [[String: Any]] {
    let result = try dv(["exp", "show", "--json"] + extra)
    XCTAssertEqual(result.code, 0, result.stderr)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
  }

  func dv(_ args: [String], in cwd: String = "") throws -> RunResult { try run(Self.binary, args, in: cwd) }

  func testRunShowInEveryFormAndRemove() throws {
    try makePipeline(git: true)
    try commitAll()
    let small = try dv("exp", "run", "-S", "train.lr=0.01", "-n", "small")
    XCTAssertEqual(small.code, 0, small.stderr)
    XCTAssertTrue(small.stdout.contains("Stage 'prep' didn't change, skipping"), "only what the param reaches runs")
    XCTAssertTrue(small.stdout.contains("experiment 'small' finished"), small.stdout)
    XCTAssertTrue(read("params.yaml")?.contains("lr: 0.01") == true, "the workspace keeps the override, as DVC's")
    let big = try dv("exp", "run", "-S", "train.lr=0.5", "-S", "params.yaml:train.epochs=3")
    XCTAssertEqual(big.code, 0, big.stderr)
    let generated = try XCTUnwrap(
      big.stdout.split(separator: "\n").last?.split(separator: "'").dropFirst().first.map(String.init))
    XCTAssertTrue(generated.range(of: "^[a-z]+-[a-z]+$", options: .regularExpression) != nil, generated)
    XCTAssertEqual(try dv("exp", "run", "-S", "train.lr=0.2", "-n", "small").code, 2, "names are unique")

    let rows = try showJSON()
    XCTAssertEqual(rows.map { $0["name"] as? String }, ["workspace", "small", generated])
    let smallRow = rows[1]
    XCTAssertEqual(smallRow["state"] as? String, "succeeded")
    XCTAssertEqual((smallRow["params"] as? [String: [String: String]])?["params.yaml"]?["train.lr"], "0.01")
    XCTAssertEqual((smallRow["metrics"] as? [String: [String: String]])?["metrics.json"]?["loss"], "0.1")

    let table = try dv("exp", "show").stdout.split(separator: "\n").map(String.init)
    XCTAssertTrue(table[0].hasPrefix("Experiment ") && table[0].contains("  Created  "), table[0])
    XCTAssertTrue(table[0].contains("metrics.json:loss") && table[0].contains("train.lr"), table[0])
    XCTAssertLessThan(table[0].range(of: "metrics.json:acc")!.lowerBound, table[0].range(of: "prep.seed")!.lowerBound,
      "metrics before params")
    let csv = try dv("exp", "show", "--csv").stdout.split(separator: "\n")
    XCTAssertEqual(csv[0], "Experiment,Created,State,metrics.json:acc,metrics.json:loss,prep.seed,train.epochs,train.lr")
    XCTAssertTrue(csv[2].hasPrefix("small,") && csv[2].hasSuffix(",succeeded,0.99,0.1,1,10,0.01"), String(csv[2]))
    let md = try dv("exp", "show", "--md", "--only-changed").stdout.split(separator: "\n")
    XCTAssertEqual(md[0], "| Experiment | Created | State | metrics.json:acc | metrics.json:loss | train.epochs | train.lr |")
    XCTAssertEqual(md[1], "|---|---|---|---|---|---|---|")
    let sorted = try showJSON("--sort-by", "loss", "--sort-order", "desc").map { $0["name"] as? String }
    XCTAssertEqual(sorted, ["workspace", generated, "small"])
    let kept = try dv("exp", "show", "--csv", "--keep", "^train", "--drop", "epochs").stdout.split(separator: "\n")
    XCTAssertEqual(kept[0], "Experiment,Created,State,train.lr")
    XCTAssertEqual(try dv("exp", "show", "--sort-by", "nope").code, 2)

    XCTAssertEqual(try dv("exp", "remove", "small").stdout, "removed 1 experiment\n")
    XCTAssertEqual(try showJSON().count, 2)
    XCTAssertEqual(try dv("exp", "remove", "small").code, 2)
    XCTAssertEqual(try dv("exp", "remove", "--all").stdout, "removed 1 experiment\n")
    XCTAssertEqual(try showJSON().count, 1)
  }

  func testApplyRestoresOutputsAsADirectReproWouldAndGuardsUncommittedWork() throws {
    try makePipeline(git: true)
    try commitAll()
    XCTAssertEqual(try dv("exp", "run", "-S", "train.lr=0.01", "-n", "best").code, 0)
    XCTAssertEqual(try dv("exp", "run", "-S", "train.lr=0.5", "-n", "worse").code, 0)
    let apply = try dv("exp", "apply", "best")
    XCTAssertEqual(apply.code, 0, apply.stderr)

    // The same params run directly in a workspace of their own.
    try FileSystem.createDirectory(root + "/direct")
    XCTAssertEqual(try dv("init", "--no-scm", in: "direct").code, 0)
    try write("direct/params.yaml", params.replacingOccurrences(of: "lr: 0.1", with: "lr: 0.01"))
    try write("direct/train.sh", script)
    try write("direct/stages.yaml", stages)
    XCTAssertEqual(try dv("repro", in: "direct").code, 0)
    for file in ["model.txt", "metrics.json", "prep.txt"] { XCTAssertEqual(read(file), read("direct/" + file), file) }
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n", "nothing to rerun after apply")
    XCTAssertEqual((try showJSON()[0]["params"] as? [String: [String: String]])?["params.yaml"]?["train.lr"], "0.01")

    // An edit nobody recorded is not overwritten without --force.
    try write("params.yaml", params.replacingOccurrences(of: "epochs: 10", with: "epochs: 99"))
    let refused = try dv("exp", "apply", "worse")
    assertFails(refused, code: 1, "'params.yaml' has changes that are neither committed nor in an experiment")
    XCTAssertTrue(read("params.yaml")?.contains("epochs: 99") == true)
    XCTAssertEqual(try dv("exp", "apply", "worse", "--force").code, 0)
    XCTAssertTrue(read("model.txt")?.contains("lr=0.5") == true)
    // What is committed may be replaced: it is not lost.
    XCTAssertEqual(try run("/usr/bin/env", ["git", "checkout", "-q", "params.yaml"]).code, 0)
    XCTAssertEqual(try dv("exp", "apply", "best").code, 0)

    // A branch holding an experiment, made without touching the working tree or the branch.
    let status = try run("/usr/bin/env", ["git", "status", "--porcelain"]).stdout
    let branch = try dv("exp", "branch", "worse", "exp-worse")
    XCTAssertEqual(branch.code, 0, branch.stderr)
    XCTAssertTrue(branch.stdout.hasPrefix("branch 'exp-worse' ("), branch.stdout)
    XCTAssertEqual(try run("/usr/bin/env", ["git", "status", "--porcelain"]).stdout, status)
    XCTAssertTrue(try run("/usr/bin/env", ["git", "show", "exp-worse:params.yaml"]).stdout.contains("lr: 0.5"))
    XCTAssertEqual(try run("/usr/bin/env", ["git", "log", "-1", "--format=%s", "exp-worse"]).stdout, "dv experiment worse\n")
    assertFails(try dv("exp", "branch", "worse", "exp-worse"), code: 2, "a branch named 'exp-worse' exists")
    assertFails(try dv("exp", "branch", "worse", "bad..name"), code: 2, "'bad..name' is not a valid git branch name")
    XCTAssertEqual(try run("/usr/bin/env", ["git", "stash", "-q", "--include-untracked"]).code, 0)
    XCTAssertEqual(try run("/usr/bin/env", ["git", "checkout", "-q", "exp-worse"]).code, 0)
    XCTAssertEqual(try dv("checkout", "--force").code, 0)
    XCTAssertTrue(read("model.txt")?.contains("lr=0.5") == true)
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  /// Experiments pushed from one workspace are listed and applied in another that never ran
  /// them: through a directory remote, and through the S3 test server when it runs.
  func sharing(remote url: String, settings: [[String]] = [], env: [String: String] = [:]) throws {
    try FileSystem.createDirectory(root + "/a")
    try FileSystem.createDirectory(root + "/b")
    for side in ["a", "b"] {
      XCTAssertEqual(try dv("init", "--no-scm", in: side).code, 0)
      try write(side + "/params.yaml", params)
      try write(side + "/train.sh", script)
      try write(side + "/stages.yaml", stages)
      XCTAssertEqual(try run(Self.binary, ["remote", "add", "-d", "store", url], in: side).code, 0)
      for setting in settings {
        XCTAssertEqual(try run(Self.binary, ["remote", "modify", "store"] + setting, in: side).code, 0)
      }
    }
    XCTAssertEqual(try run(Self.binary, ["repro"], in: "a").code, 0)
    XCTAssertEqual(try run(Self.binary, ["exp", "run", "-S", "train.lr=0.01", "-n", "small"], in: "a").code, 0)
    XCTAssertEqual(try run(Self.binary, ["exp", "run", "-S", "train.lr=0.5", "-n", "big"], in: "a").code, 0)
    let push = try run(Self.binary, ["exp", "push"], in: "a", env: env)
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 2 experiments and "), push.stdout)
    XCTAssertEqual(try run(Self.binary, ["exp", "push"], in: "a", env: env).stdout.prefix(21), "pushed 0 experiments ")

    let pull = try run(Self.binary, ["exp", "pull", "small"], in: "b", env: env)
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.hasPrefix("pulled 1 experiment and "), pull.stdout)
    let all = try run(Self.binary, ["exp", "pull"], in: "b", env: env)
    XCTAssertTrue(all.stdout.hasPrefix("pulled 1 experiment and "), all.stdout)
    let shown = try run(Self.binary, ["exp", "show", "--csv"], in: "b").stdout.split(separator: "\n")
    XCTAssertEqual(shown.map { $0.split(separator: ",").first.map(String.init) }, ["Experiment", "workspace", "small", "big"])
    // b's params.yaml is its own uncommitted file (no git here): replacing it takes --force.
    assertFails(try run(Self.binary, ["exp", "apply", "small"], in: "b"), code: 1, "'params.yaml' has changes")
    let apply = try run(Self.binary, ["exp", "apply", "small", "--force"], in: "b")
    XCTAssertEqual(apply.code, 0, apply.stderr)
    XCTAssertEqual(read("b/model.txt"), "model lr=0.01 epochs=10\n", "outputs from the remote, not a run")
    XCTAssertEqual(read("b/metrics.json"), "{\"loss\": 0.1, \"acc\": 0.99}\n")
    XCTAssertEqual(read("b/prep.txt"), read("a/prep.txt"))
    XCTAssertTrue(read("b/params.yaml")?.contains("lr: 0.01") == true)
    XCTAssertEqual(try run(Self.binary, ["status"], in: "b").stdout, "data and pipelines are up to date\n")
    assertFails(try run(Self.binary, ["exp", "pull", "nothing"], in: "b", env: env), code: 2, "no experiment named 'nothing'")
  }

  func testPushAndPullThroughADirectoryRemote() throws {
    try FileSystem.createDirectory(root + "/remote")
    try sharing(remote: root + "/remote")
  }

  func testPushAndPullThroughS3() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else { throw XCTSkip("no S3 test server: run scripts/test") }
    try sharing(
      remote: "s3://\(bucket)/experiments-\(UUID().uuidString)", settings: [["endpoint", endpoint], ["region", "us-east-1"]],
      env: [
        "AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
      ])
  }

  func testASweepOfTwelveQueuedAndRunThreeAtATimeThenTheBestApplied() throws {
    try makePipeline(git: true)
    try commitAll()
    let before = read("params.yaml")
    let queued = try dv("exp", "run", "--queue", "-S", "train.lr=0.01,0.1,0.2", "-S", "train.epochs=range(1,5)", "-n", "sweep")
    XCTAssertEqual(queued.code, 0, queued.stderr)
    XCTAssertTrue(queued.stdout.hasPrefix("queued 12 experiments: sweep-1, sweep-2,"), queued.stdout)
    XCTAssertEqual(read("params.yaml"), before, "queueing changes nothing in the workspace")
    XCTAssertEqual(try dv("queue", "status").stdout.split(separator: "\n").count, 12)
    XCTAssertEqual(try showJSON("--hide-queued").count, 1)

    let start = try dv("queue", "start", "-j", "3")
    XCTAssertEqual(start.code, 0, start.stderr)
    XCTAssertTrue(start.stdout.hasSuffix("ran 12 experiments\n"), start.stdout)
    XCTAssertEqual(try dv("queue", "status").stdout, "the queue is empty\n")
    XCTAssertEqual(read("params.yaml"), before, "queued runs happen in copies, not in the workspace")
    XCTAssertEqual(try run("/usr/bin/env", ["git", "status", "--porcelain"]).stdout, "", "copies are ignored by git")
    XCTAssertTrue(try dv("queue", "logs", "sweep-1").stdout.contains("Running stage 'train'"))
    XCTAssertTrue(try dv("queue", "logs", "sweep-1").stdout.contains("Stage 'prep' didn't change, skipping"),
      "an unaffected stage does not run again")

    let rows = try showJSON("--sort-by", "loss")
    XCTAssertEqual(rows.count, 13)
    XCTAssertTrue(rows.dropFirst().allSatisfy { $0["state"] as? String == "succeeded" })
    let best = try XCTUnwrap(rows[1]["name"] as? String)
    XCTAssertEqual((rows[1]["metrics"] as? [String: [String: String]])?["metrics.json"]?["loss"], "0.01")
    for format in ["--csv", "--md"] { XCTAssertEqual(try dv("exp", "show", format).stdout.split(separator: "\n").count, format == "--csv" ? 14 : 15) }
    XCTAssertEqual(try dv("exp", "apply", best).code, 0)
    XCTAssertEqual(read("model.txt"), "model lr=0.01 epochs=1\n")
    XCTAssertEqual(try dv("status").stdout, "data and pipelines are up to date\n")
  }

  func testAQueueKilledMidRunLosesNothingWhenStartedAgain() throws {
    try makePipeline(git: false)
    try write("train.sh", "sleep 1\n" + script)
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(try dv("exp", "run", "--queue", "-S", "train.lr=0.2,0.3,0.4,0.5", "-n", "k").code, 0)
    let queue = Process()
    queue.executableURL = URL(fileURLWithPath: Self.binary)
    queue.arguments = ["queue", "start", "-j", "2"]
    queue.currentDirectoryURL = URL(fileURLWithPath: root)
    queue.standardOutput = FileHandle.nullDevice
    queue.standardError = FileHandle.nullDevice
    try queue.run()
    for _ in 0..<300 {  // up to 30 s for the first experiment to finish
      if try showJSON().contains(where: { $0["state"] as? String == "succeeded" }) { break }
      Thread.sleep(forTimeInterval: 0.1)
    }
    kill(queue.processIdentifier, SIGKILL)
    queue.waitUntilExit()
    let done = try showJSON().filter { $0["state"] as? String == "succeeded" }.count
    XCTAssertGreaterThan(done, 0)
    XCTAssertLessThan(done, 4)
    let again = try dv("queue", "start", "-j", "2")
    XCTAssertEqual(again.code, 0, again.stderr)
    let rows = try showJSON()
    XCTAssertEqual(rows.map { $0["name"] as? String }, ["workspace", "k-1", "k-2", "k-3", "k-4"])
    XCTAssertTrue(rows.dropFirst().allSatisfy { $0["state"] as? String == "succeeded" }, "\(rows)")
    XCTAssertEqual(
      Set(rows.dropFirst().compactMap { ($0["params"] as? [String: [String: String]])?["params.yaml"]?["train.lr"] }),
      ["0.2", "0.3", "0.4", "0.5"])
    XCTAssertEqual(try dv("exp", "remove", "--all").code, 0)
    XCTAssertEqual(try dv("exp", "run", "--queue", "-S", "train.lr=1,2", "-n", "r").code, 0)
    XCTAssertEqual(try dv("queue", "remove", "r-1").stdout, "removed 1 experiment from the queue\n")
    XCTAssertEqual(try dv("exp", "remove", "--queued").stdout, "removed 1 experiment\n")
    assertFails(try dv("queue", "remove", "r-1"), code: 2, "'r-1' is not a queued experiment")
  }

  func testQueuedCopiesGetWhatGitTracksAndWhatDashCNames() throws {
    XCTAssertEqual(try run("/usr/bin/env", ["git", "init", "-q"]).code, 0)
    XCTAssertEqual(try dv("init").code, 0)
    try write("params.yaml", "n: 1\n")
    try write(".gitignore", "local.txt\n")
    try write("local.txt", "not in git\n")
    try write("stages.yaml", "stages:\n  use:\n    cmd: cat local.txt > out.txt && echo ${n} >> out.txt\n    params: [n]\n    outs: [out.txt]\n")
    try commitAll()
    XCTAssertEqual(try dv("exp", "run", "--queue", "-S", "n=2", "-n", "without").code, 0)
    XCTAssertEqual(try dv("exp", "run", "--queue", "-S", "n=3", "-n", "with", "-C", "local.txt").code, 0)
    let start = try dv("queue", "start")
    XCTAssertEqual(start.code, 1, "one of the two failed: \(start.stdout)")
    XCTAssertTrue(start.stdout.contains("experiment 'without' failed") && start.stdout.contains("experiment 'with' succeeded"), start.stdout)
    XCTAssertTrue(try dv("queue", "logs", "without").stdout.contains("local.txt"), "its log says what was missing")
    XCTAssertEqual(try dv("exp", "apply", "with").code, 0)
    XCTAssertEqual(read("out.txt"), "not in git\n3\n")
    assertFails(try dv("exp", "run", "--queue", "-S", "n=4", "-C", "nowhere.txt"), code: 2, "-C 'nowhere.txt': there is nothing")
    XCTAssertEqual(try dv("exp", "run", "-S", "n=4", "-C", "local.txt").code, 2, "-C goes with --queue")
  }

  func testBadOverridesChangeNothingAndFailedRunsShowAsFailed() throws {
    try makePipeline(git: false)
    let before = read("params.yaml")
    let cases: [([String], String)] = [
      (["-S", "train.nope=1"], "params.yaml has no key 'train.nope'; write +train.nope=VALUE to add it"),
      (["-S", "+train.lr=1"], "params.yaml has 'train.lr' already"),
      (["-S", "train.lr=range(1,x)"], "range takes two or three numbers"),
      (["-S", "train.lr=range(5,1)"], "has no values"),
      (["-S", "train.lr=0.1,0.2"], "is a sweep of several values; queue it with `dv exp run --queue`"),
      (["-S", "train.sh:x=1"], "train.sh is not a params file (dv reads params from .yaml, .yml and .json files)"),
      (["-S", "stages.yaml:stages.x=1"], "stages.yaml has no key 'stages.x'"),
      (["-S", "train.lr"], "expected train.lr=VALUE"),
      (["-S", "~train.lr=3"], "~key removes a key and takes no value"),
      (["-S", "../up.yaml:a=1"], "is not a path inside the workspace"),
    ]
    for (args, message) in cases {
      let result = try dv(["exp", "run"] + args)
      assertFails(result, code: 2, message)
      XCTAssertEqual(read("params.yaml"), before, "\(args) changed nothing")
    }
    XCTAssertEqual(try showJSON().count, 1, "no experiment was recorded")

    // Adding and removing keys.
    let edits = try dv("exp", "run", "-S", "+train.momentum=0.9", "-S", "~prep.seed", "-n", "edits")
    assertFails(edits, code: 2, "stages.yaml:")  // prep's cmd reads ${prep.seed}, which is gone
    XCTAssertTrue(read("params.yaml")?.contains("momentum: 0.9") == true)
    try write("params.yaml", params)
    let failed = try dv("exp", "run", "-S", "train.lr=9", "-n", "diverged")
    XCTAssertEqual(failed.code, 1)
    let rows = try showJSON()
    XCTAssertEqual(rows.map { $0["name"] as? String }, ["workspace", "edits", "diverged"])
    XCTAssertEqual(rows.map { $0["state"] as? String }, [nil, "failed", "failed"])
    XCTAssertEqual(try showJSON("--hide-failed").count, 1)
    assertFails(try dv("exp", "apply", "diverged"), code: 1, "experiment 'diverged' failed; there is nothing to apply")
    assertFails(try dv("exp", "apply", "nothing"), code: 2, "no experiment named 'nothing'")
    assertFails(try dv("exp", "branch", "diverged", "b"), code: 2, "git")
  }
}
