import COpenSSL
import DVBasics
import Foundation

/// The parts of a Google service-account key file (the JSON a console download gives) that the
/// OAuth2 JWT-bearer flow needs.
package struct GCSServiceAccountKey: Sendable {
  /// The service account's e-mail address: the JWT's issuer.
  package var clientEmail: String
  /// The PKCS#8 (or PKCS#1) DER bytes of the RSA private key.
  package var privateKeyDER: [UInt8]
  /// Where the signed JWT is exchanged for an access token (the audience of the JWT).
  package var tokenURI: String
  /// The file it was read from, for messages.
  package var path: String

  /// Reads a service-account key file; throws a `GCSKeyFileProblem` when it is not usable.
  package static func load(path: String) throws -> GCSServiceAccountKey {
    guard case .serviceAccount(let key) = try GCSCredentialFile.load(path: path) else {
      throw GCSKeyFileProblem.malformed("it is not a service-account key")
    }
    return key
  }

  /// The key in the JSON object of a `service_account` file.
  package static func parse(_ json: [String: Any], path: String) throws -> GCSServiceAccountKey {
    let email = try GCSCredentialFile.field("client_email", of: json)
    let pem = try GCSCredentialFile.field("private_key", of: json)
    let tokenURI = try GCSCredentialFile.tokenURI(of: json)
    guard let der = RSASigner.derFromPEM(pem) else {
      throw GCSKeyFileProblem.malformed("\"private_key\" is not a PEM private key")
    }
    guard RSASigner(der: der) != nil else {
      throw GCSKeyFileProblem.malformed("\"private_key\" is not a usable RSA private key")
    }
    return GCSServiceAccountKey(clientEmail: email, privateKeyDER: der, tokenURI: tokenURI, path: path)
  }
}

/// A user's OAuth2 refresh token, as `gcloud auth application-default login` stores it (type
/// `authorized_user`).
package struct GCSAuthorizedUser: Sendable {
  package var clientID: String
  package var clientSecret: String
  package var refreshToken: String
  /// Where the refresh token is exchanged for an access token.
  package var tokenURI: String
  /// The file it was read from, for messages.
  package var path: String

  /// The user's credentials in the JSON object of an `authorized_user` file.
  package static func parse(_ json: [String: Any], path: String) throws -> GCSAuthorizedUser {
    GCSAuthorizedUser(
      clientID: try GCSCredentialFile.field("client_id", of: json),
      clientSecret: try GCSCredentialFile.field("client_secret", of: json),
      refreshToken: try GCSCredentialFile.field("refresh_token", of: json),
      tokenURI: try GCSCredentialFile.tokenURI(of: json), path: path)
  }
}

/// A credentials file as Google's tools write them: what `GOOGLE_APPLICATION_CREDENTIALS`, the
/// `credentialpath` setting and gcloud's application-default file hold.
package enum GCSCredentialFile: Sendable {
  /// A service account's key (JWT bearer grant).
  case serviceAccount(GCSServiceAccountKey)
  /// A user's refresh token (refresh-token grant).
  case authorizedUser(GCSAuthorizedUser)

  /// Reads and parses a credentials file; throws a `GCSKeyFileProblem` when it is not usable.
  package static func load(path: String) throws -> GCSCredentialFile {
    let bytes: [UInt8]?
    do { bytes = try FileSystem.readFileIfPresent(path) } catch { throw GCSKeyFileProblem.unreadable("\(error)") }
    guard let bytes else { throw GCSKeyFileProblem.unreadable("it does not exist") }
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let json = object as? [String: Any]
    else { throw GCSKeyFileProblem.malformed("it is not a JSON object") }
    switch json["type"] as? String ?? "" {
    case "service_account": return .serviceAccount(try GCSServiceAccountKey.parse(json, path: path))
    case "authorized_user": return .authorizedUser(try GCSAuthorizedUser.parse(json, path: path))
    case "": throw GCSKeyFileProblem.malformed("it has no \"type\"; expected a service-account key file")
    case let type:
      throw GCSKeyFileProblem.malformed(
        "its type is '\(type)'; dv takes 'service_account' key files (and 'authorized_user' files from gcloud)")
    }
  }

  /// The token endpoint, `token_uri` or Google's.
  package var tokenURI: String {
    switch self {
    case .serviceAccount(let key): return key.tokenURI
    case .authorizedUser(let user): return user.tokenURI
    }
  }

  static func field(_ name: String, of json: [String: Any]) throws -> String {
    guard let value = json[name] as? String, !value.isEmpty else {
      throw GCSKeyFileProblem.malformed("\"\(name)\" is missing")
    }
    return value
  }

  static func tokenURI(of json: [String: Any]) throws -> String {
    let tokenURI = json["token_uri"] as? String ?? "https://oauth2.googleapis.com/token"
    guard tokenURI.hasPrefix("https://") || tokenURI.hasPrefix("http://") else {
      throw GCSKeyFileProblem.malformed("\"token_uri\" is not an http(s) URL")
    }
    return tokenURI
  }
}

