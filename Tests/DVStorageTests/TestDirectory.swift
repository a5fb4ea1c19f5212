import DVBasics
import Foundation
import XCTest

/// A fresh directory under the system temp dir, removed by `tearDown`.
class StorageTestCase: XCTestCase {
  var dir: String!

  override func setUpWithError() throws {
    dir = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-storage-\(UUID().uuidString)"
    try FileSystem.createDirectory(dir)
  }

  override func tearDownWithError() throws {
    FailPoint.arm(nil)
    try? FileSystem.removeTree(dir)
  }

  /// Writes a file (creating parents) and backdates it so the stat cache treats it as settled.
  @discardableResult
  func write(_ relative: String, _ content: String, backdate: Bool = true) throws -> String {
    let path = dir + "/" + relative
    try FileSystem.createDirectory((path as NSString).deletingLastPathComponent)
    try FileManager.default.removeItemIfPresent(atPath: path)
    try Data(content.utf8).write(to: URL(fileURLWithPath: path))
    if backdate { try backdateFile(path, seconds: 10) }
    return path
  }

  func backdateFile(_ path: String, seconds: Double) throws {
    let date = Date().addingTimeInterval(-seconds)
    try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: path)
  }
}

extension FileManager {
  func removeItemIfPresent(atPath path: String) throws {
    if fileExists(atPath: path) { try removeItem(atPath: path) }
  }
}
