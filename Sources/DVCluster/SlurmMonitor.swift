import CDVSystem
import DVBasics
import Foundation

/// A Slurm job's state as squeue names it (`%T`).
enum SlurmJobState: Equatable {
  case pending, configuring, running, completing, suspended, requeued
  case completed, failed, cancelled, timeout, outOfMemory, nodeFail, preempted, bootFail, deadline
  /// A state this dv does not know: never taken for success.
  case other(String)

  init(_ text: String) {
    switch text.split(separator: " ").first.map(String.init) ?? text {
    case "PENDING": self = .pending
    case "CONFIGURING": self = .configuring
    case "RUNNING": self = .running
    case "COMPLETING": self = .completing
    case "SUSPENDED", "STOPPED": self = .suspended
    case "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT": self = .requeued
    case "COMPLETED": self = .completed
    case "FAILED": self = .failed
    case "CANCELLED": self = .cancelled
    case "TIMEOUT": self = .timeout
    case "OUT_OF_MEMORY": self = .outOfMemory
    case "NODE_FAIL": self = .nodeFail
    case "PREEMPTED": self = .preempted
    case "BOOT_FAIL": self = .bootFail
    case "DEADLINE": self = .deadline
    default: self = .other(text)
    }
  }

  var rawValue: String {
    switch self {
    case .pending: return "PENDING"
    case .configuring: return "CONFIGURING"
    case .running: return "RUNNING"
    case .completing: return "COMPLETING"
    case .suspended: return "SUSPENDED"
    case .requeued: return "REQUEUED"
    case .completed: return "COMPLETED"
    case .failed: return "FAILED"
    case .cancelled: return "CANCELLED"
    case .timeout: return "TIMEOUT"
    case .outOfMemory: return "OUT_OF_MEMORY"
    case .nodeFail: return "NODE_FAIL"
    case .preempted: return "PREEMPTED"
    case .bootFail: return "BOOT_FAIL"
    case .deadline: return "DEADLINE"
    case .other(let text): return text
    }
  }

  /// The job will not change any more. Unknown states are final too (and not success): a job
  /// dv cannot read is a failed stage, not a hang or a silent success.
  var isFinal: Bool {
    switch self {
    case .pending, .configuring, .running, .completing, .suspended, .requeued: return false
    default: return true
    }
  }

  /// The job ran the stage and the stage's own exit code says how it went.
  var isFailureOfTheCommand: Bool { self == .failed || self == .completed }
}

/// One job as squeue lists it.
struct SlurmJobStatus: Equatable {
  var id: String
  var state: SlurmJobState
  var reason: String?
  var node: String?
  var name: String
  var comment: String
}

/// What a failed call of a Slurm command says.
struct SlurmCommandError: Error, CustomStringConvertible {
  var command: String
  var message: String
  var description: String { "\(command): \(message)" }
}

/// Slurm's client commands, each a single call: sbatch, squeue, scontrol, scancel.
struct SlurmClient: Sendable {
  let environment: [String: String]

  /// `%i|%T|%r|%N|%j|%k`: id, state, reason, nodes, name, and the comment last (it may hold `|`).
  static let format = "%i|%T|%r|%N|%j|%k"

  func run(_ command: String, _ arguments: [String]) throws -> Program.Outcome {
    try Program.run(command, arguments, environment: environment)
  }

  /// The status of each of `ids` that Slurm still knows, in one squeue call (a job purged from
  /// squeue's memory is left out).
  func statuses(of ids: [String]) throws -> [String: SlurmJobStatus] {
    guard !ids.isEmpty else { return [:] }
    let outcome = try run("squeue", ["--states=all", "--noheader", "--jobs=" + ids.joined(separator: ","), "--format=" + Self.format])
    if outcome.status != 0 {
      // squeue refuses the whole list when one id is unknown to it; ask for each alone then.
      guard ids.count > 1, outcome.firstErrorLine?.contains("Invalid job id") == true else {
        throw SlurmCommandError(command: "squeue", message: outcome.firstErrorLine ?? "exit status \(outcome.status)")
      }
      var found: [String: SlurmJobStatus] = [:]
      for id in ids { found.merge(try statuses(of: [id])) { $1 } }
      return found
    }
    var found: [String: SlurmJobStatus] = [:]
    for status in Self.parse(outcome.output) { found[status.id] = status }
    return found
  }

