import DVBasics
import DVRemotes
import DVStorage
import Foundation
import FuzzSupport
import XCTest

@testable import DVPipeline
@testable import DVWorkspace

/// The bad-input suite for the workspace's own files: mutated `.dv` pointers,
/// `.pipeline/config.yaml` (and config.local.yaml) and tree manifests, parsed in-process.
/// Every case ends with a value whose paths stay inside the workspace, or a one-line error of the
/// right kind — never a trap or a hang.
final class FileFuzzTests: XCTestCase {
  static let hash = "sha256:" + Mutator.someHash

  static let pointers = [
    "version: 1\npath: raw\nhash: \(hash)\nkind: dir\nsize: 104857600\nfiles: 10000\n",
    "version: 1\npath: one.txt\nhash: \(hash)\nkind: file\nsize: 12\n",
    "# a comment\nversion: 1\nhash: \(hash)\npath: \"name with spaces\"\n",
  ]

  static let configs = [
    """
    version: 1
    core:
      no_scm: true
      remote: storage
    cache:
      type: [reflink, hardlink, copy]
    remotes:
      storage:
        url: s3://bucket/prefix
        region: eu-west-1
        endpoint: http://127.0.0.1:9000
      gcs:
        url: gs://bucket-name/prefix
        credentialpath: /nonexistent/key.json
      local:
        url: ../remote
    hooks:
      pre_commit: warn
      pre_push: off
      post_checkout: on

    """,
    "version: 1\ncore:\n  no_scm: false\ncache:\n  type: reflink, copy\n",
  ]

  static let vocabulary = [
    "raw", "dir", "file", "0", "10000", "s3://bucket", "s3://", "gs://b", "gs://../x", "file:///tmp/x", "file://x",
    "../remote", "/abs/remote", "reflink", "symlink", "warp", "check", "warn", "on", "off", "storage", "nope",
    "http://x", "ftp://x", "virtual", "path", "us-east-1", "eu west", "sha256:" + Mutator.someHash,
  ]

  var directory: String!

