import XCTest

@testable import DVRemotes

/// SigV4 checked against the example requests of the AWS documentation ("Signature Calculations
/// for the Authorization Header", examplebucket, 24 May 2013).
final class S3SignerTests: XCTestCase {
  let signer = SigV4Signer(
    credentials: AWSCredentials(
      accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      source: .environment),
    region: "us-east-1")
  let date = AMZDate(stamp: "20130524T000000Z")

  func testGetObjectWithRangeReproducesThePublishedSignature() {
    let headers: [(name: String, value: String)] = [
      ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
      ("x-amz-content-sha256", S3Crypto.emptyPayloadHash), ("x-amz-date", "20130524T000000Z"),
    ]
    let canonical = signer.canonicalRequest(
      method: "GET", path: "/test.txt", query: "", headers: headers, payloadHash: S3Crypto.emptyPayloadHash)
    XCTAssertEqual(
      canonical,
      """
      GET
      /test.txt

      host:examplebucket.s3.amazonaws.com
      range:bytes=0-9
      x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
      x-amz-date:20130524T000000Z

      host;range;x-amz-content-sha256;x-amz-date
      e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
      """)
    let toSign = signer.stringToSign(canonicalRequest: canonical, date: date)
    XCTAssertEqual(
      toSign,
      """
      AWS4-HMAC-SHA256
      20130524T000000Z
      20130524/us-east-1/s3/aws4_request
      7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
      """)
    XCTAssertEqual(
      signer.signature(stringToSign: toSign, date: date),
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    XCTAssertEqual(
      signer.authorization(
        method: "GET", path: "/test.txt", query: "", headers: headers, payloadHash: S3Crypto.emptyPayloadHash,
        date: date),
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
  }

  func testListObjectsExampleSortsAndEncodesTheQuery() {
    let query = SigV4Signer.canonicalQuery([("prefix", "J"), ("max-keys", "2")])
    XCTAssertEqual(query, "max-keys=2&prefix=J")
    let authorization = signer.authorization(
      method: "GET", path: "/", query: query,
      headers: [
        ("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", S3Crypto.emptyPayloadHash),
        ("x-amz-date", date.stamp),
      ], payloadHash: S3Crypto.emptyPayloadHash, date: date)
    XCTAssertTrue(
      authorization.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
      authorization)
  }

  func testURIEncodingKeepsOnlyUnreservedCharacters() {
    XCTAssertEqual(SigV4Signer.uriEncode("a b/c+d=é~_.-"), "a%20b%2Fc%2Bd%3D%C3%A9~_.-")
    XCTAssertEqual(SigV4Signer.uriEncode("files/sha256/ab/c d", keepSlash: true), "files/sha256/ab/c%20d")
    XCTAssertEqual(SigV4Signer.canonicalQuery([("uploads", "")]), "uploads=")
    XCTAssertEqual(
      SigV4Signer.canonicalQuery([("list-type", "2"), ("continuation-token", "a+b/c="), ("prefix", "x/")]),
      "continuation-token=a%2Bb%2Fc%3D&list-type=2&prefix=x%2F")
  }

  func testCanonicalHeadersTrimAndMerge() {
    let canonical = SigV4Signer.canonicalHeaders([
      ("X-Amz-Meta-A", "  one   two "), ("Host", "h"), ("x-amz-meta-a", "3"),
    ])
    XCTAssertEqual(canonical.block, "host:h\nx-amz-meta-a:one two,3\n")
    XCTAssertEqual(canonical.names, "host;x-amz-meta-a")
  }

  func testDateStampIsUTC() {
    XCTAssertEqual(AMZDate(Date(timeIntervalSince1970: 1_369_353_600)).stamp, "20130524T000000Z")
    XCTAssertEqual(AMZDate(Date(timeIntervalSince1970: 1_369_353_600 + 3723.9)).stamp, "20130524T010203Z")
    XCTAssertEqual(date.day, "20130524")
  }

  func testHMACMatchesRFC4231() {
    // RFC 4231 test case 2.
    XCTAssertEqual(
      S3Crypto.hex(S3Crypto.hmacSHA256(key: Array("Jefe".utf8), "what do ya want for nothing?")),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    XCTAssertEqual(S3Crypto.hex(S3Crypto.sha256([])), S3Crypto.emptyPayloadHash)
  }

  func testCredentialsNeverDescribeTheirSecret() {
    let credentials = AWSCredentials(
      accessKeyID: "AKID", secretAccessKey: "s3cr3t-value", sessionToken: "t0ken-value", source: .environment)
    for text in [String(describing: credentials), String(reflecting: credentials), "\(credentials)"] {
      XCTAssertFalse(text.contains("s3cr3t-value"), text)
      XCTAssertFalse(text.contains("t0ken-value"), text)
    }
    var dumped = ""
    dump(credentials, to: &dumped)
    XCTAssertFalse(dumped.contains("s3cr3t-value"), dumped)
  }
}
