import DVBasics
import XCTest

final class DAGTests: DVTestCase {
  /// A workspace whose stages.yaml has `prepare -> train`.
  func makeTwoStagePipeline() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("raw.csv", "x\n")
    try write(
      "stages.yaml",
      """
      stages:
        prepare: {cmd: cp raw.csv prepared.csv, deps: [raw.csv], outs: [prepared.csv]}
        train: {cmd: cp prepared.csv model.bin, deps: [prepared.csv], outs: [model.bin]}
      """)
  }

  func testDagPrintsTheGraphAndRejectsACycle() throws {
    try makeTwoStagePipeline()
    let ascii = try dv("dag")
    XCTAssertEqual(ascii.code, 0, ascii.stderr)
    XCTAssertEqual(ascii.stdout, "prepare\ntrain    <- prepare\n")
    XCTAssertTrue(try dv("dag", "--dot").stdout.contains(#""prepare" -> "train";"#))
    XCTAssertTrue(try dv("dag", "--mermaid").stdout.hasPrefix("flowchart TD\n"))
    XCTAssertEqual(try dv("dag", "--dot", "--mermaid").code, 2)

    try write(
      "stages.yaml",
      """
      stages:
        a: {cmd: x, deps: [b.txt], outs: [a.txt]}
        b: {cmd: y, deps: [a.txt], outs: [b.txt]}
      """)
    assertFails(try dv("dag"), code: 2, "stages.yaml:2:3: the stages form a cycle: a -> b -> a")
  }

  func testStatusListsStagesThatWouldRun() throws {
    try makeTwoStagePipeline()
    let status = try dv("status")
    XCTAssertEqual(status.code, 0, status.stderr)
    XCTAssertEqual(status.stdout, "prepare: never run\ntrain: never run; upstream stage 'prepare' is stale\n")
    XCTAssertEqual(try dv("status", "--check").code, 1)
    try write("stages.yaml", "stages:\n  a:\n    cmd: x\n    outs: [/abs]\n")
    assertFails(try dv("status"), code: 2, "stages.yaml:4:12: '/abs' is absolute")
  }
}