  override func setUpWithError() throws {
    directory = FileSystem.realPath(NSTemporaryDirectory())! + "/dv-file-fuzz-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory + "/.pipeline")
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  static func problem(with error: Error, allowed: (DVError) -> Bool) -> String? {
    guard let error = error as? DVError else { return "not a DVError: \(type(of: error)): \(error)" }
    guard allowed(error) else { return "unexpected \(type(of: error)) (exit \(error.kind.exitCode)): \(error)" }
    return nil
  }

  static func problem(with path: String, _ what: String) -> String? {
    if path.hasPrefix("/") || path.isEmpty || path.utf8.contains(0)
      || path.split(separator: "/", omittingEmptySubsequences: false).contains(where: {
        $0 == ".." || $0 == "." || $0.isEmpty
      })
    {
      return "\(what) '\(Fuzz.show(path))' is not a clean relative path"
    }
    return nil
  }

  func report(_ failures: [FuzzRunner.Failure], kind: String, runner: FuzzRunner) {
    print("fuzz \(kind): \(runner.count) cases, seed \(Fuzz.seed), \(failures.count) failures")
    for failure in failures.prefix(5) { XCTFail(failure.description) }
  }

  // MARK: - Pointer files

  func testMutatedPointerFiles() {
    let kind = "pointer"
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(1_000)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .yaml, vocabulary: Self.vocabulary)
      let (bytes, applied) = mutator.mutate(Array(mutator.rng.pick(Self.pointers).utf8))
      let location = RelativePath(validating: mutator.rng.pick(["data/raw.dv", "raw.dv", "a/b/c/x.dv"]))!
      let input = location.value + " " + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      do {
        let pointer = try PointerFile.parse(String(decoding: bytes, as: UTF8.self), location: location)
        if let problem = Self.problem(with: pointer.path.value, "path") {
          runner.fail(kind: kind, index: i, input: input, problem)
        }
        if pointer.path.isInside(RelativePath(validating: ".pipeline")!) {
          runner.fail(kind: kind, index: i, input: input, "path inside .pipeline")
        }
        // What dv writes back must read back the same (dv writes a pointer beside its data, so
        // only such pointers can round-trip).
        let written = pointer.text
        if pointer.path.parent == location.parent {
          do {
            let again = try PointerFile.parse(written, location: location)
            if again != pointer { runner.fail(kind: kind, index: i, input: input, "the pointer does not round-trip") }
          } catch {
            runner.fail(kind: kind, index: i, input: input, "the written pointer does not parse: \(error)")
          }
        }
      } catch {
        let problem = Self.problem(with: error) { $0.kind == .badInput && "\($0)".hasPrefix(location.value + ":") }
        if let problem { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  // MARK: - Config

  func testMutatedConfigFiles() {
    let kind = "config"
    let runner = FuzzRunner()
    let pipeline = directory + "/.pipeline"
    let environment = [
      "AWS_ACCESS_KEY_ID": "AKIDFUZZ", "AWS_SECRET_ACCESS_KEY": "fuzz", "GOOGLE_OAUTH_ACCESS_TOKEN": "fuzz-token",
      "HOME": directory!,
    ]
    let failures = runner.run(kind: kind, cases: Fuzz.cases(800)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .yaml, vocabulary: Self.vocabulary)
      let local = mutator.rng.chance(0.2)
      let (bytes, applied) = mutator.mutate(Array(mutator.rng.pick(Self.configs).utf8))
      let name = local ? "config.local.yaml" : "config.yaml"
      let input = name + " " + applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      try? FileSystem.removeFile(pipeline + "/config.yaml")
      try? FileSystem.removeFile(pipeline + "/config.local.yaml")
      do {
        if local { try FileSystem.writeAtomically(Self.configs[0], to: pipeline + "/config.yaml") }
        try FileSystem.writeAtomically(bytes, to: pipeline + "/" + name)
        let config = try WorkspaceConfig.load(pipelineDirectory: pipeline)
        if config.cacheTypes.isEmpty { runner.fail(kind: kind, index: i, input: input, "no cache types") }
        for settings in config.remotes.values.sorted(by: { $0.name < $1.name }) {
          do {
            _ = try RemoteFactory.make(settings, environment: environment, relativeTo: self.directory)
          } catch {
            let problem = Self.problem(with: error) { $0 is RemoteError && $0.kind == .badInput }
            if let problem { runner.fail(kind: kind, index: i, input: input, "remote '\(settings.name)': " + problem) }
          }
        }
      } catch {
        let problem = Self.problem(with: error) {
          $0.kind == .badInput
            && "\($0)".range(of: #"^\.pipeline/config(\.local)?\.yaml:[0-9]+:[0-9]+: "#, options: .regularExpression)
              != nil
        }
        if let problem { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  // MARK: - Tree manifests

  func testMutatedTreeManifests() {
    let kind = "manifest"
    let entries = [
      TreeEntry(path: "a.csv", hash: ObjectID(Self.hash)!, size: 10, exec: false),
      TreeEntry(path: "sub/b \"quoted\".csv", hash: ObjectID(Self.hash)!, size: 0, exec: true),
      TreeEntry(path: "sub/c\nnewline\u{1}", hash: ObjectID(Self.hash)!, size: 9_223_372_036_854_775_807, exec: false),
      TreeEntry(path: "z/ü.txt", hash: ObjectID(Self.hash)!, size: 1, exec: false),
    ]
    let canonical = TreeManifest(entries: entries).canonicalJSON()
    // One entry a line, so that line mutations hit single fields.
    let pretty = Array(
      String(decoding: canonical, as: UTF8.self).replacingOccurrences(of: "},{", with: "},\n{")
        .replacingOccurrences(of: ",\"", with: ",\n\"").utf8)
    let id = ObjectID(Self.hash)!
    let runner = FuzzRunner()
    let failures = runner.run(kind: kind, cases: Fuzz.cases(800)) { i, runner in
      var mutator = Mutator(rng: Fuzz.generator(kind: kind, index: i), dialect: .json, vocabulary: ["\"a/../b\""])
      let (bytes, applied) = mutator.mutate(mutator.rng.chance(0.5) ? canonical : pretty)
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      do {
        let manifest = try TreeManifest.parse(bytes, id: id)
        for entry in manifest.entries {
          if let problem = Self.problem(with: entry.path, "entry") {
            runner.fail(kind: kind, index: i, input: input, problem)
          }
          if entry.size < 0 { runner.fail(kind: kind, index: i, input: input, "negative size") }
        }
        // Serializing what was read must not trap, and must read back the same.
        let again = try TreeManifest.parse(manifest.canonicalJSON(), id: id)
        if again != manifest { runner.fail(kind: kind, index: i, input: input, "the manifest does not round-trip") }
      } catch {
        let problem = Self.problem(with: error) {
          if case .corruptManifest? = $0 as? StorageError { return true }
          return false
        }
        if let problem { runner.fail(kind: kind, index: i, input: input, problem) }
      }
    }
    report(failures, kind: kind, runner: runner)
  }

  /// The unmutated inputs are valid, so that mutations start from something dv accepts.
  func testTheSeedsAreValid() throws {
    for text in Self.pointers {
      XCTAssertNoThrow(try PointerFile.parse(text, location: RelativePath(validating: "data/raw.dv")!), text)
    }
    for text in Self.configs {
      try FileSystem.writeAtomically(text, to: directory + "/.pipeline/config.yaml")
      XCTAssertNoThrow(try WorkspaceConfig.load(pipelineDirectory: directory + "/.pipeline"), text)
    }
  }

  // MARK: - Regressions the suite found

  func testNULInAPointerOrManifestPathIsRefused() {
    let location = RelativePath(validating: "data/raw.dv")!
    for path in ["\"..\\0\"", "\"raw\\0/../..\"", "\"a\\0b\""] {
      XCTAssertThrowsError(
        try PointerFile.parse("version: 1\npath: \(path)\nhash: \(Self.hash)\n", location: location), path)
    }
    let manifest = #"[{"path":"..\u0000","hash":"\#(Self.hash)","size":1,"exec":false}]"#
    XCTAssertThrowsError(try TreeManifest.parse(Array(manifest.utf8), id: ObjectID(Self.hash)!))
  }
}
