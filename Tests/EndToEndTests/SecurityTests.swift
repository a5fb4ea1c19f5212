import DVBasics
import Foundation
import XCTest

/// Issue 9's security suite. Credentials (known values: the test server's S3 secret, fake
/// secrets, session tokens and GCS access tokens) never appear in dv's output, its files
/// (pointers, stages.lock, config.yaml, state.db, lineage.db and their WAL files, temporary
/// files), the run records it pushes, git's committed tree, or a directory remote; only in
/// `.pipeline/config.local.yaml` (mode 0600, git-ignored). TLS verification cannot be turned off:
/// no setting or environment variable does, and a self-signed server fails with one clear line.
final class SecurityTests: DVTestCase {
  /// Variables a credential lookup reads, emptied so the developer's own never leak in.
  let isolated: [String: String] = [
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "GOOGLE_APPLICATION_CREDENTIALS": "",
    "GOOGLE_OAUTH_ACCESS_TOKEN": "", "STORAGE_EMULATOR_HOST": "",
  ]

  /// Every output of every dv run of the test, to be searched for secrets.
  var outputs: [(command: String, text: String)] = []
  var server: Process?
  /// A second workspace beside the root (so not in the root's git repository).
  var clone: String { root + ".clone" }

  override func tearDownWithError() throws {
    if let server, server.isRunning {
      server.terminate()
      server.waitUntilExit()
    }
    try? FileSystem.removeTree(clone)
    try super.tearDownWithError()
  }

  /// Runs dv and keeps its output for the search.
  @discardableResult
  func dvLogged(_ args: [String], in cwd: String = "", env: [String: String]) throws -> RunResult {
    let result = try run(Self.binary, args, in: cwd, env: env)
    outputs.append(("dv " + args.joined(separator: " "), result.stdout + "\n" + result.stderr))
    return result
  }

  /// Every regular file under `directory` (absolute) whose bytes contain one of `secrets`, as
  /// "path: secret", except the ones `allowed` (absolute paths).
  func filesContaining(_ secrets: [String], under directory: String, allowed: Set<String>) -> [String] {
    var found: [String] = []
    guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
    while let relative = enumerator.nextObject() as? String {
      let path = directory + "/" + relative
      guard !allowed.contains(path), let stat = try? FileStat.of(path, followLinks: false), stat.kind == .file,
        let bytes = try? FileSystem.readFileIfPresent(path)
      else { continue }
      let data = Data(bytes)
      for secret in secrets where data.range(of: Data(secret.utf8)) != nil { found.append("\(relative): \(secret)") }
    }
    return found
  }

  /// The whole workspace tree (and any extra directories) holds the secrets only where allowed,
  /// no output ever showed them, and git's committed tree has none.
  func assertNoLeak(_ secrets: [String], extra: [String] = [], file: StaticString = #filePath, line: UInt = #line)
    throws
  {
    var leaks = filesContaining(secrets, under: root, allowed: [root + "/.pipeline/config.local.yaml"])
    leaks += filesContaining(secrets, under: clone, allowed: [clone + "/.pipeline/config.local.yaml"])
    for directory in extra { leaks += filesContaining(secrets, under: directory, allowed: []) }
    XCTAssertEqual(leaks, [], "secrets in files", file: file, line: line)
    for (command, text) in outputs {
      for secret in secrets where text.contains(secret) {
        XCTFail("'\(command)' printed a secret: \(text)", file: file, line: line)
      }
    }
    if FileSystem.isDirectory(root + "/.git") {
      XCTAssertEqual(try run("/usr/bin/env", ["git", "add", "-A"]).code, 0, file: file, line: line)
      let commit = try run(
        "/usr/bin/env",
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "all", "--allow-empty"])
      XCTAssertEqual(commit.code, 0, commit.stderr, file: file, line: line)
      let listed = try run("/usr/bin/env", ["git", "ls-files"]).stdout
      XCTAssertFalse(listed.contains("config.local.yaml"), "config.local.yaml is not committed", file: file, line: line)
      for secret in secrets {
        let grep = try run("/usr/bin/env", ["git", "grep", "-F", "-q", secret, "HEAD"])
        XCTAssertEqual(grep.code, 1, "a committed file holds '\(secret)'", file: file, line: line)
      }
    }
  }