  /// This user's jobs whose name starts with `namePrefix`, newest first.
  func jobs(namePrefix: String) throws -> [SlurmJobStatus] {
    let user = environment["USER"] ?? environment["LOGNAME"] ?? String(cString: getlogin() ?? strdup("root"))
    let outcome = try run("squeue", ["--states=all", "--noheader", "--user=" + user, "--format=" + Self.format])
    guard outcome.status == 0 else {
      throw SlurmCommandError(command: "squeue", message: outcome.firstErrorLine ?? "exit status \(outcome.status)")
    }
    return Self.parse(outcome.output).filter { $0.name.hasPrefix(namePrefix) }
      .sorted { (Int($0.id) ?? 0) > (Int($1.id) ?? 0) }
  }

  static func parse(_ text: String) -> [SlurmJobStatus] {
    text.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
      guard fields.count == 6, !fields[0].isEmpty else { return nil }
      let clean = { (text: String) -> String? in
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty || trimmed == "(null)" || trimmed == "None" ? nil : trimmed
      }
      return SlurmJobStatus(
        id: fields[0].trimmingCharacters(in: .whitespaces), state: SlurmJobState(fields[1].trimmingCharacters(in: .whitespaces)),
        reason: clean(fields[2]), node: clean(fields[3]), name: fields[4], comment: fields[5])
    }
  }

  /// `scontrol show job -o ID` as key=value pairs (JobState, ExitCode, Reason, NodeList, ...).
  func details(of id: String) throws -> [String: String] {
    let outcome = try run("scontrol", ["show", "job", "--oneliner", id])
    guard outcome.status == 0 else { return [:] }
    var values: [String: String] = [:]
    for word in outcome.output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
      guard let equals = word.firstIndex(of: "=") else { continue }
      values[String(word[..<equals])] = String(word[word.index(after: equals)...])
    }
    return values
  }

  /// Cancels the jobs, in one call.
  func cancel(_ ids: [String]) {
    guard !ids.isEmpty else { return }
    _ = try? run("scancel", ids)
  }
}

/// Watches every job of a `repro` with one squeue call per interval, however many there are;
/// streams each job's output file while it runs, and on SIGINT/SIGTERM cancels them all with
/// one scancel.
final class SlurmMonitor: @unchecked Sendable {
  /// How a watched job ended.
  struct Ended {
    var status: SlurmJobStatus
    /// True when dv was interrupted and cancelled the job.
    var interrupted: Bool
  }

  private struct Watch {
    var output: String
    var offset: Int64 = 0
    var sink: OutputSink
    var continuation: CheckedContinuation<Ended, Never>
    var lastStatus: SlurmJobStatus?
    /// Polls since Slurm stopped listing the job (purged, or a squeue hiccup).
    var missing = 0
    /// When the job was seen final while its exit file was not there yet (a shared filesystem
    /// shows files late).
    var finalSince: Date?
    /// When it was first seen waiting in the queue, and whether that was said.
    var pendingSince: Date?
    var pendingReported = false
  }

  let client: SlurmClient
  let interval: Double
  /// Where the jobs write their output and exit files.
  let jobDirectory: String
  private let watches = Locked<[String: Watch]>([:])
  private let polling = Locked(false)
  private let cancelledAll = Locked(false)
  /// How long a finished job's exit file may take to appear.
  static let exitFileGrace = 10.0
  /// Seconds a job waits in the queue before dv says so.
  static let pendingNotice = 5.0

  init(client: SlurmClient, interval: Double, jobDirectory: String) {
    self.client = client
    self.interval = interval
    self.jobDirectory = jobDirectory
  }

