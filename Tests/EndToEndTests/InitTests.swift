import DVBasics
import XCTest

final class InitTests: DVTestCase {
  func testInitInAGitRepositoryWritesConfigAndIgnores() throws {
    XCTAssertEqual(try run("/usr/bin/env", ["git", "init", "-q"]).code, 0)
    let result = try dv("init")
    XCTAssertEqual(result.code, 0, result.stderr)
    XCTAssertTrue(result.stdout.contains("Initialized dv workspace"))
    XCTAssertEqual(result.stderr, "")
    XCTAssertTrue(read(".pipeline/config.yaml")!.contains("version: 1"))
    let gitignore = read(".pipeline/.gitignore")!
    for entry in ["/cache/", "/tmp/", "/lock", "/state.db", "/lineage.db", "/config.local.yaml"] {
      XCTAssertTrue(gitignore.contains(entry), entry)
    }
    XCTAssertTrue(exists(".dvignore"))
  }

  func testInitOutsideGitNeedsNoSCM() throws {
    assertFails(try dv("init"), code: 2, "not inside a git repository")
    XCTAssertFalse(exists(".pipeline"))
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertTrue(read(".pipeline/config.yaml")!.contains("no_scm: true"))
  }

  func testInitTwiceRefuses() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let config = read(".pipeline/config.yaml")
    assertFails(try dv("init", "--no-scm"), code: 2, "already a dv workspace")
    XCTAssertEqual(read(".pipeline/config.yaml"), config)
  }

  func testCommandsFindTheWorkspaceFromSubdirectoriesAndFailOutsideOne() throws {
    assertFails(try dv("status"), code: 2, "not inside a dv workspace")
    try makeWorkspaceWithData()
    XCTAssertEqual(try dv("add", "raw", in: "data").code, 0)
    XCTAssertTrue(exists("data/raw.dv"))
    let status = try dv("status", in: "data/raw/sub")
    XCTAssertEqual(status.code, 0, status.stderr)
    XCTAssertEqual(status.stdout, "data and pipelines are up to date\n")
  }

  func testVersionAndBadUsage() throws {
    let version = try dv("--version")
    XCTAssertEqual(version.code, 0)
    XCTAssertFalse(version.stdout.isEmpty)
    // Bad usage is one line naming the problem and where the usage is, exit 2.
    assertFails(try dv("frobnicate"), code: 2, "(see `dv --help`)")
    assertFails(try dv("add"), code: 2, "(see `dv add --help`)")
    assertFails(try dv("remote", "add", "--bogus", "x", "y"), code: 2, "--bogus")
    XCTAssertTrue(try dv("remote", "add", "--bogus", "x", "y").stderr.hasSuffix("(see `dv remote add --help`)\n"))
    XCTAssertEqual(try dv("add", "--help").code, 0)
  }

  func testProgressIsDrawnOnATerminalAndNotInAPipe() throws {
    try makeWorkspaceWithData()
    let piped = try dv("add", "data/raw", env: ["DV_PROGRESS_DELAY": "0"])
    XCTAssertEqual(piped.stderr, "")
    try write("data/raw/d.csv", "id,v\n4,d\n")
    // `script` gives dv a pseudo-terminal, as an interactive shell would.
    let command = "\(Self.binary) add data/raw"
    let terminal = try run("/usr/bin/script", ["-qec", command, "/dev/null"], env: ["DV_PROGRESS_DELAY": "0"])
    XCTAssertEqual(terminal.code, 0, terminal.stdout)
    XCTAssertTrue(terminal.stdout.contains("adding"), terminal.stdout)
    XCTAssertTrue(terminal.stdout.contains("files"), terminal.stdout)
  }
}
