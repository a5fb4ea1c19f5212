import COpenSSL
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// SHA-256 and HMAC-SHA256 through OpenSSL, and the hex form AWS signatures use.
package enum S3Crypto {
  /// The hex SHA-256 of no bytes: the payload hash of GET, HEAD and DELETE requests.
  package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

  /// The SHA-256 digest of `bytes`.
  package static func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    _ = bytes.withUnsafeBytes { input in
      EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
    }
    return digest
  }

  /// The SHA-256 digest of `length` bytes of the file at `path` from `offset`, read in large
  /// chunks (multipart uploads sign each part over its own hash).
  package static func sha256(ofFile path: String, offset: Int64, length: Int64) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError("opening '\(path)' to hash it", errno: errno) }
    defer { close(fd) }
    let context = EVP_MD_CTX_new()
    defer { EVP_MD_CTX_free(context) }
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    var done: Int64 = 0
    while done < length {
      let want = Int(min(Int64(buffer.count), length - done))
      let n = pread(fd, buffer.baseAddress, want, off_t(offset + done))
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw SystemError("reading '\(path)'", errno: errno) }
      // A file that shrank since its size was taken.
      if n == 0 { throw SystemError("reading '\(path)'", errno: EIO) }
      EVP_DigestUpdate(context, buffer.baseAddress, n)
      done += Int64(n)
    }
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var size: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &size)
    return Array(digest[0..<32])
  }

  /// HMAC-SHA256 of `data` under `key` (OpenSSL's EVP_Q_mac).
  package static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    var length = 0
    key.withUnsafeBytes { key in
      data.withUnsafeBytes { data in
        _ = EVP_Q_mac(
          nil, "HMAC", nil, "SHA256", nil, key.baseAddress, key.count, data.baseAddress, data.count, &out, 32,
          &length)
      }
    }
    return out
  }

  /// HMAC-SHA256 of a UTF-8 string.
  package static func hmacSHA256(key: [UInt8], _ text: String) -> [UInt8] { hmacSHA256(key: key, Array(text.utf8)) }

  /// Lowercase hex.
  package static func hex(_ bytes: [UInt8]) -> String { Hex.string(bytes) }
}

/// The time of a request in the two forms SigV4 uses: `20130524T000000Z` and `20130524`.
package struct AMZDate: Sendable, Equatable {
  /// `yyyyMMdd'T'HHmmss'Z'` in UTC, the value of `x-amz-date`.
  package var stamp: String
  /// `yyyyMMdd`, the day of the credential scope.
  package var day: String { String(stamp.prefix(8)) }

  package init(stamp: String) { self.stamp = stamp }

  /// The UTC time of `date`.
  package init(_ date: Date) {
    var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    stamp =
      pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T" + pad(parts.tm_hour, 2)
      + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
  }
}

/// AWS Signature Version 4 for header-signed requests: the canonical request, the string to sign,
/// the derived signing key and the `Authorization` value.
package struct SigV4Signer: Sendable {
  package let credentials: AWSCredentials
  package let region: String
  package let service: String
  /// The signing key of the last day signed for: deriving it costs four HMACs, and it changes
  /// once a day.
  private let keyCache = Locked<(day: String, key: [UInt8])?>(nil)

  package init(credentials: AWSCredentials, region: String, service: String = "s3") {
    self.credentials = credentials
    self.region = region
    self.service = service
  }

  /// Percent-encodes everything but the unreserved characters (`A-Z a-z 0-9 - _ . ~`), and `/`
  /// too unless `keepSlash` (object key paths keep their separators).
  package static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out = [UInt8]()
    out.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
        UInt8(ascii: "~"):
        out.append(byte)
      case UInt8(ascii: "/") where keepSlash:
        out.append(byte)
      default:
        out.append(UInt8(ascii: "%"))
        out.append(hex[Int(byte >> 4)])
        out.append(hex[Int(byte & 15)])
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The canonical query string: names and values URI-encoded, sorted by name then value, a
  /// parameter without a value written `name=`. The request URL uses the same text, so that what
  /// is sent is exactly what was signed.
  package static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
    items.map { (uriEncode($0.name), uriEncode($0.value)) }
      .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
      .map { "\($0.0)=\($0.1)" }
      .joined(separator: "&")
  }

  /// The signed headers: names lowercased and sorted, values trimmed with inner runs of spaces
  /// collapsed, repeated names joined with commas.
  package static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (
    block: String, names: String
  ) {
    var merged: [String: String] = [:]
    for (name, value) in headers {
      let key = name.lowercased()
      let clean = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        .trimmingCharacters(in: .whitespaces)
      merged[key] = merged[key].map { $0 + "," + clean } ?? clean
    }
    let names = merged.keys.sorted()
    return (names.map { "\($0):\(merged[$0]!)\n" }.joined(), names.joined(separator: ";"))
  }

  /// The canonical request: method, encoded path, canonical query, headers, signed header names,
  /// payload hash, one per line.
  package func canonicalRequest(
    method: String, path: String, query: String, headers: [(name: String, value: String)], payloadHash: String
  ) -> String {
    let canonical = Self.canonicalHeaders(headers)
    return [method, path, query, canonical.block, canonical.names, payloadHash].joined(separator: "\n")
  }

  /// `day/region/service/aws4_request`.
  package func scope(_ date: AMZDate) -> String { "\(date.day)/\(region)/\(service)/aws4_request" }

  /// The string to sign for a canonical request.
  package func stringToSign(canonicalRequest: String, date: AMZDate) -> String {
    let hash = S3Crypto.hex(S3Crypto.sha256(Array(canonicalRequest.utf8)))
    return ["AWS4-HMAC-SHA256", date.stamp, scope(date), hash].joined(separator: "\n")
  }

  /// The hex signature of a string to sign, with the key derived from the secret for the day,
  /// region and service.
  package func signature(stringToSign: String, date: AMZDate) -> String {
    S3Crypto.hex(S3Crypto.hmacSHA256(key: signingKey(day: date.day), stringToSign))
  }

  /// HMAC("AWS4" + secret, day), then region, service and "aws4_request".
  package func signingKey(day: String) -> [UInt8] {
    if let cached = keyCache.withLock({ $0 }), cached.day == day { return cached.key }
    var key = S3Crypto.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), day)
    key = S3Crypto.hmacSHA256(key: key, region)
    key = S3Crypto.hmacSHA256(key: key, service)
    key = S3Crypto.hmacSHA256(key: key, "aws4_request")
    keyCache.withLock { $0 = (day, key) }
    return key
  }

  /// The `Authorization` header value for a request whose `headers` (including `host`,
  /// `x-amz-date` and `x-amz-content-sha256`) are all signed.
  package func authorization(
    method: String, path: String, query: String, headers: [(name: String, value: String)], payloadHash: String,
    date: AMZDate
  ) -> String {
    let canonical = canonicalRequest(
      method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
    let signed = signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)
    let names = Self.canonicalHeaders(headers).names
    return
      "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(date)),SignedHeaders=\(names),Signature=\(signed)"
  }
}
