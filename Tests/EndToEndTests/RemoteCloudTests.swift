import DVBasics
import Foundation
import XCTest

/// Push, wipe, pull through `dv` against the S3 and GCS test servers that `scripts/test`
/// starts on loopback (moto_server with signature checking, the GCS emulator). Each test works
/// under a prefix of its own; without the servers the tests are skipped.
final class RemoteCloudTests: DVTestCase {
  /// Variables a credential lookup reads, emptied so the developer's own never leak in.
  let isolated: [String: String] = [
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "GOOGLE_APPLICATION_CREDENTIALS": "",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "", "STORAGE_EMULATOR_HOST": "",
  ]

  /// Every file under `data/raw` and `model.bin`, with content.
  func trackedFiles() -> [String: String] {
    var result: [String: String] = ["model.bin": read("model.bin") ?? "<missing>"]
    for name in ["a.csv", "b.csv", "sub/c.csv"] { result[name] = read("data/raw/" + name) ?? "<missing>" }
    return result
  }

  /// A workspace with `data/raw` and `model.bin` added and remote `name` (`url`) as the default.
  func makeWorkspace(remote name: String, url: String) throws {
    try makeWorkspaceWithData()
    try write("model.bin", String(repeating: "weights ", count: 4096))
    XCTAssertEqual(try dv("add", "data/raw", "model.bin").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", name, url).code, 0)
  }

  /// push, push again, wipe the cache and the data, pull: the same bytes; `secret` never
  /// appears in any output.
  func roundTrip(env: [String: String], remote: String, secret: String?) throws {
    let before = trackedFiles()
    var outputs: [RunResult] = []
    let push = try dv("push", "-j", "8", env: env)
    outputs.append(push)
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 5 objects ("), push.stdout)
    XCTAssertEqual(try dv("push", env: env).stdout, "everything is already on '\(remote)'\n")
    let status = try dv("status", "--remote", env: env)
    outputs.append(status)
    XCTAssertEqual(status.stdout, "everything is on '\(remote)' and in the cache\n", status.stderr)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/raw")
    try FileSystem.removeFile(root + "/model.bin")
    let pull = try dv("pull", env: env)
    outputs.append(pull)
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertTrue(pull.stdout.hasPrefix("fetched 5 objects ("), pull.stdout)
    XCTAssertEqual(trackedFiles(), before, "byte for byte")
    let gc = try dv("gc", "--remote", remote, "--dry-run", env: env)
    outputs.append(gc)
    XCTAssertTrue(gc.stdout.hasPrefix("would remove 0 objects"), gc.stdout + gc.stderr)
    if let secret {
      for output in outputs { XCTAssertFalse(output.stdout.contains(secret) || output.stderr.contains(secret)) }
    }
  }

  /// A mixed workload through packs: two directories of small files and a file above the
  /// pack threshold. Push, pull one directory alone (range reads of the packs), pull the rest,
  /// then change half the files and let `gc --remote --repack` rewrite the packs.
  func packRoundTrip(env: [String: String], remote: String) throws {
    for i in 0..<200 {
      try write("data/left/f\(i).txt", "left \(i) " + String(repeating: "l", count: i))
      try write("data/right/f\(i).txt", "right \(i) " + String(repeating: "r", count: i))
    }
    try write("data/large.bin", String(repeating: "a large object ", count: 100_000))
    XCTAssertEqual(try dv("add", "data/left", "data/right", "data/large.bin").code, 0)
    let push = try dv("push", env: env)
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertTrue(push.stdout.hasPrefix("pushed 403 objects ("), push.stdout)
    XCTAssertEqual(try dv("push", env: env).stdout, "everything is already on '\(remote)'\n")

    let left = (0..<200).map { read("data/left/f\($0).txt") }
    let right = (0..<200).map { read("data/right/f\($0).txt") }
    let large = read("data/large.bin")
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/.pipeline/tmp")
    for path in ["data/left", "data/right"] { try FileSystem.removeTree(root + "/" + path) }
    try FileSystem.removeFile(root + "/data/large.bin")

    let one = try dv("pull", "data/left", env: env)
    XCTAssertEqual(one.code, 0, one.stderr)
    XCTAssertTrue(one.stdout.hasPrefix("fetched 201 objects ("), "range reads of just data/left: \(one.stdout)")
    XCTAssertEqual((0..<200).map { read("data/left/f\($0).txt") }, left)
    XCTAssertFalse(exists("data/right"))
    let rest = try dv("pull", env: env)
    XCTAssertEqual(rest.code, 0, rest.stderr)
    XCTAssertEqual((0..<200).map { read("data/right/f\($0).txt") }, right)
    XCTAssertEqual(read("data/large.bin"), large)
    XCTAssertEqual(try dv("fsck").code, 0)

    for i in 0..<100 { try write("data/left/f\(i).txt", "left v2 \(i)") }
    XCTAssertEqual(try dv("add", "data/left").code, 0)
    XCTAssertEqual(try dv("push", env: env).code, 0)
    let repack = try dv("gc", "--remote", remote, "--repack", "--yes", env: env)
    XCTAssertEqual(repack.code, 0, repack.stderr)
    XCTAssertTrue(repack.stdout.contains("rewrote 400 referenced objects into"), repack.stdout)
    let after = try dv("gc", "--remote", remote, "--dry-run", env: env)
    XCTAssertTrue(after.stdout.hasPrefix("would remove 0 objects"), after.stdout)
    let current = (0..<200).map { read("data/left/f\($0).txt") }
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/left")
    let pull = try dv("pull", env: env)
    XCTAssertEqual(pull.code, 0, pull.stderr)
    XCTAssertEqual((0..<200).map { read("data/left/f\($0).txt") }, current)
  }

  /// S3 settings of the test server, or a skip.
  func s3Server() throws -> (endpoint: String, bucket: String, keyID: String, secret: String) {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    return (endpoint, bucket, keyID, secret)
  }

  func testS3PacksMixedWorkload() throws {
    let server = try s3Server()
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "s3", "s3://\(server.bucket)/packs-\(UUID().uuidString)").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "endpoint", server.endpoint).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "region", "us-east-1").code, 0)
    try packRoundTrip(
      env: isolated.merging(["AWS_ACCESS_KEY_ID": server.keyID, "AWS_SECRET_ACCESS_KEY": server.secret]) { $1 },
      remote: "s3")
  }

  func testGCSPacksMixedWorkload() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let emulator = environment["DV_TEST_GCS_EMULATOR"], let bucket = environment["DV_TEST_GCS_BUCKET"] else {
      throw XCTSkip("no GCS emulator: run scripts/test, which starts it and sets DV_TEST_GCS_EMULATOR")
    }
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "gcs", "gs://\(bucket)/packs-\(UUID().uuidString)").code, 0)
    try packRoundTrip(env: isolated.merging(["STORAGE_EMULATOR_HOST": emulator]) { $1 }, remote: "gcs")
  }

  func testS3PushWipePull() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    try makeWorkspace(remote: "s3", url: "s3://\(bucket)/e2e-\(UUID().uuidString)")
    XCTAssertEqual(try dv("remote", "modify", "s3", "endpoint", endpoint).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "region", "us-east-1").code, 0)

    // No credentials anywhere: bad input naming the remote.
    assertFails(try dv("push", env: isolated), code: 2, "no credentials for remote 's3'")

    // A wrong secret is refused, and never printed.
    let wrong = "wrongSecretValue1234567890"
    let denied = try dv(
      "push", env: isolated.merging(["AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": wrong]) { $1 })
    XCTAssertEqual(denied.code, 1, denied.stderr)
    XCTAssertFalse(denied.stderr.contains(wrong))

    // The keys in config.local.yaml, as `dv remote modify --local` writes them.
    XCTAssertEqual(try dv("remote", "modify", "--local", "s3", "access_key_id", keyID).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "--local", "s3", "secret_access_key", secret).code, 0)
    XCTAssertFalse(try dv("remote", "list").stdout.contains(secret))
    try roundTrip(env: isolated, remote: "s3", secret: secret)
  }

  func testGCSPushWipePull() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let emulator = environment["DV_TEST_GCS_EMULATOR"], let bucket = environment["DV_TEST_GCS_BUCKET"] else {
      throw XCTSkip("no GCS emulator: run scripts/test, which starts it and sets DV_TEST_GCS_EMULATOR")
    }
    try makeWorkspace(remote: "gcs", url: "gs://\(bucket)/e2e-\(UUID().uuidString)")
    assertFails(try dv("push", env: isolated), code: 2, "no credentials for remote 'gcs'")
    try roundTrip(env: isolated.merging(["STORAGE_EMULATOR_HOST": emulator]) { $1 }, remote: "gcs", secret: nil)
  }
}
