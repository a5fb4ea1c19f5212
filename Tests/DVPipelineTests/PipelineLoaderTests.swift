import DVBasics
import Foundation
import XCTest

@testable import DVPipeline

final class PipelineLoaderTests: XCTestCase {
  var root: String!

  override func setUpWithError() throws {
    root = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-pipeline-\(UUID().uuidString)"
    try FileSystem.createDirectory(root + "/src")
    try FileSystem.writeAtomically("print(1)\n", to: root + "/src/prepare.py")
    try FileSystem.writeAtomically("prepare:\n  seed: 1\nsizes: [small, large]\nlr: 0.1\n", to: root + "/params.yaml")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(root) }

  func load(_ stages: String) throws -> Pipeline {
    try FileSystem.writeAtomically(stages, to: root + "/stages.yaml")
    return try XCTUnwrap(try PipelineLoader(workspaceRoot: root).load())
  }

  /// The error message for a stages.yaml, which must be a bad-input error.
  func error(_ stages: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    do {
      try FileSystem.writeAtomically(stages, to: root + "/stages.yaml")
      _ = try PipelineLoader(workspaceRoot: root).load()
      XCTFail("accepted", file: file, line: line)
      return ""
    } catch {
      XCTAssertEqual((error as? DVError)?.kind, .badInput, "\(error)", file: file, line: line)
      return "\(error)"
    }
  }

