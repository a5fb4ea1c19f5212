import DVBasics
import Foundation
import XCTest

/// `dv doctor`: what works here, tried rather than guessed, and each remote asked for real.
final class DoctorTests: DVTestCase {
  func doctorJSON(env: [String: String] = [:]) throws -> [String: Any] {
    let result = try dv("doctor", "--json", env: env)
    XCTAssertEqual(result.code, 0, result.stderr)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
  }

  func testOutsideAWorkspaceItNamesTheVersionAndPlatform() throws {
    let result = try dv("doctor")
    XCTAssertEqual(result.code, 0, result.stderr)
    let lines = result.stdout.split(separator: "\n")
    XCTAssertTrue(lines.first?.range(of: #"^dv \d+\.\d+\.\d+ \(git [0-9a-f]{7,}(-dirty)?|unknown\)$"#, options: .regularExpression) != nil, result.stdout)
    XCTAssertTrue(lines.contains { $0.hasPrefix("platform: ") && $0.contains("Linux") }, result.stdout)
    XCTAssertTrue(result.stdout.contains("workspace: none"), result.stdout)
    let version = try dv("--version")
    XCTAssertEqual("dv " + version.stdout, String(lines[0]) + "\n")
  }

  func testLinksRemotesSizesAndHooks() throws {
    XCTAssertEqual(try run("/usr/bin/env", ["git", "init", "-q"]).code, 0)
    XCTAssertEqual(try dv("init").code, 0)
    try write("data/a.csv", "x,y\n1,2\n")
    XCTAssertEqual(try dv("add", "data/a.csv").code, 0)
    try FileSystem.createDirectory(root + "/store")
    XCTAssertEqual(try dv("remote", "add", "-d", "local", "store").code, 0)
    // Nothing listens on port 9 of loopback: the connection is refused at once.
    XCTAssertEqual(try dv("remote", "add", "dead", "s3://bucket/p").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "dead", "endpoint", "http://127.0.0.1:9").code, 0)
    XCTAssertEqual(try dv("hooks", "install").code, 0)
    let before = try FileManager.default.contentsOfDirectory(atPath: root).sorted()

    let report = try doctorJSON(env: ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "doctor-secret"])
    let workspace = try XCTUnwrap(report["workspace"] as? [String: Any])
    let links = try XCTUnwrap(workspace["links"] as? [[String: Any]])
    XCTAssertEqual(links.map { $0["type"] as? String }, ["reflink", "hardlink", "symlink", "copy"])
    XCTAssertEqual(links.last?["works"] as? Bool, true)
    XCTAssertEqual(links[1]["works"] as? Bool, true, "hardlinks work within one filesystem")
    let reflinks = links[0]["works"] as? Bool ?? false
    XCTAssertEqual(workspace["effective_cache_type"] as? String, reflinks ? "reflink" : "copy")
    let remotes = try XCTUnwrap(workspace["remotes"] as? [[String: Any]])
    XCTAssertEqual(remotes.map { $0["name"] as? String }, ["dead", "local"])
    XCTAssertEqual(remotes[1]["answers"] as? Bool, true)
    XCTAssertEqual(remotes[1]["default"] as? Bool, true)
    XCTAssertEqual(remotes[0]["answers"] as? Bool, false)
    XCTAssertTrue((remotes[0]["reason"] as? String ?? "").contains("127.0.0.1:9"), "\(remotes[0])")
    let cache = try XCTUnwrap(workspace["cache"] as? [String: Any])
    XCTAssertEqual(cache["files"] as? Int, 1)
    XCTAssertGreaterThan(workspace["state_cache_bytes"] as? Int ?? 0, 0)
    let hooks = try XCTUnwrap(workspace["hooks"] as? [[String: String]])
    XCTAssertEqual(hooks.map { $0["state"] }, ["installed", "installed", "installed", "installed"])

    // Nothing was left behind, and no secret was printed.
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).sorted(), before)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/.pipeline/tmp").filter {
      $0.contains("probe")
    }, [])
    let text = try dv("doctor", env: ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "doctor-secret"])
    XCTAssertTrue(text.stdout.contains("remote local (default): store: answers ("), text.stdout)
    XCTAssertTrue(text.stdout.contains("remote dead: s3://bucket/p: does not answer: "), text.stdout)
    XCTAssertTrue(text.stdout.contains("git hooks ("), text.stdout)
    XCTAssertFalse(text.stdout.contains("doctor-secret") || text.stderr.contains("doctor-secret"))
  }

  /// Against the real S3 server: the right keys answer, a wrong secret is reported as such.
  func testS3RemoteAnswersOnlyWithTheRightKeys() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else { throw XCTSkip("no S3 test server: run scripts/test") }
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "s3", "s3://\(bucket)/doctor").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "endpoint", endpoint).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "region", "us-east-1").code, 0)
    let isolated = [
      "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
      "AWS_CONFIG_FILE": "/nonexistent", "AWS_ACCESS_KEY_ID": keyID,
    ]
    let good = try doctorJSON(env: isolated.merging(["AWS_SECRET_ACCESS_KEY": secret]) { $1 })
    let goodRemote = try XCTUnwrap(((good["workspace"] as? [String: Any])?["remotes"] as? [[String: Any]])?.first)
    XCTAssertEqual(goodRemote["answers"] as? Bool, true, "\(goodRemote)")
    let bad = try doctorJSON(env: isolated.merging(["AWS_SECRET_ACCESS_KEY": "wrong-" + secret]) { $1 })
    let badRemote = try XCTUnwrap(((bad["workspace"] as? [String: Any])?["remotes"] as? [[String: Any]])?.first)
    XCTAssertEqual(badRemote["answers"] as? Bool, false, "\(badRemote)")
    XCTAssertFalse("\(badRemote)".contains(secret))
  }
}
