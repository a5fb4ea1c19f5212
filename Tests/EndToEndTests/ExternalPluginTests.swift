import DVBasics
import Foundation
import XCTest

/// `dv-plugin-<kind>` executables: discovery, `--describe`, the JSON request, and the failures a
/// plugin author can cause (crash, hang past `timeout`, writing outside the declared outs).
final class ExternalPluginTests: DVTestCase {
  /// A shell plugin that copies `with.input` to its first out, upper-cased, after saving the request.
  let upper = """
    #!/bin/sh
    if [ "$1" = "--describe" ]; then echo '{"kind": "upper", "version": "VERSION"}'; exit 0; fi
    cat > "$DV_TEST_REQUEST"
    echo "upper: working"
    input=$(sed -n 's/.*"input": "\\([^"]*\\)".*/\\1/p' "$DV_TEST_REQUEST")
    out=$(sed -n 's/.*"outs": \\["\\([^"]*\\)".*/\\1/p' "$DV_TEST_REQUEST")
    tr a-z A-Z < "$input" > "$out"
    MORE
    """

  override func setUpWithError() throws {
    try super.setUpWithError()
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("in.txt", "hello\n")
  }

  func installPlugin(_ name: String, _ script: String, in directory: String = ".pipeline/plugins") throws {
    let path = directory + "/dv-plugin-" + name
    try write(path, script)
    chmod(root + "/" + path, 0o755)
  }

  func upperPlugin(version: String = "1.0", more: String = "") -> String {
    upper.replacingOccurrences(of: "VERSION", with: version).replacingOccurrences(of: "MORE", with: more)
  }

  func stage(with options: String = "input: in.txt", outs: String = "[out.txt]") -> String {
    "stages:\n  up:\n    plugin: upper\n    with: {\(options)}\n    deps: [in.txt]\n    outs: \(outs)\n"
  }

  /// Outside the workspace: a plugin writing inside it would be a stray write.
  var requestPath: String { root + ".request.json" }
  var env: [String: String] { ["DV_TEST_REQUEST": requestPath] }

  override func tearDownWithError() throws {
    try? FileSystem.removeFile(requestPath)
    try super.tearDownWithError()
  }