  func testInterpolationForeachMatrixAndTheGraph() throws {
    let pipeline = try load(
      """
      vars:
        - {suffix: csv}
      stages:
        prepare:
          cmd: python src/prepare.py --seed ${prepare.seed} --fmt ${suffix}
          deps: [src/prepare.py]
          params: [prepare.seed]
          outs: [data/prepared]
        train:
          foreach: ${sizes}
          do:
            cmd: train --size ${item} --lr ${lr}
            deps: [data/prepared/part]
            params: [lr]
            outs:
              - models/${item}.bin
        report:
          foreach: {fast: 1, slow: 2}
          do:
            cmd: report ${key} ${item}
            deps: [models]
            metrics:
              - reports/${key}.json
        grid:
          matrix: {a: [1, 2], b: [x]}
          cmd: echo ${item.a}${item.b}
          outs:
            - grid/${item.a}${item.b}
      """)
    XCTAssertEqual(
      pipeline.stages.map(\.name),
      ["prepare", "train@small", "train@large", "report@fast", "report@slow", "grid@1-x", "grid@2-x"])
    XCTAssertEqual(pipeline.stages[0].action, .command("python src/prepare.py --seed 1 --fmt csv"))
    XCTAssertEqual(pipeline.stages[2].action, .command("train --size large --lr 0.1"))
    XCTAssertEqual(pipeline.stages[2].outs.map(\.path.value), ["models/large.bin"])
    XCTAssertEqual(pipeline.stages[3].outs.first?.isMetric, true)
    XCTAssertEqual(pipeline.stages[3].outs.first?.cache, false, "metrics are not cached by default")
    XCTAssertEqual(pipeline.stages[6].action, .command("echo 2x"))
    // A dependency inside an output and an output inside a dependency both make edges.
    let predecessors = pipeline.graph.predecessors
    XCTAssertEqual(predecessors[1], [0])
    XCTAssertEqual(predecessors[3], [1, 2])
    XCTAssertEqual(pipeline.order.first, 0)
    XCTAssertTrue(pipeline.asciiGraph().contains("report@fast  <- train@small, train@large"))
    XCTAssertTrue(pipeline.dot().contains(#""prepare" -> "train@small";"#))
    XCTAssertTrue(pipeline.mermaid().contains("s0 --> s1"))
  }

  func testOutputOptionsWdirAndPlugins() throws {
    let pipeline = try load(
      """
      stages:
        a:
          wdir: sub
          plugin: validate
          with: {input: data.csv, schema: s.yaml}
          outs:
            - out.txt: {cache: false, persist: true}
            - {path: other.txt, persist: true}
          frozen: true
          always_changed: yes
      """)
    let stage = pipeline.stages[0]
    XCTAssertEqual(stage.outs.map(\.path.value), ["sub/out.txt", "sub/other.txt"])
    XCTAssertEqual(stage.outs.map(\.cache), [false, true])
    XCTAssertEqual(stage.outs.map(\.persist), [true, true])
    XCTAssertTrue(stage.frozen && stage.alwaysChanged)
    XCTAssertEqual(
      stage.action,
      .plugin(kind: "validate", with: .map([("input", .scalar("data.csv")), ("schema", .scalar("s.yaml"))])))
  }

  func testEveryRejectedInputNamesItsPlace() {
    XCTAssertTrue(error("stages:\n  a:\n    cmd: [x\n").hasPrefix("stages.yaml:4:1: invalid YAML"))
    XCTAssertTrue(error("stages:\n  a:\n    cmd: x\n    dpes: [y]\n").hasPrefix("stages.yaml:4:5: unknown key 'dpes'"))
    XCTAssertTrue(
      error("stages:\n  a:\n    desc: d\n").hasPrefix("stages.yaml:2:3: stage 'a' has neither 'cmd' nor 'plugin'"))
    XCTAssertTrue(error("stages:\n  a:\n    cmd: x\n    plugin: y\n").contains("has both"))
    XCTAssertTrue(error("stages:\n  a:\n    cmd: x ${nope}\n").hasPrefix("stages.yaml:3:10: undefined variable 'nope'"))
    XCTAssertTrue(
      error("stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n")
        .hasPrefix("stages.yaml:7:12: output 'o' is declared by both 'a' and 'b'"))
    XCTAssertTrue(
      error("stages:\n  a:\n    cmd: x\n    outs: [d]\n  b:\n    cmd: y\n    outs: [d/e]\n")
        .hasPrefix("stages.yaml:7:12: output 'd/e' of stage 'b' is inside output 'd' of stage 'a'"))
    XCTAssertTrue(
      error(
        "stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n"
      )
      .hasPrefix("stages.yaml:2:3: the stages form a cycle: a -> b -> a"))
    XCTAssertTrue(
      error("stages:\n  a:\n    cmd: x\n    outs: [/etc/x]\n").hasPrefix("stages.yaml:4:12: '/etc/x' is absolute"))
    XCTAssertTrue(
      error("stages:\n  a:\n    cmd: x\n    outs: [../x]\n").hasPrefix("stages.yaml:4:12: '../x' is absolute or leaves")
    )
    XCTAssertTrue(error("stages:\n  a:\n    cmd: x\n    params: [nope]\n").hasPrefix("stages.yaml:4:14: param 'nope'"))
    XCTAssertTrue(error("stage:\n  a: {}\n").hasPrefix("stages.yaml:1:1: unknown key 'stage'"))
    XCTAssertTrue(
      error("stages:\n  a:\n    foreach: 3\n    do: {cmd: x}\n").contains("'foreach' must be a list or a mapping"))
  }

  func testMissingDependenciesAreCheckedBeforeRunningNotWhenLoading() throws {
    let pipeline = try load("stages:\n  a:\n    cmd: x\n    deps: [missing.txt]\n")
    XCTAssertThrowsError(try pipeline.checkDependenciesExist(workspaceRoot: root)) { error in
      XCTAssertTrue("\(error)".hasPrefix("stages.yaml:4:12: dependency 'missing.txt' of stage 'a' does not exist"))
    }
    try FileSystem.writeAtomically("now it exists", to: root + "/missing.txt")
    XCTAssertNoThrow(try pipeline.checkDependenciesExist(workspaceRoot: root))
  }

  func testNoStagesFileIsNoPipeline() throws {
    XCTAssertNil(try PipelineLoader(workspaceRoot: root).load())
  }
}

final class PluginRegistryTests: XCTestCase {
  func testShellIsBuiltInAndUnknownKindsAreLocated() throws {
    XCTAssertEqual(PluginRegistry.builtIn.builtInPlugins.map(\.kind), ["shell"])
    let location = SourceLocation(file: "stages.yaml", line: 3, column: 3)
    XCTAssertThrowsError(try PluginRegistry.builtIn.plugin(kind: "teleport", at: location)) { error in
      XCTAssertEqual(
        "\(error)",
        "stages.yaml:3:3: unknown plugin 'teleport' (built in: shell; an external one is an executable named dv-plugin-teleport in .pipeline/plugins/ or on PATH)"
      )
    }
    let shell = try PluginRegistry.builtIn.plugin(kind: "shell", at: location)
    XCTAssertNoThrow(
      try shell.validate(config: PluginConfig(value: .map([("cmd", .scalar("true"))]), location: location)))
    XCTAssertThrowsError(
      try shell.validate(config: PluginConfig(value: .map([("command", .scalar("x"))]), location: location)))
  }
}
