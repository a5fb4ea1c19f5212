import DVBasics
import Foundation
import FuzzSupport
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The bad-input suite through the built `dv`: mutated stages.yaml, pointers, stages.lock,
/// config, params and metrics files, and hostile paths (absolute, `..`, symlinks leading out of
/// the workspace, names with newlines or invalid UTF-8, a directory where a file belongs). Every
/// case ends with exit 0, or exit 1/2 and one `error:` line on stderr; never a signal, a runtime
/// trap or a hang (10 s); never a change to committed files, the cache or anything outside the
/// workspace, and read-only commands change nothing at all.
final class FuzzTests: DVTestCase {
  /// One run of dv in a fuzz case.
  struct Outcome {
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: [UInt8]
    var stderr: String
    var seconds: Double
  }

  /// A file or link as the snapshot saw it.
  enum Entry: Equatable {
    case file([UInt8], mode: UInt32)
    case directory
    case link(String)
  }

  static let timeout = 10.0
  static let readOnly: Set<String> = [
    "status", "status --json", "repro --dry-run", "dag", "dag --dot", "dag --mermaid", "remote list",
    "remote list --json", "gc --dry-run", "metrics show", "metrics show --json", "fsck", "plugins list",
  ]

  // MARK: - The template workspace

  static let stages = """
    stages:
      copy:
        cmd: mkdir -p out && cp data/one.txt out/copy.txt
        deps: [data/one.txt]
        params: [copy.n]
        outs: [out/copy.txt]
      count:
        foreach: [a, b]
        do:
          cmd: "mkdir -p metrics && printf '{\\"n\\": 1, \\"name\\": \\"${item}\\"}' > metrics/${item}.json"
          deps: [out/copy.txt]
          metrics:
            - metrics/${item}.json
      check:
        plugin: validate
        with: {input: data/raw/a.csv, schema: schema.yaml, report: reports/check.json, on_error: warn}
        deps: [data/raw/a.csv, schema.yaml]
        outs: [reports/check.json]

    """

  static let params = "copy:\n  n: 3\nsizes: [1, 2]\n"
  static let schema = "columns:\n  id: {type: int, required: true, unique: true}\n  v: {type: string}\nrows: {min: 1}\n"

  /// Builds a workspace with tracked data, a pipeline that ran, a lock and a remote; returns its
  /// path.
  func makeTemplate() throws -> String {
    try makeWorkspaceWithData()
    try write("data/one.txt", "one\n")
    try write("stages.yaml", Self.stages)
    try write("params.yaml", Self.params)
    try write("schema.yaml", Self.schema)
    for args in [
      ["add", "data/raw"], ["add", "data/one.txt"], ["repro"], ["remote", "add", "-d", "store", "../remote"],
    ] {
      let result = try run(Self.binary, args)
      XCTAssertEqual(result.code, 0, "dv \(args.joined(separator: " ")): \(result.stderr)")
    }
    XCTAssertTrue(exists("stages.lock"))
    let template = root + "/../" + (root as NSString).lastPathComponent + "-template"
    try? FileSystem.removeTree(template)
    try FileManager.default.moveItem(atPath: root, toPath: template)
    try FileSystem.createDirectory(root)
    return FileSystem.realPath(template)!
  }

  /// A fresh copy of the template at `workspace`, with `link` pointing at `outside`.
  func reset(_ workspace: String, from template: String, outside: String) throws {
    // rm, not FileSystem.removeTree: scenarios leave names that are not UTF-8.
    for path in [workspace, outside] {
      try? makeWritable(path)
      _ = try run("/bin/rm", ["-rf", path])
    }
    let copy = try run("/bin/cp", ["-a", template, workspace])
    guard copy.code == 0 else { throw SystemError("copying the template: \(copy.stderr)", errno: EIO) }
    try FileSystem.createDirectory(outside + "/dir")
    try FileSystem.writeAtomically("outside\n", to: outside + "/secret.txt")
    try FileSystem.writeAtomically("one\n", to: outside + "/out.txt")
    try FileSystem.writeAtomically("x\n", to: outside + "/dir/x.csv")
    try FileManager.default.createSymbolicLink(atPath: workspace + "/link", withDestinationPath: outside)
  }

  func makeWritable(_ path: String) throws {
    _ = try run("/bin/chmod", ["-R", "u+w", path])
  }

  // MARK: - Snapshots

