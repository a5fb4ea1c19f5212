import DVBasics
import Foundation
import XCTest

/// `dv config`: settings read, changed and removed from the command line, every other line of
/// the file kept; bad keys and values refused with one line and nothing written.
final class ConfigTests: DVTestCase {
  var config: String { read(".pipeline/config.yaml") ?? "" }

  func testSetGetUnsetKeepsCommentsAndOtherLines() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let initial = config
    XCTAssertTrue(initial.contains("# Strategies tried in order"), initial)

    XCTAssertEqual(try dv("config", "cache.type", "hardlink,copy").code, 0)
    XCTAssertEqual(try dv("config", "cache.type").stdout, "hardlink, copy\n")
    XCTAssertEqual(config, initial.replacingOccurrences(of: "type: [reflink, copy]", with: "type: [hardlink, copy]"))

    XCTAssertEqual(try dv("config", "hooks.pre_commit", "warn").code, 0)
    XCTAssertTrue(config.hasSuffix("hooks:\n  pre_commit: warn\n"), config)
    XCTAssertEqual(try dv("config", "--unset", "hooks.pre_commit").code, 0)
    XCTAssertEqual(config, initial.replacingOccurrences(of: "[reflink, copy]", with: "[hardlink, copy]"))

    // A block sequence written by hand is replaced whole.
    try write(".pipeline/config.yaml", "version: 1\ncache:\n  type:\n    - symlink\n    - copy\n  # end\ncore:\n  no_scm: true\n")
    XCTAssertEqual(try dv("config", "cache.type", "copy").code, 0)
    XCTAssertEqual(config, "version: 1\ncache:\n  type: [copy]\n  # end\ncore:\n  no_scm: true\n")
    let status = try dv("status")
    XCTAssertEqual(status.code, 0, status.stderr)

    let unset = try dv("config", "hooks.pre_push")
    XCTAssertEqual(unset.code, 1)
    XCTAssertEqual(unset.stderr, "error: 'hooks.pre_push' is not set\n")
  }

  func testRemotesThroughConfigWithSecretsOnlyLocal() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertEqual(try dv("config", "remotes.store.url", "s3://bucket/prefix").code, 0)
    XCTAssertEqual(try dv("config", "remote.store.region", "eu-west-1").code, 0, "DVC's spelling")
    XCTAssertEqual(try dv("config", "core.remote", "store").code, 0)
    XCTAssertTrue(try dv("remote", "list").stdout.contains("store\ts3://bucket/prefix\t(default)"))

    let secret = try dv("config", "remotes.store.secret_access_key", "s3cr3t-value")
    XCTAssertEqual(secret.code, 2)
    XCTAssertFalse(config.contains("s3cr3t-value"))
    XCTAssertEqual(try dv("config", "--local", "remotes.store.secret_access_key", "s3cr3t-value").code, 0)
    let list = try dv("config", "--list", "--show-origin")
    XCTAssertEqual(
      list.stdout,
      """
      .pipeline/config.yaml\tcache.type=reflink, copy
      .pipeline/config.yaml\tcore.no_scm=true
      .pipeline/config.yaml\tcore.remote=store
      .pipeline/config.yaml\tremotes.store.region=eu-west-1
      .pipeline/config.local.yaml\tremotes.store.secret_access_key=****
      .pipeline/config.yaml\tremotes.store.url=s3://bucket/prefix

      """)
    let json = try dv("config", "--list", "--local", "--json")
    let entries = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: String]])
    XCTAssertEqual(entries.map { $0["key"] }, ["remotes.store.secret_access_key"])
    XCTAssertFalse(json.stdout.contains("s3cr3t"))

    XCTAssertEqual(try dv("config", "--unset", "remotes.store.region").code, 0)
    XCTAssertEqual(try dv("config", "remotes.store.region").code, 1)
    XCTAssertEqual(try dv("config", "--unset", "remotes.store").code, 0)
    XCTAssertFalse(config.contains("store"), config)
    XCTAssertFalse(read(".pipeline/config.local.yaml")?.contains("s3cr3t") ?? false)
  }

  func testBadKeysAndValuesChangeNothing() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let before = config
    let cases: [([String], String)] = [
      (["config", "cache.tpye", "copy"], "error: 'cache.tpye' is not a setting of dv (known: cache.type, "),
      (["config", "cache.type", "zip"], "error: cache.type: unknown cache.type 'zip'"),
      (["config", "hooks.pre_commit", "maybe"], "error: hooks.pre_commit: hooks.pre_commit must be 'check' or 'warn'"),
      (["config", "core.no_scm", "perhaps"], "error: core.no_scm: 'core.no_scm' must be true or false"),
      (["config", "core.remote", "nowhere"], "error: no remote named 'nowhere' (none is configured)"),
      (["config", "remotes.x.url", "ftp://host/p"], "error: "),
      (["config", "--unset", "hooks.pre_push"], "error: 'hooks.pre_push' is not set in .pipeline/config.yaml"),
      (["config"], "error: name a KEY, or pass --list (see `dv config --help`)"),
    ]
    for (args, message) in cases {
      let result = try run(Self.binary, args)
      XCTAssertNotEqual(result.code, 0, args.joined(separator: " "))
      XCTAssertTrue(result.stderr.hasPrefix(message), "\(args): \(result.stderr)")
      XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line: \(result.stderr)")
      XCTAssertEqual(config, before, "\(args) changed nothing")
    }
    XCTAssertEqual(try dv("config", "cache.type", "zip").code, 2)
    XCTAssertEqual(try dv("config", "--unset", "hooks.pre_push").code, 1)
  }

  func testADuplicatedSectionIsNamedWithTheWayOut() throws {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write(".pipeline/config.yaml", config + "cache:\n  type: [copy]\n")
    let status = try dv("status")
    XCTAssertEqual(status.code, 2)
    XCTAssertTrue(status.stderr.contains(".pipeline/config.yaml:"), status.stderr)
    XCTAssertTrue(status.stderr.contains("duplicated keys cache; keep one of them (`dv config"), status.stderr)

    // A section in flow style is not rewritten behind the user's back.
    try write(".pipeline/config.yaml", "version: 1\ncache: {type: [copy]}\n")
    let flow = try dv("config", "cache.type", "hardlink")
    XCTAssertEqual(flow.code, 2)
    XCTAssertTrue(flow.stderr.contains(".pipeline/config.yaml:2:8: dv edits 'cache' only in block style"), flow.stderr)
    XCTAssertEqual(config, "version: 1\ncache: {type: [copy]}\n")
  }
}
