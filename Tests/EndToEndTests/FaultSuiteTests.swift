import DVBasics
import Foundation
import XCTest

/// Issue 9's fault suite: `dv push`, `pull` and `fetch` against the S3 and GCS test servers
/// through `Tests/Support/fault-proxy`, which fails about 20% of requests in every way it knows
/// (connection dropped, 500, 503 SlowDown, a delay past dv's `read_timeout`, a body cut short, a
/// flipped byte). Every command still ends with exit 0 and the exact bytes, and `dv fsck` finds
/// the cache sound. A fault that never goes away ends the command with exit 1 and one line, in
/// bounded time.
///
/// The data is issue 8's W1: 10,000 files of 10 KB in 100 tracked directories; plus two files
/// above the pack threshold, and a later push of 24 small files that travel loose. The fault counts of each phase are printed ("fault-suite ...") for the report.
final class FaultSuiteTests: DVTestCase {
  /// Variables a credential lookup reads, emptied so the developer's own never leak in.
  let isolated: [String: String] = [
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "GOOGLE_APPLICATION_CREDENTIALS": "",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "", "STORAGE_EMULATOR_HOST": "",
  ]

  /// About one request in five faulted, spread over every kind. A delayed request waits longer
  /// than the remote's `read_timeout` (1 s), so dv gives up on it and retries.
  static let faultRates = [
    "--drop", "0.04", "--error500", "0.04", "--slowdown", "0.03", "--delay", "0.03", "--truncate", "0.03",
    "--corrupt", "0.03", "--delay-seconds", "2.5",
  ]

  var proxies: [FaultProxy] = []
  /// Every tracked file's expected content, by workspace-relative path.
  var expected: [String: String] = [:]

  override func tearDownWithError() throws {
    for proxy in proxies { proxy.stop() }
    try super.tearDownWithError()
  }

  func startProxy(target: String, _ arguments: [String]) throws -> FaultProxy {
    let proxy = try FaultProxy(target: target, arguments: arguments, scratch: root)
    proxies.append(proxy)
    return proxy
  }

  /// A remote under test: how to point a workspace at it through a proxy.
  struct CloudServer {
    var name: String
    var target: String
    var url: String
    /// The environment of every dv run, given the proxy's URL.
    var environment: (String) -> [String: String]
    /// `dv remote modify` settings, given the proxy's URL.
    var settings: (String) -> [(String, String)]
  }

