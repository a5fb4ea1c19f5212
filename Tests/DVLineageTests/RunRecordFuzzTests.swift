import DVBasics
import Foundation
import FuzzSupport
import XCTest

@testable import DVLineage

/// The bad-input suite for run records fetched from a remote (`runs/<id>.json`): mutated records
/// are imported into a ledger. Every case ends with the run imported or a `RunRecordError`, and
/// the ledger still answers queries — never a trap or a hang.
final class RunRecordFuzzTests: XCTestCase {
  var directory: String!

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "dv-run-fuzz-\(UUID().uuidString)"
    try FileSystem.createDirectory(directory)
  }

  override func tearDownWithError() throws { try? FileSystem.removeTree(directory) }

  /// A record as `exportRun` writes it, one field a line so that line mutations hit one field.
  static func record(id: String) -> String {
    """
    {
    "run": {
    "argv": "repro -j 2",
    "command": "repro",
    "dv_version": "0.1.0",
    "finished_at": 1764000001000,
    "git_commit": "abc123",
    "git_dirty": 0,
    "host": "h",
    "id": "\(id)",
    "stage_runs": [
    {
    "action": "cmd a",
    "artifacts": [
    {
    "hash": "sha256:\(Mutator.someHash)",
    "path": "data/raw",
    "role": "dep",
    "size": 12,
    "files": 3
    },
    {
    "path": "params.yaml:seed",
    "role": "param",
    "value": "42"
    }
    ],
    "duration_ms": 15,
    "exit_code": 0,
    "key": "sha256:\(Mutator.someHash)",
    "outcome": "ran",
    "plugin_kind": "shell",
    "plugin_version": "1",
    "stage": "a",
    "started_at": 1764000000500
    }
    ],
    "started_at": 1764000000000,
    "status": "succeeded",
    "user": "u"
    },
    "version": 1
    }
    """
  }

  func testMutatedRunRecords() throws {
    let kind = "run-record"
    let ledger = try LineageLedger(path: directory + "/lineage.db")
    let runner = FuzzRunner()
    let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    let failures = runner.run(kind: kind, cases: Fuzz.cases(500)) { i, runner in
      var mutator = Mutator(
        rng: Fuzz.generator(kind: kind, index: i), dialect: .json,
        vocabulary: ["\"ran\"", "\"restored\"", "\"running\"", "\"../../etc/passwd\"", "\"out\"", "\"param\""])
      let id = String((0..<26).map { _ in mutator.rng.pick(alphabet) })
      let (bytes, applied) = mutator.mutate(Array(Self.record(id: id).utf8))
      let input = applied.joined(separator: ",") + ": " + Fuzz.show(bytes)
      runner.starting(i, input: input)
      do {
        try ledger.importRun(bytes, name: "runs/\(id).json")
      } catch {
        if !(error is RunRecordError) && !(error is LineageError) {
          runner.fail(kind: kind, index: i, input: input, "not a RunRecordError: \(type(of: error)): \(error)")
        } else if "\(error)".contains("\n") {
          runner.fail(kind: kind, index: i, input: input, "more than one line: \(Fuzz.show("\(error)"))")
        }
      }
      // Whatever was imported can be read back.
      do {
        _ = try ledger.runs(limit: 5)
        _ = try ledger.runCacheOutputs()
        _ = try ledger.reusableOutputs(key: "sha256:" + Mutator.someHash)
      } catch {
        runner.fail(kind: kind, index: i, input: input, "the ledger fails after the import: \(error)")
      }
    }
    print("fuzz \(kind): \(runner.count) cases, seed \(Fuzz.seed), \(failures.count) failures")
    for failure in failures.prefix(5) { XCTFail(failure.description) }
  }
}
