import DVBasics
import Foundation
import XCTest

/// `scripts/install PREFIX`, as the README tells a user to install dv: a stripped release binary
/// on PATH that names its revision, completions that complete, and a man page.
final class InstallTests: DVTestCase {
  func testInstallGivesAWorkingDVOnPathWithCompletionsAndAManPage() throws {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    let prefix = root + "/prefix"
    // A release build from scratch takes minutes on two cores.
    let install = try run(repository + "/scripts/install", [prefix], timeout: 1800)
    XCTAssertEqual(install.code, 0, install.stdout + install.stderr)
    XCTAssertTrue(install.stdout.contains("installed dv 0.1.0 (git "), install.stdout)

    let bin = prefix + "/bin"
    let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    let version = try run("/usr/bin/env", ["dv", "--version"], env: ["PATH": path])
    XCTAssertEqual(version.code, 0, version.stderr)
    XCTAssertTrue(
      version.stdout.range(of: #"^0\.1\.0 \(git ([0-9a-f]{12}(-dirty)?|unknown)\)\n$"#, options: .regularExpression) != nil,
      version.stdout)
    // Stripped: no symbol table left in the ELF file.
    let sections = try run("/usr/bin/env", ["readelf", "-S", bin + "/dv"])
    XCTAssertEqual(sections.code, 0, sections.stderr)
    XCTAssertFalse(sections.stdout.contains(".symtab"), "the installed binary is stripped")

    // It works as a user's dv: a workspace, a file, its status.
    XCTAssertEqual(try run("/usr/bin/env", ["dv", "init", "--no-scm"], env: ["PATH": path]).code, 0)
    try write("a.csv", "x\n1\n")
    XCTAssertEqual(try run("/usr/bin/env", ["dv", "add", "a.csv"], env: ["PATH": path]).code, 0)
    let status = try run("/usr/bin/env", ["dv", "status"], env: ["PATH": path])
    XCTAssertEqual(status.stdout, "data and pipelines are up to date\n", status.stderr)

    // bash completes subcommands and options through the installed script.
    let script = """
      source "$1/share/bash-completion/completions/dv"
      COMP_WORDS=(dv con); COMP_CWORD=1; COMP_LINE="dv con"; COMP_POINT=6
      _dv dv con dv; echo "${COMPREPLY[*]}"; COMPREPLY=()
      COMP_WORDS=(dv config --l); COMP_CWORD=2; COMP_LINE="dv config --l"; COMP_POINT=13
      _dv dv --l config; echo "${COMPREPLY[*]}"
      """
    let bash = try run("/bin/bash", ["-c", script, "completion-test", prefix], env: ["PATH": path])
    XCTAssertEqual(bash.stdout, "config\n--local --list\n", bash.stderr)
    XCTAssertTrue(read("prefix/share/zsh/site-functions/_dv")?.hasPrefix("#compdef dv") == true)
    XCTAssertTrue(read("prefix/share/fish/vendor_completions.d/dv.fish")?.contains("complete -c 'dv'") == true)
    let manual = try XCTUnwrap(read("prefix/share/man/man1/dv.1"))
    XCTAssertTrue(manual.contains(".Nm dv"), String(manual.prefix(200)))
    for command in ["repro", "config", "doctor", "lineage"] { XCTAssertTrue(manual.contains(command), command) }
  }
}
