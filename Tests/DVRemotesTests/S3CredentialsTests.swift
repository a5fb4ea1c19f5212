import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// Where the S3 remote finds credentials and its region: the remote's settings, the
/// environment, and the AWS profile files.
final class S3CredentialsTests: XCTestCase {
  var home = ""

  override func setUpWithError() throws {
    home = NSTemporaryDirectory() + "dv-aws-\(UUID().uuidString)"
    try FileSystem.createDirectory(home + "/.aws")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(home) }

  func write(_ text: String, to name: String) throws {
    try FileSystem.writeAtomically(text, to: home + "/.aws/" + name)
  }

  func resolve(_ options: [String: String] = [:], _ environment: [String: String] = [:]) throws -> AWSCredentials {
    var environment = environment
    environment["HOME"] = environment["HOME"] ?? home
    return try AWSCredentialResolver(
      settings: RemoteSettings(name: "storage", url: "s3://b", options: options), environment: environment
    ).credentials()
  }

  func region(_ options: [String: String] = [:], _ environment: [String: String] = [:]) throws -> String {
    var environment = environment
    environment["HOME"] = home
    return try AWSCredentialResolver(
      settings: RemoteSettings(name: "storage", url: "s3://b", options: options), environment: environment
    ).region()
  }

  func testEnvironmentWithSessionToken() throws {
    let credentials = try resolve(
      [:], ["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "tok"])
    XCTAssertEqual(credentials.accessKeyID, "AKENV")
    XCTAssertEqual(credentials.secretAccessKey, "envsecret")
    XCTAssertEqual(credentials.sessionToken, "tok")
    XCTAssertEqual(credentials.source, .environment)
    XCTAssertTrue(credentials.refusalHint.contains("AWS_ACCESS_KEY_ID in the environment"))
  }

  func testRemoteSettingsComeBeforeTheEnvironment() throws {
    let credentials = try resolve(
      ["access_key_id": "AKLOCAL", "secret_access_key": "localsecret", "session_token": "t"],
      ["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "envsecret"])
    XCTAssertEqual(credentials.accessKeyID, "AKLOCAL")
    XCTAssertEqual(credentials.sessionToken, "t")
    XCTAssertEqual(credentials.source, .remoteSettings(remote: "storage"))
  }

  func testHalfAKeyInTheSettingsIsAnError() {
    XCTAssertThrowsError(try resolve(["access_key_id": "AKLOCAL"])) { error in
      guard case RemoteError.invalidSetting(_, "secret_access_key", let reason) = error else {
        return XCTFail("\(error)")
      }
      XCTAssertTrue(reason.contains("dv remote modify --local storage secret_access_key"), reason)
    }
  }

  func testDefaultProfileFromTheCredentialsFile() throws {
    try write(
      """
      # comment
      [default]
      aws_access_key_id = AKDEFAULT
      aws_secret_access_key = def/secret+with#hash
      [other]
      aws_access_key_id = AKOTHER
      aws_secret_access_key = othersecret
      """, to: "credentials")
    let credentials = try resolve()
    XCTAssertEqual(credentials.accessKeyID, "AKDEFAULT")
    XCTAssertEqual(credentials.secretAccessKey, "def/secret+with#hash")
    XCTAssertEqual(credentials.source, .profile(name: "default", file: home + "/.aws/credentials"))
    XCTAssertEqual(try resolve([:], ["AWS_PROFILE": "other"]).accessKeyID, "AKOTHER")
  }

  func testNamedProfileInTheConfigFileWithSessionTokenAndRegion() throws {
    try write(
      """
      [default]
      region = eu-west-1
      [profile ci]
      region = eu-central-1
      aws_access_key_id = AKCI
      aws_secret_access_key = cisecret
      aws_session_token = citoken
      s3 =
        addressing_style = path
      """, to: "config")
    let credentials = try resolve(["profile": "ci"])
    XCTAssertEqual(credentials.accessKeyID, "AKCI")
    XCTAssertEqual(credentials.sessionToken, "citoken")
    XCTAssertEqual(credentials.source, .profile(name: "ci", file: home + "/.aws/config"))
    XCTAssertTrue(credentials.refusalHint.contains("profile 'ci'"))
    XCTAssertEqual(try region(["profile": "ci"]), "eu-central-1")
    XCTAssertEqual(try region(), "eu-west-1")
    XCTAssertEqual(try region([:], ["AWS_DEFAULT_REGION": "us-west-2"]), "us-west-2")
    XCTAssertEqual(try region([:], ["AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"]), "ap-south-1")
    XCTAssertEqual(try region(["region": "sa-east-1"], ["AWS_REGION": "ap-south-1"]), "sa-east-1")
  }

  func testTheCredentialsFileWinsOverTheConfigFile() throws {
    try write("[profile ci]\naws_access_key_id = AKCONFIG\naws_secret_access_key = c\n", to: "config")
    try write("[ci]\naws_access_key_id = AKCREDS\naws_secret_access_key = k\n", to: "credentials")
    let credentials = try resolve([:], ["AWS_PROFILE": "ci"])
    XCTAssertEqual(credentials.accessKeyID, "AKCREDS")
    XCTAssertEqual(credentials.source, .profile(name: "ci", file: home + "/.aws/credentials"))
  }

  func testFilesNamedByTheEnvironment() throws {
    let elsewhere = home + "/elsewhere"
    try FileSystem.writeAtomically("[x]\naws_access_key_id = AKX\naws_secret_access_key = s\n", to: elsewhere)
    let credentials = try resolve([:], ["AWS_SHARED_CREDENTIALS_FILE": elsewhere, "AWS_PROFILE": "x"])
    XCTAssertEqual(credentials.accessKeyID, "AKX")
    try FileSystem.writeAtomically("[profile y]\naws_access_key_id = AKY\naws_secret_access_key = s\n", to: elsewhere)
    XCTAssertEqual(try resolve(["profile": "y"], ["AWS_CONFIG_FILE": elsewhere]).accessKeyID, "AKY")
  }

  func testAProfileNamedInTheSettingsBeatsEnvironmentKeys() throws {
    try write("[ci]\naws_access_key_id = AKCI\naws_secret_access_key = s\n", to: "credentials")
    let credentials = try resolve(["profile": "ci"], ["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "e"])
    XCTAssertEqual(credentials.accessKeyID, "AKCI")
  }

  func testAMissingNamedProfileSaysSo() {
    XCTAssertThrowsError(try resolve([:], ["AWS_PROFILE": "nope"])) { error in
      guard case RemoteError.missingCredentials(_, let hint) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(hint.contains("profile 'nope'"), hint)
    }
  }

  func testNoCredentialsAnywhereListsWhereDvLooked() {
    XCTAssertThrowsError(try resolve()) { error in
      guard case RemoteError.missingCredentials(let remote, let hint) = error else { return XCTFail("\(error)") }
      XCTAssertEqual(remote, "storage")
      for place in [
        "AWS_ACCESS_KEY_ID", "profile 'default'", home + "/.aws/credentials", home + "/.aws/config",
        "dv remote modify --local storage access_key_id",
      ] {
        XCTAssertTrue(hint.contains(place), "\(place) missing from: \(hint)")
      }
      XCTAssertEqual((error as? RemoteError)?.kind, .badInput)
    }
  }

  func testRoleProfilesAreExplained() throws {
    try write("[profile sso]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n", to: "config")
    XCTAssertThrowsError(try resolve(["profile": "sso"])) { error in
      guard case RemoteError.missingCredentials(_, let hint) = error else { return XCTFail("\(error)") }
      XCTAssertTrue(hint.contains("role_arn"), hint)
    }
  }
}