  /// Waits until job `id` is final, streaming its output file (from its start) to `sink`.
  func wait(for id: String, sink: OutputSink) async -> Ended {
    await withCheckedContinuation { continuation in
      watches.withLock { $0[id] = Watch(output: jobDirectory + "/\(id).out", sink: sink, continuation: continuation) }
      startPolling()
    }
  }

  /// Starts the polling thread unless it runs; it stops by itself when nothing is watched.
  private func startPolling() {
    let start = polling.withLock { running -> Bool in
      if running { return false }
      running = true
      return true
    }
    guard start else { return }
    let thread = Thread { [self] in self.poll() }
    thread.name = "dv slurm monitor"
    thread.start()
  }

  private func poll() {
    while true {
      Thread.sleep(forTimeInterval: interval)
      let ids = watches.withLock { Array($0.keys) }
      if ids.isEmpty {
        let stop = polling.withLock { running -> Bool in
          // A job registered between the snapshot and here keeps the loop alive.
          if watches.withLock({ $0.isEmpty }) {
            running = false
            return true
          }
          return false
        }
        if stop { return }
        continue
      }
      let interrupted = dv_received_signal() != 0
      if interrupted, !cancelledAll.withLock({ $0 }) {
        cancelledAll.withLock { $0 = true }
        client.cancel(ids)
      }
      // A failed squeue (slurmctld busy or restarting) says nothing about the jobs: ask again.
      let statuses = try? client.statuses(of: ids)
      let now = Date()
      for id in ids {
        var finished: (CheckedContinuation<Ended, Never>, Ended)?
        watches.withLock { all in
          guard var watch = all[id] else { return }
          Self.stream(&watch)
          if let status = statuses?[id] {
            watch.lastStatus = status
            watch.missing = 0
            // A job that waits in the queue for long is said to, once, with Slurm's reason:
            // otherwise a stage waiting for a node looks like a hung dv.
            if status.state == .pending {
              let since = watch.pendingSince ?? now
              watch.pendingSince = since
              if !watch.pendingReported, now.timeIntervalSince(since) >= Self.pendingNotice {
                watch.pendingReported = true
                watch.sink.note("dv: Slurm job \(id) is waiting in the queue (\(status.reason ?? "no reason given"))")
              }
            }
          } else if statuses != nil {
            watch.missing += 1
          }
          let exitFile = jobDirectory + "/\(id).exit"
          var status = watch.lastStatus
          if status == nil || watch.missing > 20 {
            // Not listed for a while: Slurm forgot it. Its exit file tells what happened.
            if watch.missing > 20 || FileSystem.exists(exitFile) {
              status = SlurmJobStatus(
                id: id, state: FileSystem.exists(exitFile) ? .completed : .other("UNKNOWN"), reason: nil, node: nil,
                name: "", comment: "")
            }
          }
          guard let final = status, final.state.isFinal else {
            all[id] = watch
            return
          }
          // The exit file is written just before the job ends; on a shared filesystem it may show
          // up a little later. A job that never started (no output file) has none to wait for.
          let waitForExitFile =
            !FileSystem.exists(exitFile) && FileSystem.exists(watch.output) && final.state != .cancelled
          if waitForExitFile {
            let since = watch.finalSince ?? now
            watch.finalSince = since
            if now.timeIntervalSince(since) < Self.exitFileGrace {
              all[id] = watch
              return
            }
          }
          Self.stream(&watch)
          all[id] = nil
          finished = (watch.continuation, Ended(status: final, interrupted: interrupted))
        }
        if let (continuation, ended) = finished { continuation.resume(returning: ended) }
      }
    }
  }

  /// Hands what the job wrote since the last look to its sink.
  private static func stream(_ watch: inout Watch) {
    let fd = dv_open(watch.output, O_RDONLY | O_CLOEXEC, 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(watch.offset)) }
      guard n > 0 else { return }
      watch.sink.write(Array(buffer[0..<n]))
      watch.offset += Int64(n)
    }
  }
}
