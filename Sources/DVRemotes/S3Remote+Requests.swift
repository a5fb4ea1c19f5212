import DVBasics
import Foundation

/// One S3 call before signing: what to send where.
package struct S3Request {
  package var method: HTTPMethod
  /// The object's full key in the bucket; nil for a bucket-level call (listings).
  package var key: String?
  package var query: [(name: String, value: String)]
  /// Headers sent but not signed (`Content-Type`).
  package var headers: [(name: String, value: String)]
  package var body: HTTPBody
  /// The hex SHA-256 of `body`.
  package var payloadHash: String

  package init(
    _ method: HTTPMethod, key: String?, query: [(name: String, value: String)] = [],
    headers: [(name: String, value: String)] = [], body: HTTPBody = .none,
    payloadHash: String = S3Crypto.emptyPayloadHash
  ) {
    self.method = method
    self.key = key
    self.query = query
    self.headers = headers
    self.body = body
    self.payloadHash = payloadHash
  }
}

/// Turns the running totals of a transfer's requests (which restart at zero when a request is
/// retried) into the increments `Remote`'s progress callbacks take, never counting a byte twice.
/// Serialized: the parts of one multipart upload report from several threads.
package final class ProgressForwarder: @unchecked Sendable {
  private let report: (Int64) -> Void
  private let lock = NSLock()
  /// The furthest position reported, by the offset where each request's bytes start.
  private var reached: [Int64: Int64] = [:]

  package init(_ report: @escaping (Int64) -> Void) { self.report = report }

  /// A handler for one request whose bytes start at `base` of the whole transfer.
  func handler(base: Int64, upload: Bool) -> HTTPProgressHandler {
    { [self] progress in
      advance(request: base, to: upload ? progress.sent : progress.received)
      return true
    }
  }

  private func advance(request base: Int64, to position: Int64) {
    lock.lock()
    defer { lock.unlock() }
    let before = reached[base] ?? 0
    guard position > before else { return }
    reached[base] = position
    report(position - before)
  }
}

extension S3Remote {
  /// Signs and sends `call`, retrying per the policy (each attempt signed anew). Returns the
  /// final response, successful or not; failures without a response become
  /// `RemoteError.transport` naming `shownAs`.
  package func perform(
    _ call: S3Request, shownAs: String, sink: HTTPResponseSink? = nil, progress: ProgressForwarder? = nil,
    progressBase: Int64 = 0
  ) throws -> HTTPResponse {
    let handler = progress?.handler(base: progressBase, upload: call.body != .none)
    do {
      return try retryPolicy.run { _ in
        try transport.send(signedRequest(call, date: AMZDate(now())), into: sink, progress: handler)
      }
    } catch HTTPError.sink(_, let error) {
      throw error
    } catch let error as HTTPError {
      throw RemoteError.transport(url: shownAs, message: error.description)
    }
  }

  /// The HTTP request for `call` at `date`, with `Host`, `x-amz-date`, `x-amz-content-sha256`,
  /// `x-amz-security-token` (temporary credentials) and `Authorization`.
  package func signedRequest(_ call: S3Request, date: AMZDate) -> HTTPRequest {
    var path = pathStyle ? "/" + SigV4Signer.uriEncode(bucket) : ""
    if let key = call.key {
      path += "/" + SigV4Signer.uriEncode(key, keepSlash: true)
    } else if !pathStyle {
      path = "/"
    }
    let host = pathStyle ? endpointAuthority : "\(bucket).\(endpointAuthority)"
    let query = SigV4Signer.canonicalQuery(call.query)
    var signed: [(name: String, value: String)] = [
      ("host", host), ("x-amz-content-sha256", call.payloadHash), ("x-amz-date", date.stamp),
    ]
    if let token = signer.credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
    let authorization = signer.authorization(
      method: call.method.rawValue, path: path, query: query, headers: signed, payloadHash: call.payloadHash,
      date: date)
    var headers = HTTPHeaders()
    headers.add("Host", host)
    for (name, value) in signed where name != "host" { headers.add(name, value) }
    headers.add("Authorization", authorization)
    for (name, value) in call.headers { headers.add(name, value) }
    return HTTPRequest(
      call.method, url: "\(scheme)://\(host)\(path)\(query.isEmpty ? "" : "?" + query)", headers: headers,
      body: call.body, followRedirects: false)
  }

  /// The error an unsuccessful response stands for, from S3's XML error code where there is one.
  package func failure(_ response: HTTPResponse, shownAs url: String) -> RemoteError {
    let xml = S3XML(response.errorBody)
    let code = xml.text("Code")
    let message = xml.text("Message").map { $0.split(whereSeparator: \.isNewline).joined(separator: " ") }
    switch code {
    case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
      "TokenRefreshRequired", "AllAccessDisabled", "InvalidSecurity":
      let permissions = code == "AccessDenied" ? ", and that they may use bucket '\(bucket)'" : ""
      return .accessDenied(url: url, hint: "\(code!): \(signer.credentials.refusalHint)\(permissions)")
    case "NoSuchBucket":
      return .noSuchBucket(url: "s3://\(bucket)")
    case "NoSuchKey":
      return .notFound(url: url)
    case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
      let actual = (response.headers["x-amz-bucket-region"] ?? xml.text("Region")).flatMap(Self.regionName)
      if let actual, actual != region {
        return .server(
          url: url, status: response.status,
          message:
            "the bucket is in region '\(actual)', not '\(region)'; run 'dv remote modify \(remoteName) region \(actual)'"
        )
      }
    case "RequestTimeTooSkewed":
      return .server(
        url: url, status: response.status,
        message: "this machine's clock differs from the server's by more than 15 minutes; set the clock right")
    case "XAmzContentSHA256Mismatch", "BadDigest":
      return .server(
        url: url, status: response.status,
        message: "the bytes sent do not match their SHA-256; did the file change during the upload?")
    default:
      break
    }
    if code == nil {
      if response.status == 403 {
        return .accessDenied(url: url, hint: signer.credentials.refusalHint)
      }
      if response.status == 404 { return .notFound(url: url) }
      if (301...308).contains(response.status),
        let actual = response.headers["x-amz-bucket-region"].flatMap(Self.regionName), actual != region
      {
        return .server(
          url: url, status: response.status,
          message:
            "the bucket is in region '\(actual)', not '\(region)'; run 'dv remote modify \(remoteName) region \(actual)'"
        )
      }
    }
    let detail = [code, message].compactMap { $0?.split(whereSeparator: \.isNewline).joined(separator: " ") }
      .joined(separator: ": ")
    return .server(url: url, status: response.status, message: detail.isEmpty ? response.statusText : detail)
  }

  /// `text` when it reads as a region name (`eu-west-1`); a server's answer is quoted in
  /// messages and commands only then.
  static func regionName(_ text: String) -> String? {
    !text.isEmpty && text.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
      ? text : nil
  }
}
