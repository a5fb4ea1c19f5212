import DVBasics
import Foundation

/// Supplies the OAuth2 bearer token of a GCS remote's requests.
package protocol GCSTokenProvider: Sendable {
  /// Where the credentials came from, for hints: "the service account 'a@p.iam.gserviceaccount.com'
  /// in '/keys/a.json' (GOOGLE_APPLICATION_CREDENTIALS)". Never the secret itself.
  var origin: String { get }
  /// A current access token. `refused` is a token the server just rejected with 401: a provider
  /// that can get a new one does, unless another thread already has.
  func token(replacing refused: String?) throws -> String
}

/// An access token given as it is (the `token` setting, `GOOGLE_OAUTH_ACCESS_TOKEN`); it cannot be
/// renewed, so a refusal is final.
package struct GCSStaticToken: GCSTokenProvider, CustomStringConvertible {
  private let value: String
  package let origin: String
  /// The origin, never the token: a remote printed into a log shows no secret.
  package var description: String { origin }

  package init(_ value: String, origin: String) {
    self.value = value
    self.origin = origin
  }

  package func token(replacing refused: String?) throws -> String { value }
}

/// Access tokens from a credentials file: for a service account, a JWT signed with its key is
/// exchanged at the file's `token_uri`; for a gcloud user, the refresh token is. The token is kept
/// until shortly before it expires. One thread exchanges while the others wait for its token, so
/// many parallel transfers cost one exchange.
package final class GCSOAuthTokens: GCSTokenProvider, @unchecked Sendable {
  package let credentials: GCSCredentialFile
  package let origin: String
  private let remote: String
  private let transport: HTTPTransport
  private let retry: RetryPolicy
  private let now: @Sendable () -> Date
  /// The cached token and when to stop using it. Guarded by the lock, which is held during an
  /// exchange (that is what makes the other threads wait rather than exchange too).
  private let cache = Locked<(token: String, refreshAt: Date)?>(nil)

  /// `remote` is the display URL errors name; `source` says which setting named the file.
  package init(
    credentials: GCSCredentialFile, source: String, remote: String, transport: HTTPTransport, retry: RetryPolicy,
    now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.credentials = credentials
    switch credentials {
    case .serviceAccount(let key): origin = "the service account '\(key.clientEmail)' in '\(key.path)' (\(source))"
    case .authorizedUser(let user): origin = "the gcloud user credentials in '\(user.path)' (\(source))"
    }
    self.remote = remote
    self.transport = transport
    self.retry = retry
    self.now = now
  }

  package func token(replacing refused: String?) throws -> String {
    try cache.withLock { cached in
      if let current = cached, current.token != refused, now() < current.refreshAt { return current.token }
      let issuedAt = now()
      let (token, lifetime) = try exchange(issuedAt: issuedAt)
      // Renew a few minutes early, so that a request never leaves with a token about to expire.
      let margin = min(300, lifetime / 4)
      cached = (token, issuedAt.addingTimeInterval(lifetime - margin))
      return token
    }
  }

  /// The form that asks the token endpoint for an access token.
  private func grantForm(issuedAt: Date) throws -> String {
    switch credentials {
    case .serviceAccount(let key):
      guard let assertion = GCSJWT.assertion(for: key, issuedAt: issuedAt) else {
        throw RemoteError.accessDenied(url: remote, hint: "could not sign a JWT with the private key of \(origin)")
      }
      return "grant_type=" + GCSURL.encode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion="
        + GCSURL.encode(assertion)
    case .authorizedUser(let user):
      return "grant_type=refresh_token&client_id=" + GCSURL.encode(user.clientID) + "&client_secret="
        + GCSURL.encode(user.clientSecret) + "&refresh_token=" + GCSURL.encode(user.refreshToken)
    }
  }

  /// Trades the credentials for an access token and its lifetime in seconds.
  private func exchange(issuedAt: Date) throws -> (String, TimeInterval) {
    let form = try grantForm(issuedAt: issuedAt)
    let request = HTTPRequest(
      .post, url: credentials.tokenURI,
      headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
      body: .bytes(Array(form.utf8)), timeouts: HTTPTimeouts(connect: 30, total: 120))
    let endpoint = HTTPURL.redacted(credentials.tokenURI)
    let sink = MemorySink(limit: 1 << 20)
    let response: HTTPResponse
    do {
      response = try retry.run { _ in try transport.send(request, into: sink, progress: nil) }
    } catch {
      throw RemoteError.transport(url: remote, message: "getting an access token from \(endpoint): \(error)")
    }
    guard response.isSuccess else {
      let reason = Self.oauthError(response.errorBody) ?? response.statusText
      if (400..<500).contains(response.status) {
        let advice: String
        switch credentials {
        case .serviceAccount:
          advice = "check that the key and its service account still exist and that this machine's clock is right"
        case .authorizedUser: advice = "run 'gcloud auth application-default login' again"
        }
        throw RemoteError.accessDenied(url: remote, hint: "\(endpoint) refused \(origin) (\(reason)); \(advice)")
      }
      throw RemoteError.server(
        url: remote, status: response.status, message: "getting an access token from \(endpoint): \(reason)")
    }
    guard let object = try? JSONSerialization.jsonObject(with: Data(sink.bytes)) as? [String: Any],
      let token = object["access_token"] as? String, !token.isEmpty
    else {
      throw RemoteError.server(
        url: remote, status: response.status, message: "\(endpoint) answered without an access_token")
    }
    let lifetime = (object["expires_in"] as? NSNumber)?.doubleValue ?? Double(object["expires_in"] as? String ?? "")
    return (token, max(1, lifetime ?? 3600))
  }

  /// "invalid_grant: Invalid JWT Signature." from an OAuth2 error body (RFC 6749 §5.2).
  static func oauthError(_ body: [UInt8]) -> String? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
      let code = object["error"] as? String
    else { return nil }
    let description = (object["error_description"] as? String).map { ": " + GCSURL.oneLine($0) } ?? ""
    return GCSURL.oneLine(code) + description
  }
}

/// Text helpers of the GCS remote.
enum GCSURL {
  private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

  /// Percent-encodes everything but RFC 3986's unreserved characters: object names in paths
  /// (where `/` must become `%2F`) and query or form values.
  static func encode(_ text: String) -> String {
    var encoded = ""
    for byte in text.utf8 {
      if unreserved.contains(byte) {
        encoded.unicodeScalars.append(Unicode.Scalar(byte))
      } else {
        encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
      }
    }
    return encoded
  }

  /// Text on one line with runs of white space collapsed, for messages quoting a server.
  static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: { $0.isWhitespace || $0.isNewline }).joined(separator: " ")
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