  func s3Server() throws -> CloudServer {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    let credentials = isolated.merging(["AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret]) { $1 }
    return CloudServer(
      name: "s3", target: endpoint, url: "s3://\(bucket)/faults-\(UUID().uuidString)",
      environment: { _ in credentials },
      settings: { proxy in [("endpoint", proxy), ("region", "us-east-1"), ("read_timeout", "1")] })
  }

  func gcsServer() throws -> CloudServer {
    let environment = ProcessInfo.processInfo.environment
    guard let emulator = environment["DV_TEST_GCS_EMULATOR"], let bucket = environment["DV_TEST_GCS_BUCKET"] else {
      throw XCTSkip("no GCS emulator: run scripts/test, which starts it and sets DV_TEST_GCS_EMULATOR")
    }
    let isolated = self.isolated
    return CloudServer(
      name: "gcs", target: emulator, url: "gs://\(bucket)/faults-\(UUID().uuidString)",
      environment: { proxy in isolated.merging(["STORAGE_EMULATOR_HOST": proxy]) { $1 } },
      settings: { _ in [("read_timeout", "1")] })
  }

  // MARK: - Data

  /// `bytes` of text unique to `seed`, so that no two files share an object.
  static func content(_ seed: String, bytes: Int) -> String {
    var text = ""
    var line = 0
    while text.utf8.count < bytes {
      text += "\(seed) line \(line) \(String(repeating: "abcdefghij", count: 1 + line % 7))\n"
      line += 1
    }
    return String(text.utf8.prefix(bytes))!
  }

  /// Writes a file and remembers its content.
  func track(_ path: String, _ content: String) throws {
    try write(path, content)
    expected[path] = content
  }

  /// Issue 8's W1: 100 directories of 100 files of 10 KB.
  static let w1Directories = 100
  static let w1FilesPerDirectory = 100
  static var w1Files: Int { w1Directories * w1FilesPerDirectory }

  /// W1 (`data/w1/dNN`) and two large files.
  func makeW1() throws -> [String] {
    var targets: [String] = []
    for directory in 0..<Self.w1Directories {
      let name = String(format: "data/w1/d%02d", directory)
      for file in 0..<Self.w1FilesPerDirectory {
        try track("\(name)/f\(file).txt", Self.content("\(name)/\(file)", bytes: 10_240))
      }
      targets.append(name)
    }
    try track("data/big/a.bin", Self.content("large a", bytes: 1_600_000))
    try track("data/big/b.bin", Self.content("large b", bytes: 1_200_000))
    return targets + ["data/big/a.bin", "data/big/b.bin"]
  }

  /// Asserts that every expected file under `base` (a workspace-relative directory) has its bytes.
  func assertExpectedFiles(in base: String = "", file: StaticString = #filePath, line: UInt = #line) {
    var wrong: [String] = []
    for (path, content) in expected where read(base.isEmpty ? path : base + "/" + path) != content {
      wrong.append(path)
    }
    XCTAssertEqual(wrong.sorted().prefix(5), [], "\(wrong.count) files are missing or differ", file: file, line: line)
  }

  /// Removes the cache, dv's temporary files (the copy of the remote's pack indexes too) and
  /// the tracked data, keeping the pointers.
  func wipe(_ base: String = "") throws {
    let at = base.isEmpty ? root! : root + "/" + base
    try FileSystem.removeTree(at + "/.pipeline/cache")
    try FileSystem.removeTree(at + "/.pipeline/tmp")
    for path in ["data/w1", "data/big", "data/extra"] {
      if FileSystem.exists(at + "/" + path) {
        for entry in try FileSystem.listDirectory(at + "/" + path) where !entry.name.hasSuffix(".dv") {
          try FileSystem.removeTree(at + "/" + path + "/" + entry.name)
        }
      }
    }
  }

  /// Runs dv through the proxy and expects exit 0 within two minutes.
  @discardableResult
  func succeed(
    _ args: [String], in cwd: String = "", env: [String: String], file: StaticString = #filePath, line: UInt = #line
  ) throws -> RunResult {
    let result = try run(Self.binary, args, in: cwd, env: env, timeout: 120)
    XCTAssertEqual(result.code, 0, "dv \(args.joined(separator: " ")): \(result.stderr)", file: file, line: line)
    return result
  }

  // MARK: - Round trips through random faults

  /// push (two pushes: packs and large files, then loose small files), wipe, pull directory by
  /// directory and the rest, then `dv fetch` and `dv checkout` in a second workspace with the
  /// same pointers; every phase through ~20% faults.
  func roundTrip(_ server: CloudServer, seed: Int) throws {
    let proxy = try startProxy(target: server.target, Self.faultRates + ["--seed", String(seed)])
    let env = server.environment(proxy.url)
    let started = Date()
    var log: [String] = []
    var baseline: [String: Int] = [:]
    func phase(_ name: String) throws {
      let counts = try proxy.stats()
      log.append("\(name): \(FaultProxy.summary(counts, since: baseline))")
      baseline = counts
    }

    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    let targets = try makeW1()
    let add = try run(Self.binary, ["add"] + targets)
    XCTAssertEqual(add.code, 0, add.stderr)
    XCTAssertEqual(try dv("remote", "add", "-d", server.name, server.url).code, 0)
    for (key, value) in server.settings(proxy.url) {
      XCTAssertEqual(try dv("remote", "modify", server.name, key, value).code, 0)
    }

    let push = try succeed(["push", "-j", "8"], env: env)
    let pushed = Self.w1Files + Self.w1Directories + 2
    XCTAssertTrue(push.stdout.hasPrefix("pushed \(Self.grouped(pushed)) objects ("), push.stdout)
    for i in 0..<24 { try track("data/extra/e\(i).txt", Self.content("extra \(i)", bytes: 10_240)) }
    XCTAssertEqual(try dv("add", "data/extra").code, 0)
    let loose = try succeed(["push"], env: env)
    XCTAssertTrue(loose.stdout.hasPrefix("pushed 25 objects ("), loose.stdout)
    XCTAssertEqual(try succeed(["push"], env: env).stdout, "everything is already on '\(server.name)'\n")
    let status = try succeed(["status", "--remote"], env: env)
    XCTAssertEqual(status.stdout, "everything is on '\(server.name)' and in the cache\n")
    try phase("push")

    // Pull one directory at a time, each from a fresh copy of the pack indexes, then the rest.
    try wipe()
    for directory in 0..<10 {
      try FileSystem.removeTree(root + "/.pipeline/tmp")
      try succeed(["pull", String(format: "data/w1/d%02d", directory)], env: env)
    }
    try succeed(["pull"], env: env)
    assertExpectedFiles()
    XCTAssertEqual(try dv("fsck").code, 0)
    let clean = try dv("status")
    XCTAssertEqual(clean.code, 0, clean.stdout + clean.stderr)
    try phase("pull")

    // fetch into a second workspace that has only the pointers and the config, then checkout.
    try FileSystem.createDirectory(root + "/clone")
    XCTAssertEqual(try dv("init", "--no-scm", in: "clone").code, 0)
    for file in [".pipeline/config.yaml"] + pointerFiles() {
      try FileSystem.createDirectory(root + "/clone/" + (file as NSString).deletingLastPathComponent)
      let bytes = try XCTUnwrap(try FileSystem.readFileIfPresent(root + "/" + file))
      try FileSystem.writeAtomically(bytes, to: root + "/clone/" + file)
    }
    let fetch = try succeed(["fetch"], in: "clone", env: env)
    XCTAssertTrue(fetch.stdout.hasPrefix("fetched \(Self.grouped(pushed + 25)) objects ("), fetch.stdout)
    // The run records came along unchanged (they are not content-addressed: a damaged
    // download must not be imported).
    let records = try dv("lineage", "export", "--format", "json", in: "clone")
    XCTAssertEqual(records.code, 0, records.stderr)
    let original = try dv("lineage", "export", "--format", "json")
    XCTAssertEqual(records.stdout.split(separator: "\n").count, 2, records.stdout)
    XCTAssertEqual(records.stdout.split(separator: "\n").sorted(), original.stdout.split(separator: "\n").sorted())
    try succeed(["checkout"], in: "clone", env: env)
    assertExpectedFiles(in: "clone")
    XCTAssertEqual(try dv("fsck", in: "clone").code, 0)
    try phase("fetch")

    let counts = try proxy.stats()
    for line in log { print("fault-suite \(server.name) \(line)") }
    print(
      "fault-suite \(server.name) total: \(FaultProxy.summary(counts)) in "
        + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    XCTAssertGreaterThanOrEqual(try proxy.injected(), 20, "faults were injected: \(counts)")
    let kinds = FaultProxy.randomKinds.filter { (counts[$0] ?? 0) > 0 }
    XCTAssertGreaterThanOrEqual(kinds.count, 5, "faults of (almost) every kind: \(counts)")
  }

  /// `n` with thousands separators, as dv prints counts.
  static func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, c) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
      out.append(c)
    }
    return out
  }

