import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// Service-account JWTs, the token exchange and its cache, and how a GCS remote finds (or fails
/// to find) its credentials; no server needed.
final class GCSAuthTests: XCTestCase {
  var directory = ""

  override func setUpWithError() throws { directory = try GCSTestSupport.temporaryDirectory() }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

  /// A clock tests move by hand.
  final class Clock: @unchecked Sendable {
    let time = Locked(Date(timeIntervalSince1970: 1_800_000_000))
    var now: @Sendable () -> Date { { [time] in time.withLock { $0 } } }
    func advance(_ seconds: TimeInterval) { time.withLock { $0 += seconds } }
  }

  func makeKeyFile(tokenURI: String = "https://oauth2.example.test/token") throws -> (file: String, publicKey: String) {
    let keys = try GCSTestSupport.makeRSAKeyPair(in: directory)
    return (
      try GCSTestSupport.writeServiceAccountFile(in: directory, keyPath: keys.privateKey, tokenURI: tokenURI),
      keys.publicKey
    )
  }

  func testTheJWTIsSignedRS256WithTheServiceAccountKeyAndCarriesTheClaims() throws {
    let (file, publicKey) = try makeKeyFile()
    let key = try GCSServiceAccountKey.load(path: file)
    let issued = Date(timeIntervalSince1970: 1_800_000_000)
    let jwt = try XCTUnwrap(GCSJWT.assertion(for: key, issuedAt: issued))

    let parts = jwt.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    XCTAssertEqual(parts.count, 3)
    let header = try JSONSerialization.jsonObject(with: Data(XCTUnwrap(GCSJWT.decodeBase64URL(parts[0]))))
    XCTAssertEqual(header as? [String: String], ["alg": "RS256", "typ": "JWT"])
    let claims = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(XCTUnwrap(GCSJWT.decodeBase64URL(parts[1])))) as? [String: Any])
    XCTAssertEqual(claims["iss"] as? String, "dv-test@dv-project.iam.gserviceaccount.com")
    XCTAssertEqual(claims["scope"] as? String, "https://www.googleapis.com/auth/devstorage.read_write")
    XCTAssertEqual(claims["aud"] as? String, "https://oauth2.example.test/token")
    XCTAssertEqual(claims["iat"] as? Int, 1_800_000_000)
    XCTAssertEqual(claims["exp"] as? Int, 1_800_003_600)
    XCTAssertFalse(jwt.contains("=") || jwt.contains("+") || jwt.contains("/"), "base64url without padding")

    // The signature checks out with the public key, by OpenSSL's own tool, and not for other bytes.
    let signature = try XCTUnwrap(GCSJWT.decodeBase64URL(parts[2]))
    XCTAssertEqual(signature.count, 256)
    try Data(signature).write(to: URL(fileURLWithPath: directory + "/signature"))
    try Data((parts[0] + "." + parts[1]).utf8).write(to: URL(fileURLWithPath: directory + "/input"))
    let verified = try GCSTestSupport.run([
      "openssl", "dgst", "-sha256", "-verify", publicKey, "-signature", directory + "/signature", directory + "/input",
    ])
    XCTAssertEqual(verified.status, 0, verified.output)
    try Data((parts[0] + "." + parts[1] + "x").utf8).write(to: URL(fileURLWithPath: directory + "/input"))
    let tampered = try GCSTestSupport.run([
      "openssl", "dgst", "-sha256", "-verify", publicKey, "-signature", directory + "/signature", directory + "/input",
    ])
    XCTAssertNotEqual(tampered.status, 0)
  }

  func testAnRSAPrivateKeyInPKCS1FormIsAcceptedToo() throws {
    let keys = try GCSTestSupport.makeRSAKeyPair(in: directory)
    let pkcs1 = directory + "/rsa.pem"
    let converted = try GCSTestSupport.run(["openssl", "rsa", "-in", keys.privateKey, "-traditional", "-out", pkcs1])
    XCTAssertEqual(converted.status, 0, converted.output)
    XCTAssertTrue(try String(contentsOfFile: pkcs1, encoding: .utf8).contains("BEGIN RSA PRIVATE KEY"))
    let file = try GCSTestSupport.writeServiceAccountFile(in: directory, keyPath: pkcs1)
    XCTAssertNotNil(GCSJWT.assertion(for: try GCSServiceAccountKey.load(path: file), issuedAt: Date()))
  }

  /// A token endpoint and a bucket API in one: tokens "token-1", "token-2", … valid for an hour.
  func tokenServer(refuse: Set<String> = []) -> (GCSHandlerTransport, Locked<Int>) {
    let exchanges = Locked(0)
    let transport = GCSHandlerTransport { request in
      if request.url == "https://oauth2.example.test/token" {
        let form = String(
          decoding: { if case .bytes(let b) = request.body { return b } else { return [] } }(), as: UTF8.self)
        guard form.hasPrefix("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="),
          request.method == .post, request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        else { return (400, [:], Array(#"{"error":"invalid_request"}"#.utf8)) }
        let n = exchanges.withLock { n -> Int in
          n += 1
          return n
        }
        return (200, [:], Array(#"{"access_token":"token-\#(n)","expires_in":3599,"token_type":"Bearer"}"#.utf8))
      }
      let authorization = request.headers["Authorization"] ?? ""
      if refuse.contains(authorization) {
        return (401, [:], Array(#"{"error":{"code":401,"message":"Invalid Credentials"}}"#.utf8))
      }
      return (200, [:], Array(#"{"name":"x"}"#.utf8))
    }
    return (transport, exchanges)
  }

  func testTheTokenIsExchangedOnceForManyThreadsAndRenewedBeforeItExpires() throws {
    let (file, _) = try makeKeyFile()
    let (transport, exchanges) = tokenServer()
    let clock = Clock()
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket/prefix", options: ["credentialpath": file]),
      environment: [:], transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry, now: clock.now))

    DispatchQueue.concurrentPerform(iterations: 16) { i in XCTAssertEqual(try? remote.exists("k\(i)"), true) }
    XCTAssertEqual(exchanges.withLock { $0 }, 1)
    let objectRequests = transport.requests(to: "https://storage.googleapis.com/")
    XCTAssertEqual(objectRequests.count, 16)
    XCTAssertTrue(objectRequests.allSatisfy { $0.headers["Authorization"] == "Bearer token-1" })

    clock.advance(3000)  // still well within the hour
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertEqual(exchanges.withLock { $0 }, 1)
    clock.advance(400)  // within five minutes of expiry: renewed first
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertEqual(exchanges.withLock { $0 }, 2)
    XCTAssertEqual(transport.requests.withLock { $0.last?.headers["Authorization"] }, "Bearer token-2")
  }

  func testARefusedTokenIsRenewedOnce() throws {
    let (file, _) = try makeKeyFile()
    let (transport, exchanges) = tokenServer(refuse: ["Bearer token-1"])
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["credentialpath": file]),
      environment: [:], transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry))
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertEqual(exchanges.withLock { $0 }, 2)
  }

  func testARefusedServiceAccountIsAClearAccessDeniedWithoutSecrets() throws {
    let (file, _) = try makeKeyFile()
    let transport = GCSHandlerTransport { request in
      XCTAssertEqual(request.url, "https://oauth2.example.test/token")
      return (400, [:], Array(#"{"error":"invalid_grant","error_description":"Invalid JWT\nSignature."}"#.utf8))
    }
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket/data", options: ["credentialpath": file]),
      environment: [:], transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry))
    XCTAssertThrowsError(try remote.exists("ab/cdef")) { error in
      guard case RemoteError.accessDenied = error else { return XCTFail("\(error)") }
      let message = "\(error)"
      XCTAssertTrue(message.contains("gs://bucket/data"), message)
      XCTAssertTrue(message.contains("invalid_grant: Invalid JWT Signature."), message)
      XCTAssertTrue(message.contains(file), message)
      XCTAssertFalse(message.contains("\n"), message)
      XCTAssertFalse(
        message.contains("PRIVATE KEY") || message.contains("assertion=") || message.contains("eyJ"), message)
    }
  }

  func testAnAccessTokenSettingOrEnvironmentIsSentAsIs() throws {
    let transport = GCSHandlerTransport { _ in (200, [:], []) }
    let fromSetting = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["token": "ya29.setting"]),
      environment: ["GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.environment"], transport: transport)
    XCTAssertTrue(try fromSetting.exists("k"))
    let fromEnvironment = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket"),
      environment: ["GOOGLE_OAUTH_ACCESS_TOKEN": "ya29.environment"], transport: transport)
    XCTAssertTrue(try fromEnvironment.exists("k"))
    XCTAssertEqual(
      transport.requests.withLock { $0.map { $0.headers["Authorization"] } },
      ["Bearer ya29.setting", "Bearer ya29.environment"])
  }

  func testMissingOrUnusableCredentialsAreReportedAtInit() throws {
    XCTAssertThrowsError(try GCSRemote(settings: RemoteSettings(name: "gcs", url: "gs://bucket"), environment: [:])) {
      error in
      guard case RemoteError.missingCredentials = error else { return XCTFail("\(error)") }
      XCTAssertEqual((error as? DVError)?.kind, .badInput)
      let message = "\(error)"
      for place in ["credentialpath", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "'gcs'"] {
        XCTAssertTrue(message.contains(place), message)
      }
    }
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(name: "gcs", url: "gs://bucket"),
        environment: ["GOOGLE_APPLICATION_CREDENTIALS": directory + "/absent.json"])
    ) { error in
      guard case RemoteError.invalidSetting(_, let key, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(key, "GOOGLE_APPLICATION_CREDENTIALS")
      XCTAssertTrue("\(error)".contains(directory + "/absent.json"), "\(error)")
    }
    let userFile = directory + "/user.json"
    try Data(#"{"type":"external_account","client_secret":"s3cr3t","refresh_token":"r"}"#.utf8)
      .write(to: URL(fileURLWithPath: userFile))
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["credentialpath": userFile]),
        environment: [:])
    ) { error in
      guard case RemoteError.invalidSetting(_, let key, _) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(key, "credentialpath")
      XCTAssertTrue("\(error)".contains("external_account"), "\(error)")
      XCTAssertFalse("\(error)".contains("s3cr3t"), "\(error)")
    }
    let badKey = directory + "/bad-key.json"
    try Data(
      #"{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#
        .utf8
    ).write(to: URL(fileURLWithPath: badKey))
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["credentialpath": badKey]),
        environment: [:])
    ) { error in
      XCTAssertTrue("\(error)".contains("not a usable RSA private key"), "\(error)")
    }
  }

  func testGcloudApplicationDefaultCredentialsAreFoundAndRefreshed() throws {
    let gcloud = directory + "/home/.config/gcloud"
    try FileManager.default.createDirectory(atPath: gcloud, withIntermediateDirectories: true)
    try Data(
      #"{"type":"authorized_user","client_id":"id.apps","client_secret":"s3cr3t","refresh_token":"1//refresh","token_uri":"https://oauth2.example.test/token"}"#
        .utf8
    ).write(to: URL(fileURLWithPath: gcloud + "/application_default_credentials.json"))
    let transport = GCSHandlerTransport { request in
      if request.url == "https://oauth2.example.test/token" {
        guard case .bytes(let body) = request.body,
          String(decoding: body, as: UTF8.self)
            == "grant_type=refresh_token&client_id=id.apps&client_secret=s3cr3t&refresh_token=1%2F%2Frefresh"
        else { return (400, [:], Array(#"{"error":"invalid_grant","error_description":"Bad Request"}"#.utf8)) }
        return (200, [:], Array(#"{"access_token":"ya29.user","expires_in":3599}"#.utf8))
      }
      return (request.headers["Authorization"] == "Bearer ya29.user" ? 200 : 401, [:], [])
    }
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket"), environment: ["HOME": directory + "/home"],
      transport: transport, tuning: GCSTuning(retry: GCSTestSupport.quickRetry))
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertEqual(transport.requests(to: "https://oauth2.example.test/token").count, 1)
    // CLOUDSDK_CONFIG moves gcloud's directory; the hint names where dv looked.
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(name: "gcs", url: "gs://bucket"),
        environment: ["HOME": directory + "/home", "CLOUDSDK_CONFIG": directory + "/elsewhere"])
    ) { error in
      guard case RemoteError.missingCredentials = error else { return XCTFail("\(error)") }
      XCTAssertTrue("\(error)".contains(directory + "/elsewhere/application_default_credentials.json"), "\(error)")
    }
  }

  func testURLsAndEndpoints() throws {
    for bad in ["s3://bucket", "gs://", "gs:///prefix", "gs://Bucket", "gs://b", "gs://bucket/a/../b", "gs://-bucket"] {
      XCTAssertThrowsError(
        try GCSRemote(settings: RemoteSettings(name: "gcs", url: bad), environment: ["STORAGE_EMULATOR_HOST": "h:1"]),
        bad
      ) { error in
        guard case RemoteError.invalidURL = error else { return XCTFail("\(bad): \(error)") }
      }
    }
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://my-bucket//data/v1/"),
      environment: ["STORAGE_EMULATOR_HOST": "127.0.0.1:9023"])
    XCTAssertEqual(remote.displayURL, "gs://my-bucket/data/v1")
    XCTAssertEqual(remote.prefix, "data/v1/")
    XCTAssertEqual(remote.endpoint, "http://127.0.0.1:9023")
    XCTAssertEqual(remote.objectURL("ab/c d"), "http://127.0.0.1:9023/storage/v1/b/my-bucket/o/data%2Fv1%2Fab%2Fc%20d")
    let withScheme = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://my-bucket"),
      environment: ["STORAGE_EMULATOR_HOST": "http://localhost:4443/"])
    XCTAssertEqual(withScheme.endpoint, "http://localhost:4443")
    let custom = try GCSRemote(
      settings: RemoteSettings(
        name: "gcs", url: "gs://my-bucket", options: ["endpoint": "https://gcs.example/", "token": "t"]),
      environment: [:])
    XCTAssertEqual(custom.endpoint, "https://gcs.example")
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(
          name: "gcs", url: "gs://my-bucket", options: ["endpoint": "gcs.example", "token": "t"]),
        environment: [:])
    ) { error in
      guard case RemoteError.invalidSetting(_, "endpoint", _) = error else { return XCTFail("\(error)") }
    }
    // A token never goes over plain http to another machine; to this machine (a test server) it may.
    XCTAssertThrowsError(
      try GCSRemote(
        settings: RemoteSettings(
          name: "gcs", url: "gs://my-bucket", options: ["endpoint": "http://gcs.example:8080", "token": "t"]),
        environment: [:])
    ) { error in
      guard case RemoteError.invalidSetting(_, "endpoint", let reason) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(reason.contains("unencrypted; use https://"), reason)
    }
    for local in ["http://127.0.0.1:4443", "http://localhost:4443", "http://[::1]:4443"] {
      let remote = try GCSRemote(
        settings: RemoteSettings(name: "gcs", url: "gs://my-bucket", options: ["endpoint": local, "token": "t"]),
        environment: [:])
      XCTAssertEqual(remote.endpoint, local)
    }
  }

  func testNoAuthorizationGoesToAnEmulator() throws {
    let transport = GCSHandlerTransport { _ in (200, [:], []) }
    let remote = try GCSRemote(
      settings: RemoteSettings(name: "gcs", url: "gs://bucket", options: ["token": "t"]),
      environment: ["STORAGE_EMULATOR_HOST": "127.0.0.1:1"], transport: transport)
    XCTAssertTrue(try remote.exists("k"))
    XCTAssertNil(transport.requests.withLock { $0.first?.headers["Authorization"] })
  }
}
