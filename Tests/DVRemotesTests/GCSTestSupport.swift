import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// A transport that answers each request with a closure's response and records the requests;
/// a successful response's body goes to the sink as a real transport's would.
final class GCSHandlerTransport: HTTPTransport, @unchecked Sendable {
  typealias Handler = @Sendable (HTTPRequest) throws -> (status: Int, headers: HTTPHeaders, body: [UInt8])

  private let handler: Handler
  let requests = Locked<[HTTPRequest]>([])

  init(_ handler: @escaping Handler) { self.handler = handler }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    requests.withLock { $0.append(request) }
    let (status, headers, body) = try handler(request)
    let response = HTTPResponse(status: status, headers: headers, errorBody: status < 300 ? [] : body)
    if response.isSuccess {
      try sink?.begin(response)
      try body.withUnsafeBytes { try sink?.write($0) }
    }
    return response
  }

  /// The requests whose URL starts with `prefix`.
  func requests(to prefix: String) -> [HTTPRequest] { requests.withLock { $0.filter { $0.url.hasPrefix(prefix) } } }
}

/// A transport that passes requests on to another one and lets a test drop some of them: before
/// they are sent, or after the server has received them (the response is lost).
final class GCSFaultyTransport: HTTPTransport, @unchecked Sendable {
  enum Fault {
    case dropBeforeSending
    case dropResponse
  }

  private let inner: HTTPTransport
  /// Decides, for the n-th request (from 1), whether and how it fails.
  private let fault: @Sendable (_ number: Int, _ request: HTTPRequest) -> Fault?
  private let count = Locked(0)
  let requests = Locked<[HTTPRequest]>([])

  init(_ inner: HTTPTransport, fault: @escaping @Sendable (Int, HTTPRequest) -> Fault?) {
    self.inner = inner
    self.fault = fault
  }

  func send(_ request: HTTPRequest, into sink: HTTPResponseSink?, progress: HTTPProgressHandler?) throws
    -> HTTPResponse
  {
    let number = count.withLock { n -> Int in
      n += 1
      return n
    }
    requests.withLock { $0.append(request) }
    switch fault(number, request) {
    case .dropBeforeSending?:
      throw HTTPError.connectionLost(url: HTTPURL.redacted(request.url), detail: "dropped by the test")
    case .dropResponse?:
      _ = try inner.send(request, into: sink, progress: progress)
      throw HTTPError.connectionLost(url: HTTPURL.redacted(request.url), detail: "response dropped by the test")
    case nil:
      return try inner.send(request, into: sink, progress: progress)
    }
  }
}

/// Helpers shared by the GCS tests: temporary directories, RSA keys made with the `openssl` tool,
/// service-account key files.
enum GCSTestSupport {
  /// A retry policy that does not sleep.
  static let quickRetry = RetryPolicy(retries: 3, baseDelay: 0, maxDelay: 0, sleep: { _ in })

  /// A new empty directory under the system's temporary directory.
  static func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "dv-gcs-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// Runs a tool and returns its exit status and standard output.
  @discardableResult
  static func run(_ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  /// Generates a 2048-bit RSA key pair with `openssl`; returns the paths of the private key
  /// (PKCS#8 PEM, as service-account files hold it) and of the public key.
  static func makeRSAKeyPair(in directory: String) throws -> (privateKey: String, publicKey: String) {
    let privateKey = directory + "/key.pem"
    let publicKey = directory + "/public.pem"
    let generated = try run(
      ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", privateKey])
    XCTAssertEqual(generated.status, 0, generated.output)
    let extracted = try run(["openssl", "pkey", "-in", privateKey, "-pubout", "-out", publicKey])
    XCTAssertEqual(extracted.status, 0, extracted.output)
    return (privateKey, publicKey)
  }

  /// Writes a service-account key file for `email` with the private key at `keyPath`; returns
  /// its path.
  static func writeServiceAccountFile(
    in directory: String, keyPath: String, email: String = "dv-test@dv-project.iam.gserviceaccount.com",
    tokenURI: String = "https://oauth2.example.test/token"
  ) throws -> String {
    let pem = try String(contentsOfFile: keyPath, encoding: .utf8)
    let json: [String: Any] = [
      "type": "service_account", "project_id": "dv-project", "private_key_id": "0123abcd", "private_key": pem,
      "client_email": email, "client_id": "1234567890", "token_uri": tokenURI,
    ]
    let path = directory + "/service-account.json"
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// A file of `size` pseudo-random bytes (a fixed seed, so failures repeat).
  static func writeRandomFile(_ path: String, size: Int, seed: UInt64 = 42) throws {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: size)
    var index = 0
    while index < size {
      // xorshift64*: fast, and enough to make every chunk different.
      state ^= state >> 12
      state ^= state << 25
      state ^= state >> 27
      var word = state &* 2_685_821_657_736_338_717
      for _ in 0..<8 where index < size {
        bytes[index] = UInt8(truncatingIfNeeded: word)
        word >>= 8
        index += 1
      }
    }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
  }
}