  /// Pointer files under data/, workspace-relative.
  func pointerFiles() -> [String] {
    var found: [String] = []
    guard let enumerator = FileManager.default.enumerator(atPath: root + "/data") else { return [] }
    while let path = enumerator.nextObject() as? String {
      if path.hasSuffix(".dv") { found.append("data/" + path) }
    }
    return found.sorted()
  }

  func testS3PushPullFetchThroughFaults() throws {
    try roundTrip(try s3Server(), seed: 11)
  }

  /// The same against gcp-storage-emulator. (An earlier build once did not finish its last pull
  /// here on a loaded machine; the current one passed five runs in a row at load 2-11. A dv
  /// command that takes longer than 120 s now fails the test with its threads' backtraces.)
  func testGCSPushPullFetchThroughFaults() throws {
    try roundTrip(try gcsServer(), seed: 12)
  }

  // MARK: - Permanent faults

  /// The hex digits after the fan-out directory of the object a pointer names: what its key on
  /// the remote (`sha256/ab/<62 hex>`) ends with.
  func objectKeyTail(pointer: String) throws -> String {
    let text = try XCTUnwrap(read(pointer))
    let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("hash: sha256:") })
    return String(line.dropFirst("hash: sha256:".count + 2))
  }

  /// A workspace with a few small files and `data/big/a.bin` (which travels loose) added, and
  /// the server as its default remote through a proxy started with `arguments`.
  func makeSmallWorkspace(_ server: CloudServer, proxy arguments: (String) throws -> [String]) throws -> (
    FaultProxy, [String: String]
  ) {
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    for i in 0..<5 { try track("data/small/s\(i).txt", Self.content("small \(i)", bytes: 2_000)) }
    try track("data/big/a.bin", Self.content("permanent a", bytes: 1_300_000))
    XCTAssertEqual(try dv("add", "data/small", "data/big/a.bin").code, 0)
    let proxy = try startProxy(target: server.target, try arguments(try objectKeyTail(pointer: "data/big/a.bin.dv")))
    XCTAssertEqual(try dv("remote", "add", "-d", server.name, server.url).code, 0)
    for (key, value) in server.settings(proxy.url) {
      XCTAssertEqual(try dv("remote", "modify", server.name, key, value).code, 0)
    }
    return (proxy, server.environment(proxy.url))
  }

  /// Every upload of one object fails with 500: push retries a bounded number of times, then
  /// ends with exit 1 and one line naming the object's remote URL and the server's answer;
  /// the rest went up, and a push once the fault is gone completes.
  func testPermanentServerErrorOnUploadFailsWithOneLineInBoundedTime() throws {
    let server = try s3Server()
    let (proxy, env) = try makeSmallWorkspace(server) {
      ["--fail-path", $0, "--fail-method", "PUT", "--fail-kind", "error500"]
    }
    let started = Date()
    let push = try dv("push", env: env, timeout: 120)
    let elapsed = Date().timeIntervalSince(started)
    assertFails(push, code: 1, "HTTP 500: InternalError: fault-proxy: injected error")
    XCTAssertTrue(push.stderr.contains(server.url + "/sha256/"), push.stderr)
    // The file, and the manifest of data/small that waits for all files of the push.
    XCTAssertTrue(push.stdout.contains(", 2 failed"), push.stdout)
    let attempts = try proxy.stats()["permanent"] ?? 0
    print(
      "fault-suite permanent 500 on upload: \(attempts) attempts, exit \(push.code) after \(String(format: "%.1f", elapsed)) s: \(push.stderr)"
    )
    // 4 attempts per try (RetryPolicy: 3 retries), 3 tries (the engine's 2 retries); libcurl
    // may send a request once more on a fresh connection when a reused one died unanswered.
    XCTAssertLessThanOrEqual(attempts, 24, "bounded retries")
    XCTAssertLessThan(elapsed, 60, "bounded time")

    // The fault is gone (straight to the server): the next push uploads what is missing.
    XCTAssertEqual(try dv("remote", "modify", server.name, "endpoint", server.target).code, 0)
    let again = try dv("push", env: env)
    XCTAssertEqual(again.code, 0, again.stderr)
    XCTAssertTrue(again.stdout.hasPrefix("pushed 2 objects ("), again.stdout)
  }

  /// Every download of one object loses its connection: pull gives up after bounded retries
  /// with exit 1 and one line, checks nothing out, and leaves the cache sound; once the fault
  /// is gone a pull completes.
  func testPermanentConnectionLossOnDownloadFailsWithOneLineInBoundedTime() throws {
    let server = try gcsServer()
    let (proxy, env) = try makeSmallWorkspace(server) { ["--fail-path", $0 + "\\?alt=media", "--fail-kind", "drop"] }
    XCTAssertEqual(try dv("push", env: env).code, 0)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/small")
    try FileSystem.removeFile(root + "/data/big/a.bin")
    let started = Date()
    let pull = try dv("pull", env: env, timeout: 120)
    let elapsed = Date().timeIntervalSince(started)
    assertFails(pull, code: 1, "the connection was lost")
    XCTAssertTrue(pull.stderr.contains(server.url + "/sha256/"), pull.stderr)
    let attempts = try proxy.stats()["permanent"] ?? 0
    print(
      "fault-suite permanent drop on download: \(attempts) attempts, exit \(pull.code) after \(String(format: "%.1f", elapsed)) s: \(pull.stderr)"
    )
    XCTAssertLessThanOrEqual(attempts, 24, "bounded retries (see above)")
    XCTAssertLessThan(elapsed, 60, "bounded time")
    XCTAssertFalse(exists("data/big/a.bin"), "nothing is checked out after a failed fetch")
    XCTAssertEqual(try dv("fsck").code, 0)
    XCTAssertEqual(
      (try? FileSystem.listDirectory(root + "/.pipeline/tmp"))?.filter { $0.name.hasPrefix("download.") }.count ?? 0, 0)

    // The fault is gone: the next pull completes.
    let direct = server.environment(server.target)
    let again = try dv("pull", env: direct)
    XCTAssertEqual(again.code, 0, again.stderr)
    assertExpectedFiles()
  }
}