/// Why a credentials file cannot be used.
package enum GCSKeyFileProblem: Error, Sendable, CustomStringConvertible {
  /// The file could not be read.
  case unreadable(String)
  /// The file was read but holds no usable credentials.
  case malformed(String)

  package var description: String {
    switch self {
    case .unreadable(let reason): return "cannot be read (\(reason))"
    case .malformed(let reason): return "is not a usable credentials file: \(reason)"
    }
  }
}

/// An RSA private key that signs with RSASSA-PKCS1-v1_5 over SHA-256 (JWS "RS256").
package final class RSASigner {
  private let key: OpaquePointer

  /// Loads DER bytes (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`); nil when they are not an
  /// RSA private key.
  package init?(der: [UInt8]) {
    let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
      var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
      return d2i_AutoPrivateKey(nil, &cursor, buffer.count)
    }
    guard let parsed else { return nil }
    guard EVP_PKEY_get_base_id(parsed) == EVP_PKEY_RSA else {
      EVP_PKEY_free(parsed)
      return nil
    }
    key = parsed
  }

  deinit { EVP_PKEY_free(key) }

  /// The DER bytes inside a PEM block ("-----BEGIN PRIVATE KEY-----"); nil when there is none.
  package static func derFromPEM(_ pem: String) -> [UInt8]? {
    var body = ""
    var inside = false
    for line in pem.split(whereSeparator: \.isNewline) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.hasPrefix("-----BEGIN ") {
        inside = true
      } else if trimmed.hasPrefix("-----END ") {
        break
      } else if inside {
        body += trimmed
      }
    }
    guard inside, !body.isEmpty, let data = Data(base64Encoded: body) else { return nil }
    return [UInt8](data)
  }

  /// The RS256 signature of `message`.
  package func sign(_ message: [UInt8]) -> [UInt8]? {
    guard let context = EVP_MD_CTX_new() else { return nil }
    defer { EVP_MD_CTX_free(context) }
    guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, key) == 1 else { return nil }
    var length = Int(EVP_PKEY_get_size(key))
    var signature = [UInt8](repeating: 0, count: length)
    let status = message.withUnsafeBufferPointer { input in
      EVP_DigestSign(context, &signature, &length, input.baseAddress, input.count)
    }
    guard status == 1 else { return nil }
    return Array(signature.prefix(length))
  }
}

/// JSON Web Tokens as Google's OAuth2 server takes them (RFC 7519, signed per RFC 7515).
package enum GCSJWT {
  /// The scope dv asks for: objects may be read, written and deleted.
  package static let scope = "https://www.googleapis.com/auth/devstorage.read_write"
  /// How long an assertion is valid; Google accepts at most one hour.
  package static let lifetime: TimeInterval = 3600

  /// The signed assertion `header.claims.signature` for `key`, issued at `issuedAt`.
  package static func assertion(for key: GCSServiceAccountKey, issuedAt: Date) -> String? {
    let iat = Int(issuedAt.timeIntervalSince1970)
    let header: [String: Any] = ["alg": "RS256", "typ": "JWT"]
    let claims: [String: Any] = [
      "iss": key.clientEmail, "scope": scope, "aud": key.tokenURI, "iat": iat, "exp": iat + Int(lifetime),
    ]
    guard let headerJSON = json(header), let claimsJSON = json(claims), let signer = RSASigner(der: key.privateKeyDER)
    else { return nil }
    let signingInput = base64URL(headerJSON) + "." + base64URL(claimsJSON)
    guard let signature = signer.sign(Array(signingInput.utf8)) else { return nil }
    return signingInput + "." + base64URL(signature)
  }

  /// Base64url without padding (RFC 7515 §2).
  package static func base64URL(_ bytes: [UInt8]) -> String {
    var text = Data(bytes).base64EncodedString()
    while text.hasSuffix("=") { text.removeLast() }
    return String(
      text.map { character -> Character in
        switch character {
        case "+": return "-"
        case "/": return "_"
        default: return character
        }
      })
  }

  /// The bytes of base64url text (padding optional); nil when it is not base64url.
  package static func decodeBase64URL(_ text: String) -> [UInt8]? {
    var standard = String(
      text.map { character -> Character in
        switch character {
        case "-": return "+"
        case "_": return "/"
        default: return character
        }
      })
    while standard.count % 4 != 0 { standard += "=" }
    return Data(base64Encoded: standard).map { [UInt8]($0) }
  }

  private static func json(_ object: [String: Any]) -> [UInt8]? {
    guard
      let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return nil }
    return [UInt8](data)
  }
}
