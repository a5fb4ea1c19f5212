import DVBasics
import XCTest

final class MetricsTests: DVTestCase {
  func testMetricsShowAndDiffsAgainstGitHEAD() throws {
    for args in [["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"]] {
      XCTAssertEqual(try run("/usr/bin/env", ["git"] + args).code, 0)
    }
    XCTAssertEqual(try dv("init").code, 0)
    try write("params.yaml", "lr: 0.1\nunused: 5\n")
    try write(
      "stages.yaml",
      """
      stages:
        train:
          cmd: >-
            echo '{"loss": ${lr}, "acc": {"top1": 0.9}}' > m.json
          params: [lr]
          metrics: [m.json]
      """)
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(try dv("metrics", "show").stdout, "m.json\n    acc.top1: 0.9\n    loss: 0.1\n")
    XCTAssertEqual(try run("/usr/bin/env", ["git", "add", "-A"]).code, 0)
    XCTAssertEqual(try run("/usr/bin/env", ["git", "commit", "-qm", "one"]).code, 0)
    XCTAssertEqual(try dv("params", "diff").stdout, "no params changed since HEAD\n")

    try write("params.yaml", "lr: 0.2\nunused: 6\n")
    XCTAssertEqual(try dv("params", "diff").stdout, "params.yaml  lr: 0.1 -> 0.2  (+0.1)\n", "only params stages read")
    XCTAssertEqual(try dv("repro").code, 0)
    XCTAssertEqual(try dv("metrics", "diff").stdout, "m.json  loss: 0.1 -> 0.2  (+0.1)\n")
    XCTAssertTrue(try dv("metrics", "diff", "--json").stdout.contains("\"new\" : \"0.2\""))
  }

  func testDiffsNeedGit() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("stages.yaml", "stages:\n  a:\n    cmd: echo 1 > m.json\n    metrics: [m.json]\n")
    assertFails(try dv("metrics", "diff"), code: 2, "not in a git repository")
  }
}
