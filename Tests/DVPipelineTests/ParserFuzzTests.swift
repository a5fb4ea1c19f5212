import DVBasics
import DVStorage
import Foundation
import FuzzSupport
import XCTest

@testable import DVPipeline

/// The bad-input suite for the pipeline's files: mutated stages.yaml, params files and
/// stages.lock, parsed in-process. Every case ends with a value whose paths stay inside the
/// workspace, or a bad-input error naming file:line:column — never a trap or a hang.
final class ParserFuzzTests: XCTestCase {
  var root: String!
  var outside: String!

  override func setUpWithError() throws {
    root = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-parser-fuzz-\(UUID().uuidString)"
    outside = root + "-outside"
    try FileSystem.createDirectory(root + "/src")
    try FileSystem.createDirectory(root + "/data/raw")
    try FileSystem.createDirectory(root + "/dir.yaml")
    try FileSystem.createDirectory(outside)
    try FileSystem.writeAtomically("x\n", to: outside + "/secret.yaml")
    try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: outside)
    try FileSystem.writeAtomically("print(1)\n", to: root + "/src/prepare.py")
    try FileSystem.writeAtomically(Self.params, to: root + "/params.yaml")
    try FileSystem.writeAtomically("extra:\n  n: 3\n  names: [a, b]\n", to: root + "/other.yaml")
  }

  override func tearDownWithError() throws {
    try? FileSystem.removeTree(root)
    try? FileSystem.removeTree(outside)
  }

  static let params = """
    prepare:
      seed: 42
      ratio: 0.5
    sizes: [small, large]
    models:
      small: {layers: 2}
      large: {layers: 8}
    split:
      ratios: {train: 0.8, val: 0.1, test: 0.1}
      stratify: complexity
    lr: 0.1

    """

  static let stages = """
    vars:
      - other.yaml
      - {suffix: csv, nested: {deep: [1, 2]}}
    stages:
      prepare:
        cmd: python src/prepare.py --seed ${prepare.seed} --fmt ${suffix} --n ${extra.n}
        deps: [src/prepare.py, data/raw]
        params: [prepare.seed, {other.yaml: [extra.n]}]
        outs: [data/prepared]
        desc: Prepare the data
      validate:
        plugin: validate
        with: {input: data/prepared/train.csv, schema: schemas/train.yaml, on_error: warn}
        deps: [data/prepared]
        outs: [reports/validation.json]
      train:
        foreach: ${sizes}
        do:
          cmd: train --size ${item} --lr ${lr}
          deps: [data/prepared]
          params: [lr]
          outs:
            - models/${item}.bin
            - path: logs/${item}.log
              cache: false
              persist: true
      grid:
        matrix:
          model: [small, large]
          seed: [1, 2]
        cmd: fit ${item.model} ${item.seed}
        outs:
          - grid/${item.model}-${item.seed}
      report:
        foreach: {fast: 1, slow: 2}
        do:
          cmd: report ${key} ${item}
          deps: [models]
          metrics:
            - metrics/${key}.json
      frozen:
        cmd: [echo a, echo b]
        frozen: true
        always_changed: yes
        wdir: src
        outs: [{../out/frozen.txt: {cache: false}}]
        meta: {owner: me}

    """

  static let lock = """
    version: 1
    stages:
      prepare:
        cmd: python src/prepare.py --seed 42
        source: etag-1
        deps:
        - {path: src/prepare.py, hash: sha256:\(Mutator.someHash), size: 812}
        params:
          params.yaml:
            prepare.seed: 42
            split.ratios: {train: 0.8, val: 0.1, test: 0.1}
        outs:
        - {path: data/prepared, hash: sha256:\(Mutator.someHash), size: 5120, files: 3}
      "odd name":
        cmd: "plugin validate@1 sha256:\(Mutator.someHash)"
        deps:
          - path: data/prepared
            hash: sha256:\(Mutator.someHash)
            size: 1
            files: 0
        outs: []

    """

  /// The repository's own example pipeline and lock, when the checkout has them.
  static func repositoryFile(_ name: String) -> String? {
    let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try? FileSystem.readTextIfPresent(package.appendingPathComponent(name).path)
  }

  static let vocabulary = [
    "${item}", "${key}", "${sizes}", "${models}", "${models.small}", "${prepare}", "${split.ratios}", "${nope}",
    "${sizes[5]}", "${item.model}", "other.yaml", "dir.yaml", "link/secret.yaml", "params.yaml", "validate",
    "dedup", "split", "shell", "data/prepared", "data/prepared/x", "models", ".pipeline/x", "link/out",
    "sha256:" + Mutator.someHash, "{cache: maybe}", "{path: x, cache: false}", "[data/prepared, data/prepared]",
    "prepare", "train@small", "foreach", "matrix", "do",
  ]

  // MARK: - Checks

  /// A rejected input must be a bad-input error that names file:line:column.
  static func problem(with error: Error) -> String? {
    guard let error = error as? DVError else { return "not a DVError: \(type(of: error)): \(error)" }
    guard error.kind == .badInput else { return "exit \(error.kind.exitCode), not 2: \(error)" }
    let text = error.description
    if error is FileFormatError, text.range(of: #"^[^\n]*:[0-9]+:[0-9]+: "#, options: .regularExpression) == nil {
      return "no file:line:column: \(text)"
    }
    return nil
  }

  /// Paths a parsed file hands on must stay inside the workspace.
  static func problem(with path: RelativePath, _ what: String) -> String? {
    let value = path.value
    if value.hasPrefix("/") || value.isEmpty || value.utf8.contains(0)
      || value.split(separator: "/", omittingEmptySubsequences: false).contains(where: {
        $0 == ".." || $0 == "." || $0.isEmpty
      })
    {
      return "\(what) '\(Fuzz.show(value))' is not a clean workspace path"
    }
    return nil
  }

  static func problems(with pipeline: Pipeline) -> [String] {
    var found: [String] = []
    for stage in pipeline.stages {
      for dep in stage.deps { found += [problem(with: dep.path, "dep")].compactMap { $0 } }
      for out in stage.outs {
        found += [problem(with: out.path, "out")].compactMap { $0 }
        if out.path.isInside(RelativePath(validating: ".pipeline")!) || out.path == .root {
          found.append("out '\(out.path)' is dv's own")
        }
      }
      for param in stage.params { found += [problem(with: param.file, "params file")].compactMap { $0 } }
      if stage.wdir != .root { found += [problem(with: stage.wdir, "wdir")].compactMap { $0 } }
    }
    if pipeline.order.sorted() != Array(pipeline.stages.indices) { found.append("order is not a permutation") }
    return found
  }

  func assertNoFailures(_ failures: [FuzzRunner.Failure], kind: String, runner: FuzzRunner) {
    print("fuzz \(kind): \(runner.count) cases, seed \(Fuzz.seed), \(failures.count) failures")
    for failure in failures.prefix(5) { XCTFail(failure.description) }
  }

  // MARK: - stages.yaml

  func testMutatedStagesFiles() throws {
    let seeds = [Self.stages, Self.repositoryFile("stages.yaml")].compactMap { $0 }
    let kind = "stages.yaml"
    let root = self.root!
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(1_500)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .yaml, vocabulary: Self.vocabulary)
      let seed = mutator.rng.pick(seeds)
      let (bytes, applied) = mutator.mutate(Array(seed.utf8))
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      let text = String(decoding: bytes, as: UTF8.self)
      do {
        let pipeline = try PipelineLoader(workspaceRoot: root).load(text: text)
        for problem in Self.problems(with: pipeline) { runner.fail(kind: kind, index: i, input: input, problem) }
        _ = try? pipeline.checkDependenciesExist(workspaceRoot: root)
      } catch {
        if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    assertNoFailures(failures, kind: kind, runner: runner)
  }

  /// params.yaml and a vars file are read for every stages.yaml: mutate them under a fixed one.
  func testMutatedParamsFiles() throws {
    let kind = "params.yaml"
    let root = self.root!
    let stages = Self.stages
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(400)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .yaml, vocabulary: Self.vocabulary)
      let target = mutator.rng.chance(0.7) ? "params.yaml" : "other.yaml"
      let original = target == "params.yaml" ? Self.params : "extra:\n  n: 3\n  names: [a, b]\n"
      let (bytes, applied) = mutator.mutate(Array(original.utf8))
      let input = target + " " + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      defer { try? FileSystem.writeAtomically(original, to: root + "/" + target) }
      do {
        try FileSystem.writeAtomically(bytes, to: root + "/" + target)
        let pipeline = try PipelineLoader(workspaceRoot: root).load(text: stages)
        for problem in Self.problems(with: pipeline) { runner.fail(kind: kind, index: i, input: input, problem) }
      } catch {
        if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    assertNoFailures(failures, kind: kind, runner: runner)
  }

  // MARK: - stages.lock

  func testMutatedLockFiles() throws {
    let seeds = [Self.lock, Self.repositoryFile("stages.lock")].compactMap { $0 }
    let kind = "stages.lock"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(1_000)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .yaml, vocabulary: Self.vocabulary)
      let (bytes, applied) = mutator.mutate(Array(mutator.rng.pick(seeds).utf8))
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      do {
        let lock = try LockFile.parse(String(decoding: bytes, as: UTF8.self))
        for (_, record) in lock.stages {
          for entry in record.deps + record.outs {
            if let problem = Self.problem(with: entry.path, "entry") {
              runner.fail(kind: kind, index: i, input: input, problem)
            }
          }
        }
        // What dv writes back must read back the same.
        do {
          let again = try LockFile.parse(lock.text)
          if again != lock { runner.fail(kind: kind, index: i, input: input, "the lock does not round-trip") }
        } catch {
          runner.fail(kind: kind, index: i, input: input, "the written lock does not parse: \(error)")
        }
      } catch {
        if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    assertNoFailures(failures, kind: kind, runner: runner)
  }

  // MARK: - Metrics files

  func testMutatedMetricsFiles() throws {
    let kind = "metrics"
    let seeds = [
      (
        Mutator.Dialect.json,
        "{\n\"loss\": 0.25,\n\"acc\": {\"train\": 0.9, \"val\": 0.8},\n\"layers\": [1, 2, 3],\n\"ok\": true\n}"
      ),
      (Mutator.Dialect.yaml, "loss: 0.25\nacc:\n  train: 0.9\n  val: 0.8\nlayers: [1, 2, 3]\nok: true\n"),
    ]
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(400)) { i, runner in
      var rng = Fuzz.generator(kind: kind, index: i)
      let (dialect, seed) = rng.pick(seeds)
      var mutator = Mutator(rng: rng, dialect: dialect)
      let (bytes, applied) = mutator.mutate(Array(seed.utf8))
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      do {
        _ = try MetricsFile.flatten(text: String(decoding: bytes, as: UTF8.self), name: "metrics/m.json")
      } catch {
        if let problem = Self.problem(with: error) { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    assertNoFailures(failures, kind: kind, runner: runner)
  }

  /// The unmutated inputs are valid, so that mutations start from something dv accepts.
  func testTheSeedsAreValid() throws {
    XCTAssertEqual(try PipelineLoader(workspaceRoot: root).load(text: Self.stages).stages.count, 11)
    XCTAssertEqual(try LockFile.parse(Self.lock).stages.count, 2)
    if let repository = Self.repositoryFile("stages.lock") { XCTAssertNoThrow(try LockFile.parse(repository)) }
  }

  // MARK: - Regressions the suite found

  func testAnAliasBombIsRefusedQuickly() throws {
    for (text, name) in [
      ("stages:\n  a:\n    cmd: echo\n    with: \(Mutator.aliasBomb())\n", "stages.yaml"),
      ("stages:\n  a:\n    cmd: echo\n    meta: \(Mutator.aliasBomb(asKey: true))\n", "stages.yaml"),
    ] {
      let started = Date()
      XCTAssertThrowsError(try PipelineLoader(workspaceRoot: root).load(text: text)) { error in
        XCTAssertNil(Self.problem(with: error))
        XCTAssertTrue("\(error)".hasPrefix(name + ":"), "\(error)")
        XCTAssertTrue("\(error)".contains("alias"), "\(error)")
      }
      XCTAssertLessThan(Date().timeIntervalSince(started), 2)
    }
    try FileSystem.writeAtomically("a: \(Mutator.aliasBomb())\n", to: root + "/params.yaml")
    XCTAssertThrowsError(try PipelineLoader(workspaceRoot: root).load(text: "stages: {}\n")) { error in
      XCTAssertTrue("\(error)".hasPrefix("params.yaml:1:"), "\(error)")
    }
  }

  func testModestAliasesStillWork() throws {
    let pipeline = try PipelineLoader(workspaceRoot: root).load(
      text: """
        stages:
          a:
            cmd: echo *.csv
            outs: &outs [out/a]
          b:
            cmd: echo
            deps: *outs
            with: &w {x: [1, 2, 3]}
            meta: {copy: *w}

        """)
    XCTAssertEqual(pipeline.stages.map(\.name), ["a", "b"])
  }

  func testAMatrixThatWouldMakeBillionsOfStagesIsRefused() throws {
    let axes = (0..<10).map { "      a\($0): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" }.joined(separator: "\n")
    let started = Date()
    XCTAssertThrowsError(
      try PipelineLoader(workspaceRoot: root).load(text: "stages:\n  g:\n    matrix:\n\(axes)\n    cmd: x\n")
    ) { error in
      XCTAssertNil(Self.problem(with: error))
      XCTAssertTrue("\(error)".hasPrefix("stages.yaml:4:7: 'matrix' of stage 'g' makes more than"), "\(error)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(started), 2)
  }

  func testAVarsFileThatIsADirectoryIsBadInput() throws {
    XCTAssertThrowsError(try PipelineLoader(workspaceRoot: root).load(text: "vars: [dir.yaml]\nstages: {}\n")) {
      XCTAssertNil(Self.problem(with: $0))
    }
    // A name too long for the system cannot name an existing file either.
    let long = String(repeating: "a", count: 5_000)
    XCTAssertThrowsError(try PipelineLoader(workspaceRoot: root).load(text: "vars: [\(long)]\nstages: {}\n")) {
      XCTAssertNil(Self.problem(with: $0))
      XCTAssertTrue("\($0)".contains("does not exist"), "\($0)")
    }
  }

  func testNULInAPathIsRefused() throws {
    XCTAssertThrowsError(
      try PipelineLoader(workspaceRoot: root).load(text: "stages:\n  a:\n    cmd: x\n    outs: [\"data/..\\0/x\"]\n")
    ) { XCTAssertNil(Self.problem(with: $0)) }
    XCTAssertThrowsError(
      try LockFile.parse(
        "version: 1\nstages:\n  a:\n    cmd: x\n    outs:\n    - {path: \"a\\0\", hash: sha256:\(Mutator.someHash)}\n"))
  }
}
