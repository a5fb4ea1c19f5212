import DVBasics
import Foundation
import XCTest

@testable import DVRemotes

/// The S3 remote through `Tests/Support/fault-proxy` in front of moto_server: dropped
/// connections, 500s, 503 SlowDown, delays and cut-short downloads on a share of requests, and
/// still every upload lands and every download comes back byte for byte.
final class S3RemoteFaultTests: XCTestCase {
  var proxy: Process?
  var proxyURL = ""
  var scratch = ""
  var options: [String: String] = [:]
  var bucket = ""

  override func setUpWithError() throws {
    let environment = ProcessInfo.processInfo.environment
    guard let endpoint = environment["DV_TEST_S3_ENDPOINT"], let bucket = environment["DV_TEST_S3_BUCKET"],
      let accessKeyID = environment["DV_TEST_S3_ACCESS_KEY_ID"],
      let secret = environment["DV_TEST_S3_SECRET_ACCESS_KEY"]
    else {
      throw XCTSkip("no S3 test server: run scripts/test, which starts moto_server and sets DV_TEST_S3_ENDPOINT")
    }
    self.bucket = bucket
    scratch = NSTemporaryDirectory() + "dv-s3fault-\(UUID().uuidString)"
    try FileSystem.createDirectory(scratch)
    proxyURL = try startProxy(
      target: endpoint,
      faults: [
        "--drop", "0.08", "--error500", "0.08", "--slowdown", "0.08", "--delay", "0.04", "--delay-seconds", "0.2",
        "--truncate", "0.15",
      ])
    options = ["endpoint": proxyURL, "access_key_id": accessKeyID, "secret_access_key": secret]
  }

  override func tearDownWithError() throws {
    if let proxy, proxy.isRunning {
      proxy.terminate()
      proxy.waitUntilExit()
    }
    if !scratch.isEmpty { try? FileSystem.removeTree(scratch) }
  }

  /// Starts the proxy on a free port and waits (bounded) until it says which.
  func startProxy(target: String, faults: [String]) throws -> String {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Support/fault-proxy").path
    let portFile = scratch + "/proxy.port"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, "--target", target, "--port-file", portFile, "--seed", "7"] + faults
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    proxy = process
    for _ in 0..<200 {
      if let text = try FileSystem.readTextIfPresent(portFile),
        let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
      {
        return "http://127.0.0.1:\(port)"
      }
      guard process.isRunning else { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    throw XCTSkip("the fault proxy did not start (is python3 installed?)")
  }

  func stats() throws -> [String: Int] {
    let (_, body) = try CurlTransport.shared.data(HTTPRequest(url: proxyURL + "/__fault-proxy/stats"))
    return try JSONDecoder().decode([String: Int].self, from: Data(body))
  }

  func testRangedReadsReturnTheExactBytesThroughFaults() throws {
    let remote = try S3Remote(
      settings: RemoteSettings(name: "storage", url: "s3://\(bucket)/faults/\(UUID().uuidString)", options: options),
      environment: [:], transport: CurlTransport.shared, retryPolicy: RetryPolicy(retries: 6, baseDelay: 0.01))
    let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 197 &+ $0 >> 13) }
    let path = scratch + "/packed"
    try FileSystem.writeAtomically(bytes, to: path)
    try remote.upload(from: path, size: Int64(bytes.count), sha256: S3Crypto.sha256(bytes), to: "packs/p") { _ in }
    let ranges: [Range<Int64>] = (0..<24).map { index in
      let start = Int64(index) * 120_000
      return start..<start + 65_536 + Int64(index) * 4_099
    }
    // One at a time: the proxy lets a retry of a faulted request through, which concurrent
    // requests for the same object could take in its place.
    for range in ranges {
      let sink = CollectingObjectSink()
      try remote.read("packs/p", range: range, into: sink) { _ in }
      XCTAssertTrue(
        sink.slice(range) == Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]), "\(range) differs")
    }
    XCTAssertGreaterThan(try stats()["truncate"] ?? 0, 0, "some reads were cut short and retried")
  }

  func testUploadsAndDownloadsFinishThroughFaults() throws {
    let remote = try S3Remote(
      settings: RemoteSettings(name: "storage", url: "s3://\(bucket)/faults/\(UUID().uuidString)", options: options),
      environment: [:], transport: CurlTransport.shared, retryPolicy: RetryPolicy(retries: 4, baseDelay: 0.01),
      multipartThreshold: 6 << 20, partSize: 5 << 20)
    var objects: [(key: String, bytes: [UInt8])] = (0..<40).map { index in
      let bytes = (0..<(1000 + index * 997)).map { UInt8(truncatingIfNeeded: $0 &* (index + 3)) }
      return (String(format: "files/sha256/%02x/object", index), bytes)
    }
    // Above the (lowered) multipart threshold: three parts through the same faults.
    objects.append(("files/sha256/ff/large", (0..<(12 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) }))

    try parallelForEach(objects.count, workers: 4) { index in
      let (key, bytes) = objects[index]
      let path = scratch + "/up-\(index)"
      try FileSystem.writeAtomically(bytes, to: path)
      try remote.upload(from: path, size: Int64(bytes.count), sha256: S3Crypto.sha256(bytes), to: key) { _ in }
    }
    var listed: [String: Int64] = [:]
    try remote.list(prefix: "files/") { key, size in
      listed[key] = size
      return true
    }
    XCTAssertEqual(listed.count, objects.count)
    try parallelForEach(objects.count, workers: 4) { index in
      let (key, bytes) = objects[index]
      XCTAssertTrue(try remote.exists(key))
      let path = scratch + "/down-\(index)"
      try remote.download(key, to: path) { _ in }
      let downloaded = try FileSystem.readFileIfPresent(path) ?? []
      XCTAssertEqual(downloaded.count, bytes.count, key)
      XCTAssertTrue(downloaded == bytes, "\(key) differs after download")
    }
    let counts = try stats()
    let injected = ["drop", "error500", "slowdown", "delay", "truncate"].reduce(0) { $0 + (counts[$1] ?? 0) }
    XCTAssertGreaterThan(injected, 10, "faults were injected: \(counts)")
    XCTAssertGreaterThan(counts["truncate"] ?? 0, 0, "\(counts)")
  }
}