  /// A git workspace with data, a stage that ran (so the ledger has runs), and `remote` added.
  func makeWorkspace() throws {
    try makeWorkspaceWithData(git: true)
    try write("model.bin", String(repeating: "weights ", count: 50_000))
    try write(
      "stages.yaml",
      """
      stages:
        count:
          cmd: ls data/raw > listing.txt
          deps: [data/raw]
          outs: [listing.txt]
      """)
    XCTAssertEqual(try dvLogged(["add", "data/raw", "model.bin"], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["repro"], env: isolated).code, 0)
  }

  /// push, status, wipe and pull, fetch into a clone, lineage, gc: everything a user runs.
  func exercise(remote: String, env: [String: String]) throws {
    let push = try dvLogged(["push"], env: env)
    XCTAssertEqual(push.code, 0, push.stderr)
    XCTAssertEqual(try dvLogged(["status", "--remote"], env: env).code, 0)
    XCTAssertEqual(try dvLogged(["status", "--remote", "--json"], env: env).code, 0)
    try FileSystem.removeTree(root + "/.pipeline/cache")
    try FileSystem.removeTree(root + "/data/raw")
    let pull = try dvLogged(["pull"], env: env)
    XCTAssertEqual(pull.code, 0, pull.stderr)
    for args in [
      ["status"], ["status", "--json"], ["lineage", "log"], ["lineage", "log", "--json"],
      ["lineage", "show", "listing.txt"], ["lineage", "show", "listing.txt", "--json"],
      ["lineage", "export", "--format", "openlineage"], ["lineage", "export", "--format", "json"],
      ["remote", "list"], ["gc", "--remote", remote, "--dry-run"], ["fsck"], ["dag"],
    ] {
      XCTAssertLessThan(try dvLogged(args, env: env).code, 2, args.joined(separator: " "))
    }
    // A second workspace (outside this git repository) gets the run records through the remote.
    try FileSystem.createDirectory(clone + "/data")
    let cloneDirectory = "../" + (clone as NSString).lastPathComponent
    XCTAssertEqual(try dvLogged(["init", "--no-scm"], in: cloneDirectory, env: env).code, 0)
    for file in [".pipeline/config.yaml", ".pipeline/config.local.yaml", "data/raw.dv", "model.bin.dv"]
    where FileSystem.exists(root + "/" + file) {
      try FileSystem.writeAtomically(
        try XCTUnwrap(try FileSystem.readFileIfPresent(root + "/" + file)), to: clone + "/" + file,
        mode: file.hasSuffix("local.yaml") ? 0o600 : 0o644)
    }
    let fetch = try dvLogged(["fetch"], in: cloneDirectory, env: env)
    XCTAssertEqual(fetch.code, 0, fetch.stderr)
    let log = try dvLogged(["lineage", "log"], in: cloneDirectory, env: env)
    XCTAssertTrue(log.stdout.contains("dv repro"), "the run records came through the remote: \(log.stdout)")
  }

  func testS3SecretsStayInConfigLocal() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let keyID = environment["DV_TEST_S3_ACCESS_KEY_ID"], let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    try makeWorkspace()
    let url = "s3://\(bucket)/security-\(UUID().uuidString)"
    XCTAssertEqual(try dvLogged(["remote", "add", "-d", "s3", url], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["remote", "modify", "s3", "endpoint", endpoint], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["remote", "modify", "--local", "s3", "access_key_id", keyID], env: isolated).code, 0)
    XCTAssertEqual(
      try dvLogged(["remote", "modify", "--local", "s3", "secret_access_key", secret], env: isolated).code, 0)
    let refused = try dvLogged(["remote", "modify", "s3", "secret_access_key", secret], env: isolated)
    assertFails(refused, code: 2, "'secret_access_key' is a secret and .pipeline/config.yaml is committed")
    let mode = try FileManager.default.attributesOfItem(atPath: root + "/.pipeline/config.local.yaml")[
      .posixPermissions]
    XCTAssertEqual((mode as? NSNumber)?.intValue, 0o600)
    // Fake credentials in the environment too, which the settings take precedence over.
    let fakeSecret = "FakeEnvSecretKey/0123456789abcdefghijKLMNOP"
    let fakeToken = "FakeSessionToken0123456789+abcdefghijklmnopqrstuvwxyz=="
    let env = isolated.merging([
      "AWS_ACCESS_KEY_ID": "AKIAFAKEENVKEY000001", "AWS_SECRET_ACCESS_KEY": fakeSecret, "AWS_SESSION_TOKEN": fakeToken,
    ]) { $1 }
    try exercise(remote: "s3", env: env)

