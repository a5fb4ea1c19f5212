import DVBasics
import DVPipeline
import Foundation
import XCTest

@testable import DVPlugins

/// A temporary directory per test, and helpers to write and read table files in it.
class TableTestCase: XCTestCase {
  var directory: String!
  /// The log lines of the stages run by `runStage`.
  let logged = Locked<[String]>([])

  override func setUpWithError() throws {
    directory = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-tables-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory)
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeTree(directory)
  }

  /// Writes `text` to a file in the test directory (gzip-compressed when the name ends in .gz).
  @discardableResult
  func file(_ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    if name.hasSuffix(".gz") {
      let plain = path + ".plain"
      try Data(text.utf8).write(to: URL(fileURLWithPath: plain))
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c", "gzip -c '\(plain)' > '\(path)' && rm '\(plain)'"]
      try process.run()
      process.waitUntilExit()
      XCTAssertEqual(process.terminationStatus, 0)
    } else {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
    return path
  }

  /// Every record of a table as field strings ("<missing>", "<null>" for those kinds).
  func rows(_ path: String) throws -> (columns: [String], rows: [[String]]) {
    let reader = try TableReader(path: path, displayName: (path as NSString).lastPathComponent)
    var result: [[String]] = []
    while try reader.next() {
      result.append(
        (0..<reader.columns.count).map { column in
          let field = reader.field(column)
          switch field.kind {
          case .missing: return "<missing>"
          case .null: return "<null>"
          default: return field.string
          }
        })
    }
    // JSONL columns grow while reading: earlier rows lack the later keys.
    let width = reader.columns.count
    return (reader.columns, result.map { $0 + Array(repeating: "<missing>", count: width - $0.count) })
  }

  /// The message of the TableError thrown by reading all of `path`.
  func readError(_ path: String) -> String? {
    do {
      let reader = try TableReader(path: path, displayName: (path as NSString).lastPathComponent)
      while try reader.next() {}
      return nil
    } catch {
      return "\(error)"
    }
  }

  /// Uncompressed bytes of a file (through gzip -dc for .gz).
  func contents(_ path: String) throws -> String {
    if path.hasSuffix(".gz") {
      let process = Process()
      let pipe = Pipe()
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c", "gzip -dc '\(path)'"]
      process.standardOutput = pipe
      try process.run()
      let data = pipe.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      return String(decoding: data, as: UTF8.self)
    }
    return try String(contentsOfFile: path, encoding: .utf8)
  }
}

extension TableTestCase {
  /// Loads `stages.yaml` text from the test directory (the workspace) and returns one stage's
  /// plugin and configuration, validated as `dv repro` would.
  func stage(_ yaml: String, _ name: String) throws -> (any StagePlugin, StageContext) {
    try FileSystem.createDirectory(directory + "/.pipeline")
    try Data(yaml.utf8).write(to: URL(fileURLWithPath: directory + "/stages.yaml"))
    let pipeline = try XCTUnwrap(try PipelineLoader(workspaceRoot: directory).load())
    let stage = try XCTUnwrap(pipeline.stages.first { $0.name == name })
    let (plugin, config) = try BuiltInPlugins.registry(searchPath: []).resolve(stage)
    try plugin.validate(config: config)
    let logged = self.logged
    return (
      plugin,
      StageContext(
        stage: stage, config: config, workspaceRoot: directory, output: { line in logged.withLock { $0.append(line) } })
    )
  }

  /// Runs one stage of `yaml`; its failure message, or nil when it succeeded.
  func runStage(_ yaml: String, _ name: String) async throws -> String? {
    let (plugin, context) = try stage(yaml, name)
    do {
      try await plugin.run(context)
      return nil
    } catch let error as StageRunError {
      return error.description
    }
  }

  /// The message of the configuration error of one stage, or nil.
  func configurationError(_ yaml: String, _ name: String) -> String? {
    do {
      _ = try stage(yaml, name)
      return nil
    } catch {
      return "\(error)"
    }
  }

  /// A JSON file of the test directory, parsed.
  func json(_ relative: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + relative))
    return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }
}
