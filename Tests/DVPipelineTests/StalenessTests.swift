import DVBasics
import DVStorage
import Foundation
import XCTest

@testable import DVPipeline

final class StalenessTests: XCTestCase {
  var root: String!

  override func setUpWithError() throws {
    root = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-stale-\(UUID().uuidString)"
    try FileSystem.createDirectory(root + "/.pipeline")
    try write("raw.csv", "a\n")
    try write("params.yaml", "seed: 1\nlr: 0.1\n")
    try write(
      "stages.yaml",
      """
      stages:
        prepare:
          cmd: prep --seed ${seed}
          deps: [raw.csv]
          params: [seed]
          outs: [prepared.csv]
        train:
          cmd: train --lr ${lr}
          deps: [prepared.csv]
          params: [lr]
          outs: [model.bin]
        report:
          cmd: report
          deps: [model.bin]
          outs: [report.txt]
          always_changed: true
        pinned:
          cmd: pinned
          deps: [raw.csv]
          outs: [pinned.txt]
          frozen: true
      """)
    try write("prepared.csv", "A\n")
    try write("model.bin", "M")
    try write("report.txt", "R")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(root) }

  func write(_ name: String, _ text: String) throws {
    try FileSystem.writeAtomically(text, to: root + "/" + name)
  }

  func builder() throws -> DataBuilder {
    DataBuilder(
      workspaceRoot: root, ignore: .none, state: try StateCache(path: root + "/.pipeline/state.db"),
      cache: ObjectCache(root: root + "/.pipeline/cache", tmp: root + "/.pipeline/tmp"), progress: SilentProgress())
  }

  /// A lock recording the workspace as it is now, as if every stage had just run.
  func recordEverything(_ pipeline: Pipeline) throws -> LockFile {
    let builder = try builder()
    var lock = LockFile()
    var params = ParamsReader(root: root)
    for stage in pipeline.stages {
      func entries(_ paths: [RelativePath]) throws -> [LockFile.Entry] {
        try paths.compactMap { path in
          try builder.build(path, mode: .inspect).map {
            LockFile.Entry(path: path, hash: $0.hash, size: $0.size, files: $0.files)
          }
        }
      }
      let values = try stage.params.map { ($0.key, try params.value(of: $0.key, in: $0.file)!) }
      lock.set(
        LockFile.StageRecord(
          cmd: try PluginRegistry.builtIn.fingerprint(stage), deps: try entries(stage.deps.map(\.path)),
          params: values.isEmpty ? [] : [("params.yaml", values)], outs: try entries(stage.outs.map(\.path))),
        for: stage.name)
    }
    return lock
  }

  func reasons(_ lock: LockFile) throws -> [String: [String]] {
    let pipeline = try XCTUnwrap(try PipelineLoader(workspaceRoot: root).load())
    let states = try StalenessChecker(pipeline: pipeline, lock: lock, builder: try builder(), registry: .builtIn)
      .check()
    return Dictionary(uniqueKeysWithValues: states.map { ($0.name, $0.reasons.map(\.description)) })
  }

  func testReasonsUsersCanActOn() throws {
    let pipeline = try XCTUnwrap(try PipelineLoader(workspaceRoot: root).load())
    XCTAssertEqual(try reasons(LockFile())["prepare"], ["never run"])
    let lock = try recordEverything(pipeline)
    XCTAssertEqual(
      try reasons(lock), ["prepare": [], "train": [], "report": ["always changed"], "pinned": []])

    try write("params.yaml", "seed: 2\nlr: 0.1\n")
    var now = try reasons(lock)
    // The command interpolates the param, so it changed too.
    XCTAssertEqual(now["prepare"], ["changed cmd", "changed params: seed 1 -> 2"])
    XCTAssertEqual(now["train"], ["upstream stage 'prepare' is stale"])
    XCTAssertEqual(now["pinned"], [], "frozen stages never run")

    try write("params.yaml", "seed: 1\nlr: 0.1\n")
    try write("raw.csv", "changed\n")
    try FileSystem.removeFile(root + "/model.bin")
    now = try reasons(lock)
    XCTAssertEqual(now["prepare"], ["changed deps: modified raw.csv"])
    XCTAssertEqual(now["train"], ["missing outs: model.bin", "upstream stage 'prepare' is stale"])
    XCTAssertEqual(
      now["report"], ["changed deps: deleted model.bin", "always changed", "upstream stage 'train' is stale"])

    try write(
      "stages.yaml",
      try String(contentsOfFile: root + "/stages.yaml", encoding: .utf8).replacingOccurrences(
        of: "cmd: report", with: "cmd: report --all"))
    XCTAssertTrue(try reasons(lock)["report"]!.contains("changed cmd"))
  }
}