    // The fake ones, used and refused: the refusal names neither.
    XCTAssertEqual(try dvLogged(["remote", "add", "envkeys", url], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["remote", "modify", "envkeys", "endpoint", endpoint], env: isolated).code, 0)
    let denied = try dvLogged(["push", "-r", "envkeys"], env: env)
    XCTAssertEqual(denied.code, 1, denied.stderr)
    // A profile file outside the workspace with a fake secret.
    let profileSecret = "FakeProfileSecret9876543210zyxwvutsrqpo"
    let credentials = root + ".aws-credentials"
    defer { try? FileSystem.removeFile(credentials) }
    try FileSystem.writeAtomically(
      "[dvfake]\naws_access_key_id = AKIAFAKEPROFILE00001\naws_secret_access_key = \(profileSecret)\n", to: credentials)
    XCTAssertEqual(try dvLogged(["remote", "modify", "envkeys", "profile", "dvfake"], env: isolated).code, 0)
    let profileDenied = try dvLogged(
      ["push", "-r", "envkeys"], env: isolated.merging(["AWS_SHARED_CREDENTIALS_FILE": credentials]) { $1 })
    XCTAssertEqual(profileDenied.code, 1, profileDenied.stderr)
    XCTAssertTrue(profileDenied.stderr.contains("access denied"), profileDenied.stderr)
    try assertNoLeak([secret, fakeSecret, fakeToken, profileSecret, "AKIAFAKEPROFILE00001", "AKIAFAKEENVKEY000001"])
    print("security: S3 with \(outputs.count) dv runs; no secret in any output or file but config.local.yaml")
  }

  func testGCSTokensNeverLeak() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let emulator = environment["DV_TEST_GCS_EMULATOR"], let bucket = environment["DV_TEST_GCS_BUCKET"] else {
      throw XCTSkip("no GCS emulator: run scripts/test, which starts it and sets DV_TEST_GCS_EMULATOR")
    }
    try makeWorkspace()
    // The emulator as the `endpoint` (not STORAGE_EMULATOR_HOST): dv then sends the token.
    let url = "gs://\(bucket)/security-\(UUID().uuidString)"
    let token = "ya29.FakeGCSAccessToken-0123456789_abcdefghijklmnopqrstuvwxyz"
    XCTAssertEqual(try dvLogged(["remote", "add", "-d", "gcs", url], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["remote", "modify", "gcs", "endpoint", emulator], env: isolated).code, 0)
    assertFails(
      try dvLogged(["remote", "modify", "gcs", "token", token], env: isolated), code: 2,
      "'token' is a secret and .pipeline/config.yaml is committed")
    XCTAssertEqual(try dvLogged(["remote", "modify", "--local", "gcs", "token", token], env: isolated).code, 0)
    XCTAssertTrue(try dvLogged(["remote", "list"], env: isolated).stdout.contains("token: ****"))
    let envToken = "ya29.FakeEnvironmentToken-9876543210"
    try exercise(remote: "gcs", env: isolated.merging(["GOOGLE_OAUTH_ACCESS_TOKEN": envToken]) { $1 })
    try assertNoLeak([token, envToken])
    print("security: GCS with \(outputs.count) dv runs; no token in any output or file but config.local.yaml")
  }

  func testLocalRemoteHoldsNoSecrets() throws {
    try makeWorkspace()
    let remote = root + ".remote"
    defer { try? FileSystem.removeTree(remote) }
    // Secrets of an unused S3 remote and in the environment must not travel to another remote.
    let secret = "UnusedRemoteSecret/abcdefghijklmnop0123456789"
    XCTAssertEqual(try dvLogged(["remote", "add", "other", "s3://bucket/p"], env: isolated).code, 0)
    XCTAssertEqual(
      try dvLogged(["remote", "modify", "--local", "other", "secret_access_key", secret], env: isolated).code, 0)
    XCTAssertEqual(try dvLogged(["remote", "add", "-d", "store", remote], env: isolated).code, 0)
    let envSecret = "EnvironmentSecret/zyxwvutsrq9876543210"
    try exercise(remote: "store", env: isolated.merging(["AWS_SECRET_ACCESS_KEY": envSecret]) { $1 })
    try assertNoLeak([secret, envSecret], extra: [remote])
    XCTAssertTrue(FileSystem.isDirectory(remote + "/runs"), "run records went to the remote")
  }

  // MARK: - TLS

  /// Starts an https server on loopback with a freshly made self-signed certificate; returns
  /// its URL and the certificate's path.
  func startSelfSignedServer() throws -> (url: String, certificate: String) {
    let directory = root + ".tls"
    try FileSystem.createDirectory(directory)
    addTeardownBlock { try? FileSystem.removeTree(directory) }
    let openssl = try run(
      "/usr/bin/env",
      [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory + "/key.pem", "-out",
        directory + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      ])
    guard openssl.code == 0 else { throw XCTSkip("openssl could not make a certificate: \(openssl.stderr)") }
    let script = """
      import http.server, os, ssl, sys
      directory = sys.argv[1]
      class Handler(http.server.BaseHTTPRequestHandler):
          def log_message(self, *args): pass
          def answer(self):
              self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
          do_GET = do_HEAD = do_PUT = do_POST = answer
      server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
      context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
      context.load_cert_chain(directory + "/cert.pem", directory + "/key.pem")
      server.socket = context.wrap_socket(server.socket, server_side=True)
      with open(directory + "/port.tmp", "w") as f: f.write(str(server.server_address[1]))
      os.replace(directory + "/port.tmp", directory + "/port")
      server.serve_forever()
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, directory]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    server = process
    for _ in 0..<200 {
      if let port = try FileSystem.readTextIfPresent(directory + "/port") {
        return ("https://127.0.0.1:\(port)", directory + "/cert.pem")
      }
      guard process.isRunning else { break }
      usleep(50_000)
    }
    throw XCTSkip("the https test server did not start")
  }

  /// Variables other tools read to skip certificate checks; dv must ignore every one.
  let insecureEnvironment = [
    "CURL_INSECURE": "1", "CURLOPT_SSL_VERIFYPEER": "0", "PYTHONHTTPSVERIFY": "0", "GIT_SSL_NO_VERIFY": "1",
    "NODE_TLS_REJECT_UNAUTHORIZED": "0", "AWS_CA_BUNDLE": "", "DV_INSECURE": "1", "DV_SSL_VERIFY": "0",
    "SSL_VERIFY": "0", "REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": "",
  ]

  func testSelfSignedServersFailWithOneClearLineAndVerificationCannotBeTurnedOff() throws {
    let (url, certificate) = try startSelfSignedServer()
    XCTAssertEqual(try dv("init", "--no-scm").code, 0)
    try write("data.txt", "some data\n")
    XCTAssertEqual(try dv("add", "data.txt").code, 0)
    XCTAssertEqual(try dv("remote", "add", "-d", "s3", "s3://bucket/tls").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "s3", "endpoint", url).code, 0)
    XCTAssertEqual(try dv("remote", "add", "gcs", "gs://bucket/tls").code, 0)
    XCTAssertEqual(try dv("remote", "modify", "gcs", "endpoint", url).code, 0)
    XCTAssertEqual(try dv("remote", "modify", "--local", "gcs", "token", "ya29.tls-test").code, 0)
    let env = isolated.merging(["AWS_ACCESS_KEY_ID": "AKIATLSTEST", "AWS_SECRET_ACCESS_KEY": "tls-test-secret"]) {
      $1
    }.merging(insecureEnvironment) { $1 }
    for remote in ["s3", "gcs"] {
      let started = Date()
      let push = try dv("push", "-r", remote, env: env)
      assertFails(push, code: 1, "TLS failed")
      XCTAssertTrue(push.stderr.contains("certificate"), push.stderr)
      XCTAssertLessThan(Date().timeIntervalSince(started), 20, "a TLS failure is not retried")
    }
    // No setting turns verification off: every such key is refused as unknown.
    for key in ["ssl_verify", "verify", "verify_ssl", "insecure", "tls_verify", "no_verify_ssl"] {
      for remote in ["s3", "gcs"] {
        let refused = try dv("remote", "modify", remote, key, "false")
        assertFails(refused, code: 2, "remote '\(remote)' has no setting '\(key)'")
      }
    }
    // Trusting a certificate is explicit (SSL_CERT_FILE, as OpenSSL tools read it): then the
    // handshake succeeds and the error, if any, is no longer about TLS.
    let trusted = try dv("status", "--remote", "gcs", env: env.merging(["SSL_CERT_FILE": certificate]) { $1 })
    XCTAssertFalse(trusted.stderr.contains("TLS failed"), trusted.stderr)
    let tlsSources = try run("/usr/bin/env", ["grep", "-rn", "SSL_VERIFY", Self.sourcesDirectory]).stdout
    let settings = tlsSources.split(separator: "\n").filter { !$0.contains(", 1)") && !$0.contains(", 2)") }
    XCTAssertEqual(settings, [], "every SSL_VERIFY option in Sources is set on (1 or 2)")
  }

  static let sourcesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Sources").path
}