  func testRequestOutputAndVersionAreHonoured() throws {
    try installPlugin("upper", upperPlugin())
    try write("stages.yaml", stage(with: "input: in.txt, n: 3, name: x, on: true"))
    let first = try dv("repro", env: env)
    XCTAssertEqual(first.code, 0, first.stderr)
    XCTAssertTrue(first.stdout.contains("upper: working"), first.stdout)
    XCTAssertEqual(read("out.txt"), "HELLO\n")
    let request = try XCTUnwrap(try FileSystem.readTextIfPresent(requestPath))
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(request.utf8)) as? [String: Any])
    XCTAssertEqual(json["stage"] as? String, "up")
    XCTAssertEqual(json["deps"] as? [String], ["in.txt"])
    XCTAssertEqual(json["outs"] as? [String], ["out.txt"])
    XCTAssertEqual(json["workspace_root"] as? String, root)
    let with = try XCTUnwrap(json["with"] as? [String: Any])
    XCTAssertEqual(with["n"] as? Int, 3)
    XCTAssertEqual(with["on"] as? Bool, true)
    XCTAssertEqual(with["name"] as? String, "x")
    XCTAssertTrue(read("stages.lock")!.contains("plugin upper@1.0 sha256:"))

    XCTAssertTrue(try dv("status").stdout.contains("up to date"))
    // Reordering options keeps the stage's identity; a new plugin version changes it.
    try write("stages.yaml", stage(with: "name: x, on: true, input: in.txt, n: 3"))
    XCTAssertTrue(try dv("status").stdout.contains("up to date"))
    try installPlugin("upper", upperPlugin(version: "1.1"))
    XCTAssertTrue(try dv("status").stdout.contains("up: changed cmd"))
    XCTAssertEqual(try dv("repro", env: env).code, 0)
    XCTAssertTrue(read("stages.lock")!.contains("plugin upper@1.1 "))

    let list = try dv("plugins", "list")
    XCTAssertEqual(list.code, 0)
    XCTAssertTrue(list.stdout.contains("shell"), list.stdout)
    XCTAssertTrue(list.stdout.contains("upper"), list.stdout)
    XCTAssertTrue(list.stdout.contains("1.1"), list.stdout)
    XCTAssertTrue(list.stdout.contains(root + "/.pipeline/plugins/dv-plugin-upper"), list.stdout)
  }

  func testPluginsOnPathAreFound() throws {
    try installPlugin("upper", upperPlugin(version: "7"), in: "bin")
    try write("stages.yaml", stage())
    let path = root + "/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    var environment = env
    environment["PATH"] = path
    XCTAssertEqual(try dv("repro", env: environment).code, 0)
    XCTAssertEqual(read("out.txt"), "HELLO\n")
    XCTAssertTrue(try dv("plugins", "list", env: ["PATH": path]).stdout.contains(root + "/bin/dv-plugin-upper"))
  }

  func testExitStatusCrashTimeoutAndStrayWritesAreNamed() throws {
    try write("stages.yaml", stage())
    try installPlugin("upper", upperPlugin(more: "exit 3"))
    let failed = try dv("repro", env: env)
    XCTAssertEqual(failed.code, 1)
    XCTAssertTrue(failed.stderr.contains("plugin 'upper'"), failed.stderr)
    XCTAssertTrue(failed.stderr.contains("exited with code 3"), failed.stderr)
    XCTAssertNil(read("stages.lock"))
    // What the failed run left may be replaced by the next run; anything a user changed may not.
    try write("out.txt", "mine\n")
    XCTAssertTrue(try dv("repro", env: env).stderr.contains("would delete 'out.txt'"))
    try FileSystem.removeFile(root + "/out.txt")

    try installPlugin("upper", upperPlugin(more: "kill -SEGV $$"))
    let crashed = try dv("repro", env: env)
    XCTAssertEqual(crashed.code, 1)
    XCTAssertTrue(crashed.stderr.contains("crashed with signal 11 (SIGSEGV)"), crashed.stderr)

    try installPlugin("upper", upperPlugin(more: "sleep 60"))
    try write("stages.yaml", stage(with: "input: in.txt, timeout: 1"))
    let hung = try dv("repro", env: env, timeout: 50)
    XCTAssertEqual(hung.code, 1)
    XCTAssertTrue(hung.stderr.contains("did not finish within its timeout of 1 s"), hung.stderr)

    try installPlugin("upper", upperPlugin(more: "echo stray > notes.txt"))
    try write("stages.yaml", stage())
    let stray = try dv("repro", env: env)
    XCTAssertEqual(stray.code, 1)
    XCTAssertTrue(stray.stderr.contains("wrote outside its declared outs: notes.txt"), stray.stderr)
    XCTAssertNil(read("stages.lock"))

    try installPlugin("upper", upperPlugin())
    let fixed = try dv("repro", env: env)
    XCTAssertEqual(fixed.code, 0, fixed.stderr)
    XCTAssertEqual(read("out.txt"), "HELLO\n")
  }

  func testBadDescriptionsAndOptionsAreBadInput() throws {
    try write("stages.yaml", stage())
    try installPlugin("upper", "#!/bin/sh\necho not json\n")
    assertFails(try dv("repro"), code: 2, "stages.yaml:2:3: external plugin")
    XCTAssertTrue(try dv("repro").stderr.contains("did not print a JSON object"))
    try installPlugin("upper", "#!/bin/sh\necho '{\"kind\": \"lower\", \"version\": \"1\"}'\n")
    assertFails(try dv("status"), code: 2, "its kind is 'lower', expected 'upper'")
    let list = try dv("plugins", "list")
    XCTAssertEqual(list.code, 0)
    XCTAssertTrue(list.stdout.contains("unusable"), list.stdout)

    try installPlugin("upper", upperPlugin())
    try write("stages.yaml", "stages:\n  up:\n    plugin: upper\n    with:\n      timeout: soon\n    outs: [out.txt]\n")
    assertFails(try dv("repro"), code: 2, "stages.yaml:5:16: option 'timeout' of plugin 'upper' must be a positive")
  }
}