  /// Every file, directory and link under `top` (links not followed), except dv's own scratch
  /// files: the stat cache, the ledger, tmp/ and the writer lock.
  static func snapshot(_ top: String) -> [String: Entry] {
    var out: [String: Entry] = [:]
    func walk(_ relative: String) {
      let path = relative.isEmpty ? top : top + "/" + relative
      guard let entries = try? FileSystem.listDirectory(path) else { return }
      for entry in entries {
        let rel = relative.isEmpty ? entry.name : relative + "/" + entry.name
        if [".pipeline/tmp", ".pipeline/lock"].contains(rel) || rel.hasPrefix(".pipeline/state.db")
          || rel.hasPrefix(".pipeline/lineage.db")
        {
          continue
        }
        let full = top + "/" + rel
        guard let st = try? FileStat.of(full, followLinks: false) else { continue }
        switch st.kind {
        case .directory:
          out[rel] = .directory
          walk(rel)
        case .symlink:
          out[rel] = .link((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?")
        default:
          out[rel] = .file((try? FileSystem.readFileIfPresent(full)) ?? nil ?? [], mode: st.mode & 0o777)
        }
      }
    }
    walk("")
    return out
  }

  /// Files that must never change whatever command runs: committed files and the cache.
  static func isProtected(_ path: String) -> Bool {
    path.hasSuffix(".dv") || ["stages.yaml", "stages.lock", "params.yaml", "schema.yaml"].contains(path)
      || path.hasPrefix(".pipeline/config") || path.hasPrefix(".pipeline/cache/")
  }

  /// What a case changed that it must not have; empty when it kept its promises.
  static func damage(
    command: String, before: [String: Entry], after: [String: Entry], outsideBefore: [String: Entry],
    outsideAfter: [String: Entry]
  ) -> [String] {
    var found: [String] = []
    if outsideBefore != outsideAfter {
      let changed = Set(outsideBefore.keys).union(outsideAfter.keys).filter { outsideBefore[$0] != outsideAfter[$0] }
      found.append("changed outside the workspace: \(changed.sorted().prefix(5).map { Fuzz.show($0) })")
    }
    let keys = Set(before.keys).union(after.keys).sorted()
    let changed = keys.filter { before[$0] != after[$0] }
    if readOnly.contains(command) {
      if !changed.isEmpty { found.append("'\(command)' changed \(changed.prefix(5).map { Fuzz.show($0) })") }
      return found
    }
    // Writing commands: committed files and cache objects stay; no file whose bytes are not in
    // the cache disappears or changes.
    for path in changed where isProtected(path) && before[path] != nil && before[path] != .directory {
      if path.hasPrefix(".pipeline/cache/") {
        found.append("cache object '\(path)' changed or vanished")
      } else if !path.hasPrefix(".pipeline/cache/") {
        found.append("'\(command)' changed committed file '\(Fuzz.show(path))'")
      }
    }
    var cached = Set<[UInt8]>()
    for (path, entry) in after where path.hasPrefix(".pipeline/cache/") {
      if case .file(let bytes, _) = entry { cached.insert(bytes) }
    }
    for path in changed where !isProtected(path) {
      if case .file(let bytes, _)? = before[path], !cached.contains(bytes) {
        found.append("'\(command)' lost '\(Fuzz.show(path))', whose content is not in the cache")
      }
    }
    return found
  }

  // MARK: - Running dv

  func dvRun(_ args: [String], in workspace: String, home: String) -> Outcome {
    let started = Date()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.binary)
    process.arguments = args
    process.currentDirectoryURL = URL(fileURLWithPath: workspace)
    process.environment = [
      "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "DV_LOCK_TIMEOUT": "1",
    ]
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let done = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in done.signal() }
    do { try process.run() } catch {
      return Outcome(status: -1, signaled: false, timedOut: false, stdout: [], stderr: "\(error)", seconds: 0)
    }
    let outData = Locked(Data())
    let errData = Locked(Data())
    let group = DispatchGroup()
    for (pipe, sink) in [(out, outData), (err, errData)] {
      DispatchQueue.global().async(group: group) {
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        sink.withLock { $0 = data }
      }
    }
    var timedOut = false
    if done.wait(timeout: .now() + Self.timeout) == .timedOut {
      timedOut = true
      kill(process.processIdentifier, SIGKILL)
      done.wait()
    }
    group.wait()
    return Outcome(
      status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
      stdout: [UInt8](outData.withLock { $0 }), stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self),
      seconds: Date().timeIntervalSince(started))
  }

  /// What the outcome of one run breaks of the exit-code and one-line contract.
  static func problems(of outcome: Outcome) -> [String] {
    var found: [String] = []
    if outcome.timedOut { found.append("hang: no exit within \(timeout) s") }
    if outcome.signaled { found.append("killed by signal \(outcome.status)") }
    if !outcome.signaled && !outcome.timedOut && ![0, 1, 2].contains(outcome.status) {
      found.append("exit code \(outcome.status)")
    }
    for marker in ["Fatal error", "fatal error", "Stack dump", "Swift runtime failure", "Illegal instruction"]
    where outcome.stderr.contains(marker) {
      found.append("runtime trap on stderr: \(Fuzz.show(outcome.stderr))")
    }
    if outcome.status != 0 && !outcome.timedOut && !outcome.signaled {
      let text = outcome.stderr.hasSuffix("\n") ? String(outcome.stderr.dropLast()) : outcome.stderr
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      if lines.count != 1 || !lines[0].hasPrefix("error: ") || !outcome.stderr.hasSuffix("\n") {
        found.append("exit \(outcome.status) without exactly one error line: \(Fuzz.show(outcome.stderr))")
      }
    }
    return found
  }

  // MARK: - Cases

  /// A file to mutate and the commands that read it.
  struct Target {
    var kind: String
    var file: String
    var dialect: Mutator.Dialect
    var cases: Int
    var commands: [String]
  }

  static let targets = [
    Target(
      kind: "cli-stages", file: "stages.yaml", dialect: .yaml, cases: 260,
      commands: ["status", "repro --dry-run", "dag", "dag --mermaid", "status --json", "metrics show"]),
    Target(
      kind: "cli-pointer", file: "data/one.txt.dv", dialect: .yaml, cases: 110,
      commands: ["status", "checkout", "gc --dry-run", "status --json"]),
    Target(
      kind: "cli-dir-pointer", file: "data/raw.dv", dialect: .yaml, cases: 90,
      commands: ["status", "checkout", "gc --dry-run"]),
    Target(
      kind: "cli-lock", file: "stages.lock", dialect: .yaml, cases: 150,
      commands: ["status", "repro --dry-run", "checkout", "gc --dry-run"]),
    Target(
      kind: "cli-config", file: ".pipeline/config.yaml", dialect: .yaml, cases: 130,
      commands: ["remote list", "status", "checkout", "remote list --json", "gc --dry-run"]),
    Target(
      kind: "cli-params", file: "params.yaml", dialect: .yaml, cases: 70,
      commands: ["status", "repro --dry-run", "dag"]),
    Target(
      kind: "cli-schema", file: "schema.yaml", dialect: .yaml, cases: 40, commands: ["status", "repro --dry-run"]),
    Target(
      kind: "cli-metrics", file: "metrics/a.json", dialect: .json, cases: 50, commands: ["metrics show", "status"]),
  ]

  static let vocabulary = [
    "data/one.txt", "data/raw", "one.txt", "raw", "../one.txt", "out/copy.txt", "link/secret.txt", "link",
    "../link/secret.txt", "${copy.n}", "${item}", "${sizes}", "validate", "copy", "count@a", "store", "../remote",
    "file:///nonexistent", "sha256:" + Mutator.someHash, "file", "dir", "copy.n", "reports/check.json",
  ]

  /// Hand-written hostile paths, each with its commands.
  struct Scenario {
    var name: String
    var commands: [String]
    var setup: (_ workspace: String, _ outside: String) throws -> Void
  }

  static func pointer(_ path: String, hash: String, kind: String = "file") -> String {
    "version: 1\npath: \(path)\nhash: \(hash)\nkind: \(kind)\nsize: 4\n"
  }

  /// The hash a pointer records.
  static func recordedHash(_ workspace: String, _ pointer: String) -> String {
    let text = (try? FileSystem.readTextIfPresent(workspace + "/" + pointer)) ?? nil ?? ""
    return text.split(separator: "\n").first { $0.hasPrefix("hash: ") }.map { String($0.dropFirst(6)) } ?? ""
  }

  static func writeStages(_ workspace: String, _ stages: String) throws {
    try FileSystem.writeAtomically(stages, to: workspace + "/stages.yaml")
  }

  static func replaceWithDirectory(_ workspace: String, _ path: String) throws {
    try FileSystem.removeTree(workspace + "/" + path)
    try FileSystem.createDirectory(workspace + "/" + path + "/inner")
  }

  /// Creates a small file whose absolute path is `pathBytes` (which need not be UTF-8).
  static func writeFile(named pathBytes: [UInt8]) throws {
    var zeroTerminated = pathBytes.map { CChar(bitPattern: $0) }
    zeroTerminated.append(0)
    let fd = Glibc.open(zeroTerminated, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw SystemError("creating a file with a raw name", errno: errno) }
    _ = Glibc.write(fd, [UInt8(ascii: "x"), 10], 2)
    Glibc.close(fd)
  }

  static let scenarios: [Scenario] = [
    Scenario(name: "pointer-absolute", commands: ["status", "checkout"]) { w, _ in
      try FileSystem.writeAtomically(
        FuzzTests.pointer("/etc/passwd", hash: "sha256:" + Mutator.someHash), to: w + "/data/evil.dv")
    },
    Scenario(name: "pointer-dotdot", commands: ["status", "checkout"]) { w, _ in
      try FileSystem.writeAtomically(
        FuzzTests.pointer("../../outside", hash: "sha256:" + Mutator.someHash), to: w + "/data/evil.dv")
    },
    Scenario(name: "pointer-through-symlink", commands: ["checkout", "status"]) { w, _ in
      let hash = FuzzTests.recordedHash(w, "data/one.txt.dv")
      try FileSystem.writeAtomically(FuzzTests.pointer("../link/stolen.txt", hash: hash), to: w + "/data/evil.dv")
    },
    Scenario(name: "pointer-over-symlinked-file", commands: ["checkout", "status"]) { w, _ in
      let hash = FuzzTests.recordedHash(w, "data/one.txt.dv")
      try FileSystem.writeAtomically(FuzzTests.pointer("../link/secret.txt", hash: hash), to: w + "/data/evil.dv")
    },
    Scenario(name: "dir-pointer-through-symlink", commands: ["checkout", "status"]) { w, _ in
      let hash = FuzzTests.recordedHash(w, "data/raw.dv")
      try FileSystem.writeAtomically(FuzzTests.pointer("../link/dir", hash: hash, kind: "dir"), to: w + "/data/evil.dv")
    },
    Scenario(name: "tracked-dir-is-symlink-out", commands: ["checkout", "status", "gc --dry-run"]) { w, o in
      try FileSystem.removeTree(w + "/data/raw")
      try FileManager.default.createSymbolicLink(atPath: w + "/data/raw", withDestinationPath: o + "/dir")
    },
    Scenario(name: "tracked-file-is-symlink-out", commands: ["checkout", "status"]) { w, o in
      try FileSystem.removeTree(w + "/data/one.txt")
      try FileManager.default.createSymbolicLink(atPath: w + "/data/one.txt", withDestinationPath: o + "/secret.txt")
    },
    Scenario(name: "tracked-parent-is-symlink-out", commands: ["checkout", "status"]) { w, o in
      try FileSystem.removeTree(w + "/data")
      try FileManager.default.createSymbolicLink(atPath: w + "/data", withDestinationPath: o)
    },
    Scenario(name: "pointer-is-symlink-out", commands: ["status", "checkout"]) { w, o in
      try FileSystem.writeAtomically(FuzzTests.pointer("x", hash: "sha256:" + Mutator.someHash), to: o + "/p.dv")
      try FileManager.default.createSymbolicLink(atPath: w + "/data/x.dv", withDestinationPath: o + "/p.dv")
    },
    Scenario(name: "pointer-covers-its-directory", commands: ["checkout", "status"]) { w, _ in
      let hash = FuzzTests.recordedHash(w, "data/raw.dv")
      try FileSystem.writeAtomically(FuzzTests.pointer(".", hash: hash, kind: "dir"), to: w + "/data/evil.dv")
    },
    Scenario(name: "pointer-nul-in-path", commands: ["checkout", "status"]) { w, _ in
      let hash = FuzzTests.recordedHash(w, "data/raw.dv")
      try FileSystem.writeAtomically(
        FuzzTests.pointer("\"..\\0\"", hash: hash, kind: "dir"), to: w + "/data/raw/evil.dv")
    },
    Scenario(name: "out-through-symlink", commands: ["repro --dry-run", "repro", "status"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    outs: [link/out.txt]\n")
    },
    Scenario(name: "wdir-through-symlink", commands: ["repro --dry-run", "repro"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    wdir: link\n    outs: [out.txt]\n")
    },
    Scenario(name: "dep-through-symlink", commands: ["repro --dry-run", "status"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    deps: [link/secret.txt]\n    outs: [o.txt]\n")
    },
    Scenario(name: "out-absolute-and-dotdot", commands: ["repro --dry-run", "dag"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    outs: [/tmp/x, ../x]\n")
    },
    Scenario(name: "out-inside-pipeline", commands: ["repro --dry-run"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    outs: [.pipeline/cache]\n")
    },
    Scenario(name: "out-newline-name", commands: ["repro --dry-run", "dag", "status"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  \"a\\nb\":\n    cmd: \"true\"\n    outs: [\"x\\ny\"]\n")
    },
    Scenario(name: "stage-key-newline", commands: ["repro --dry-run", "dag"]) { w, _ in
      try FuzzTests.writeStages(w, "stages:\n  s:\n    cmd: \"true\"\n    \"a\\nb\": 1\n")
    },
    Scenario(name: "add-through-symlink", commands: ["add link/secret.txt", "status"]) { _, _ in },
    Scenario(name: "add-dir-through-symlink", commands: ["add link/dir", "status"]) { _, _ in },
    Scenario(name: "add-absolute-outside", commands: ["add /etc/hostname", "add ../x", "add link"]) { _, _ in },
    Scenario(name: "add-newline-name", commands: ["add data/new\nline.txt", "status", "checkout", "status --json"]) {
      w, _ in
      try FileSystem.writeAtomically("n\n", to: w + "/data/new\nline.txt")
    },
    Scenario(name: "invalid-utf8-in-tracked-dir", commands: ["status", "add data/raw", "checkout"]) { w, _ in
      try FuzzTests.writeFile(named: Array((w + "/data/raw/bad-").utf8) + [0xFF])
    },
    Scenario(name: "invalid-utf8-pointer-name", commands: ["status", "checkout", "gc --dry-run"]) { w, _ in
      try FuzzTests.writeFile(named: Array((w + "/data/bad-").utf8) + [0xFF] + Array(".dv".utf8))
    },
    Scenario(name: "stages-is-directory", commands: ["status", "repro --dry-run", "dag"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "stages.yaml")
    },
    Scenario(name: "lock-is-directory", commands: ["status", "repro --dry-run", "checkout"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "stages.lock")
    },
    Scenario(name: "params-is-directory", commands: ["status", "repro --dry-run"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "params.yaml")
    },
    Scenario(name: "config-is-directory", commands: ["status", "remote list"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, ".pipeline/config.yaml")
    },
    Scenario(name: "dvignore-is-directory", commands: ["status", "add data/one.txt"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, ".dvignore")
    },
    Scenario(name: "tracked-file-is-directory", commands: ["status", "checkout"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "data/one.txt")
    },
    Scenario(name: "pointer-is-directory", commands: ["status", "checkout"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "data/one.txt.dv")
    },
    Scenario(name: "metrics-is-directory", commands: ["metrics show", "status"]) { w, _ in
      try FuzzTests.replaceWithDirectory(w, "metrics/a.json")
    },
    Scenario(name: "tmp-is-a-file", commands: ["checkout", "status"]) { w, _ in
      try FileSystem.removeTree(w + "/.pipeline/tmp")
      try FileSystem.writeAtomically("x", to: w + "/.pipeline/tmp")
    },
    Scenario(name: "cli-paths-outside", commands: ["status /etc", "checkout ../x", "status link/secret.txt"]) { _, _ in
    },
  ]

  // MARK: - The suite

  func testBadInputsThroughTheCLI() throws {
    let template = try makeTemplate()
    let workers = 2
    let outsides = (0..<workers).map { root + "/outside\($0)" }
    let workspaces = (0..<workers).map { root + "/w\($0)" }
    let home = root + "/home"
    try FileSystem.createDirectory(home)
    defer {
      for path in workspaces + [template] { try? makeWritable(path) }
      try? FileSystem.removeTree(template)
    }

    // Every case: (kind, index, what it does). Mutation cases and scenario cases.
    enum Work {
      case mutation(Target, Int)
      case scenario(Scenario, Int)
    }
    var work: [Work] = []
    for target in Self.targets {
      for i in 0..<Fuzz.cases(target.cases) { work.append(.mutation(target, i)) }
    }
    for (i, scenario) in Self.scenarios.enumerated() { work.append(.scenario(scenario, i)) }

    let failures = Locked<[String]>([])
    let counts = Locked<[String: Int]>([:])
    let exits = Locked<[String: Int]>([:])
    let started = Date()
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      let workspace = workspaces[worker]
      let outside = outsides[worker]
      do { try self.reset(workspace, from: template, outside: outside) } catch {
        failures.withLock { $0.append("worker \(worker): \(error)") }
        return
      }
      let baseline = Self.snapshot(workspace)
      let outsideBaseline = Self.snapshot(outside)
      for n in stride(from: worker, to: work.count, by: workers) {
        if failures.withLock({ $0.count }) >= 30 { break }
        var kind: String
        var index: Int
        var runs: [(command: String, input: String)] = []
        var restore: () throws -> Void = {}
        switch work[n] {
        case .mutation(let target, let i):
          kind = target.kind
          index = i
          var mutator = Mutator(
            rng: Fuzz.generator(kind: kind, index: i), dialect: target.dialect, vocabulary: Self.vocabulary)
          let original = (try? FileSystem.readFileIfPresent(workspace + "/" + target.file)) ?? nil ?? []
          let (bytes, applied) = mutator.mutate(original)
          let command = mutator.rng.pick(target.commands)
          do { try FileSystem.writeAtomically(bytes, to: workspace + "/" + target.file) } catch {
            failures.withLock { $0.append("\(kind)#\(i): writing the case: \(error)") }
            continue
          }
          runs = [(command, "\(target.file) \(applied.joined(separator: ",")): \(Fuzz.show(bytes))")]
          restore = { try FileSystem.writeAtomically(original, to: workspace + "/" + target.file) }
        case .scenario(let scenario, let i):
          kind = "cli-paths"
          index = i
          do { try scenario.setup(workspace, outside) } catch {
            failures.withLock { $0.append("scenario \(scenario.name): setup: \(error)") }
          }
          runs = scenario.commands.map { ($0, "scenario \(scenario.name)") }
        }
        for (command, input) in runs {
          let before = Self.snapshot(workspace)
          let outsideBefore = Self.snapshot(outside)
          let args: [String]
          if command.hasPrefix("add ") || command.hasPrefix("status ") || command.hasPrefix("checkout ") {
            let space = command.firstIndex(of: " ")!
            args = [String(command[..<space]), String(command[command.index(after: space)...])]
          } else {
            args = command.split(separator: " ").map(String.init)
          }
          let outcome = self.dvRun(args, in: workspace, home: home)
          counts.withLock { $0[kind, default: 0] += 1 }
          exits.withLock { $0["\(kind) exit \(outcome.timedOut ? "hang" : String(outcome.status))", default: 0] += 1 }
          var found = Self.problems(of: outcome)
          found += Self.damage(
            command: command, before: before, after: Self.snapshot(workspace), outsideBefore: outsideBefore,
            outsideAfter: Self.snapshot(outside))
          if !found.isEmpty {
            let message =
              "\(Fuzz.replay(kind: kind, index: index)) dv \(Fuzz.show(command)): \(found.joined(separator: "; "))\n"
              + "  input: \(input)\n  stderr: \(Fuzz.show(outcome.stderr))"
            failures.withLock { $0.append(message) }
          }
        }
        try? restore()
        // Scenarios change more than the snapshot shows (.pipeline/tmp): always start afresh.
        if case .scenario = work[n] {
          do { try self.reset(workspace, from: template, outside: outside) } catch {
            failures.withLock { $0.append("worker \(worker): reset: \(error)") }
            return
          }
        } else if Self.snapshot(workspace) != baseline || Self.snapshot(outside) != outsideBaseline {
          do { try self.reset(workspace, from: template, outside: outside) } catch {
            failures.withLock { $0.append("worker \(worker): reset: \(error)") }
            return
          }
        }
      }
    }
    let seconds = Date().timeIntervalSince(started)
    let total = counts.withLock { $0.values.reduce(0, +) }
    print("fuzz cli: \(total) runs of dv in \(String(format: "%.1f", seconds)) s, seed \(Fuzz.seed)")
    for (kind, n) in counts.withLock({ $0 }).sorted(by: { $0.key < $1.key }) { print("  \(kind): \(n)") }
    for (key, n) in exits.withLock({ $0 }).sorted(by: { $0.key < $1.key }) { print("  \(key): \(n)") }
    let all = failures.withLock { $0 }
    print("fuzz cli: \(all.count) failures")
    for failure in all.prefix(30) { print("FAIL " + failure) }
    for failure in all.prefix(8) { XCTFail(failure) }
  }
}
