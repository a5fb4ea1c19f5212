import CDVSystem
import DVBasics
import DVPipeline
import DVStorage
import Foundation

/// Runs each stage run as one Slurm batch job: `sbatch --parsable` of `dv exec-stage` in the
/// stage's `wdir`, watched by one shared `squeue` call per poll for every job in flight, its
/// output streamed back from the job's output file. The workspace, `.pipeline/` and the dv
/// binary must be on a filesystem the nodes share (docs/cluster.md); a node that cannot see them
/// fails the stage with one line.
///
/// Jobs are named `dv.<workspace tag>.<stage>` and carry the run-cache key in their comment, so
/// a dv that was killed leaves jobs the next one finds and waits for rather than submitting again.
public final class SlurmExecutor: StageExecutor, @unchecked Sendable {
  public let kind = ExecutorKind.slurm

  /// What the executor needs to know of the workspace and the cluster.
  public struct Settings: Sendable {
    /// The workspace root (absolute, as the nodes see it).
    public var workspaceRoot: String
    /// The dv binary the job runs (this process's own, as the nodes see it).
    public var dvExecutable: String
    /// Seconds between two status queries.
    public var pollInterval: Double
    /// The environment of sbatch, squeue, scontrol and scancel (SLURM_CONF and PATH, say).
    public var environment: [String: String]

    public init(workspaceRoot: String, dvExecutable: String, pollInterval: Double, environment: [String: String]) {
      self.workspaceRoot = workspaceRoot
      self.dvExecutable = dvExecutable
      self.pollInterval = pollInterval
      self.environment = environment
    }
  }

  let settings: Settings
  /// `.pipeline/tmp/slurm`: job output, exit codes and visibility markers.
  let jobDirectory: String
  /// Eight hex digits of the workspace root's hash: job names of different workspaces differ.
  let workspaceTag: String
  let monitor: SlurmMonitor
  /// Jobs an earlier dv left, read once per run (one squeue call) on first need.
  private let earlierJobs = Locked<[SlurmJobStatus]?>(nil)

  public init(settings: Settings) {
    self.settings = settings
    jobDirectory = settings.workspaceRoot + "/.pipeline/tmp/slurm"
    workspaceTag = String(SHA256Hasher.hash(Array(settings.workspaceRoot.utf8)).hex.prefix(8))
    monitor = SlurmMonitor(
      client: SlurmClient(environment: settings.environment), interval: settings.pollInterval,
      jobDirectory: jobDirectory)
  }

  /// The job name of a stage's runs.
  func jobName(_ stage: Stage) -> String { "dv.\(workspaceTag).\(stage.name)" }

  /// The comment a job of this run carries: the run-cache key.
  static func comment(key: String) -> String { "dv:" + key }

  /// Every job still known to Slurm whose name is one of this workspace's, newest first.
  private func jobsOfEarlierRuns() throws -> [SlurmJobStatus] {
    if let known = earlierJobs.withLock({ $0 }) { return known }
    let found: [SlurmJobStatus]
    do {
      found = try monitor.client.jobs(namePrefix: "dv.\(workspaceTag).")
    } catch {
      throw ClusterError.slurmUnavailable("\(error)")
    }
    earlierJobs.withLock { $0 = found }
    return found
  }

  /// The job an earlier dv started for exactly this run: still queued or running, or finished
  /// with exit code 0 and its output recorded in its exit file.
  private func earlierJob(for job: StageJob) throws -> SlurmJobStatus? {
    let name = jobName(job.stage)
    let comment = Self.comment(key: job.key)
    for candidate in try jobsOfEarlierRuns() where candidate.name == name && candidate.comment == comment {
      if !candidate.state.isFinal { return candidate }
      if candidate.state == .completed, readExit(jobID: candidate.id)?.code == 0 { return candidate }
    }
    return nil
  }

  public func hasExistingJob(for job: StageJob) throws -> Bool {
    try earlierJob(for: job) != nil
  }

  public func run(_ job: StageJob, attempt: Int) async throws -> ExecutionRecord {
    let adopted = attempt == 1 ? try earlierJob(for: job) : nil
    let jobID: String
    let submittedAt = Date()
    if let adopted {
      jobID = adopted.id
      job.context.log("dv: waiting for Slurm job \(jobID), which an earlier dv started for this run")
    } else {
      jobID = try submit(job)
    }
    let sink = OutputSink(context: job.context)
    let ended = await monitor.wait(for: jobID, sink: sink)
    sink.flush()
    let exit = readExit(jobID: jobID)
    var record = ExecutionRecord(
      executor: .slurm, jobID: jobID, node: exit?.node ?? ended.status.node, state: ended.status.state.rawValue)
    if let exit {
      // Times the job's wrapper took on its node: when dv's command started and ended there.
      if adopted == nil { record.queueSeconds = max(0, exit.started - submittedAt.timeIntervalSince1970) }
      record.runSeconds = max(0, exit.ended - exit.started)
    }
    removeJobFiles(jobID, key: job.key)
    if ended.interrupted {
      record.state = SlurmJobState.cancelled.rawValue
      throw ExecutionFailure(.interrupted, record: record)
    }
    switch (ended.status.state, exit?.code) {
    case (.completed, 0):
      return record
    case (let state, let code?) where code != 0 && state.isFailureOfTheCommand:
      // The stage's own command failed: reported as a local failure is, with its exit code.
      throw ExecutionFailure(.exited(code), record: record)
    default:
      throw ExecutionFailure(
        .failed(describeFailure(jobID, ended.status, exitCode: exit?.code)), record: record)
    }
  }

  /// One line on why a job did not succeed, with Slurm's State, ExitCode and Reason.
  private func describeFailure(_ jobID: String, _ status: SlurmJobStatus, exitCode: Int32?) -> String {
    let details = (try? monitor.client.details(of: jobID)) ?? [:]
    var facts = ["State=\(details["JobState"] ?? status.state.rawValue)"]
    if let code = details["ExitCode"] { facts.append("ExitCode=\(code)") }
    if let reason = details["Reason"], reason != "None" { facts.append("Reason=\(reason)") }
    let node = status.node ?? details["NodeList"] ?? "?"
    var line = "Slurm job \(jobID) on node \(node) ended \(facts.joined(separator: ", "))"
    switch status.state {
    case .timeout: line += "; it ran past its time limit (resources.time)"
    case .outOfMemory: line += "; it ran out of memory (resources.mem)"
    case .cancelled: line += "; it was cancelled (scancel)"
    case .nodeFail: line += "; its node failed"
    case .preempted: line += "; it was preempted"
    default: break
    }
    if exitCode == nil, status.state != .cancelled, status.state != .timeout {
      // No exit file: the job never got to run dv's wrapper to its end. The usual cause is a node
      // without the workspace: Slurm cannot even open the job's output file there.
      if status.state == .failed || status.state == .other("UNKNOWN") {
        line += "; it left no exit code in \(relative(jobDirectory)): can node \(node) see the workspace \(settings.workspaceRoot) and \(settings.dvExecutable)? They must be on a filesystem shared with the nodes (docs/cluster.md)"
      }
    }
    return line
  }

  // MARK: - Submitting

  /// Submits the job and returns its id.
  private func submit(_ job: StageJob) throws -> String {
    try FileSystem.createDirectory(jobDirectory)
    let marker = jobDirectory + "/\(job.key.prefix(16)).visible"
    try FileSystem.writeAtomically(settings.workspaceRoot + "\n", to: marker)
    let stage = job.stage
    let directory = stage.wdir.absolute(under: settings.workspaceRoot)
    let arguments =
      [
        "--parsable", "--job-name=\(jobName(stage))", "--comment=\(Self.comment(key: job.key))",
        "--output=\(jobDirectory)/%j.out", "--chdir=\(directory)", "--export=ALL",
      ] + job.resources.sbatchOptions + ["--wrap", wrapper(job, marker: marker)]
    let outcome: Program.Outcome
    do {
      outcome = try monitor.client.run("sbatch", arguments)
    } catch {
      throw StageRunError.couldNotStart("\(error) (is Slurm installed here, with sbatch on PATH?)")
    }
    let id = outcome.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init)
    guard outcome.status == 0, let id, !id.isEmpty, id.allSatisfy(\.isNumber) else {
      throw StageRunError.couldNotStart(
        "sbatch refused the job: \(outcome.firstErrorLine ?? "exit status \(outcome.status)")")
    }
    return id
  }

  /// The job's shell script: check that this node sees the workspace (the marker dv just wrote),
  /// run the stage through dv, and leave its exit code, its start and end times and the node's
  /// name where the submitting dv reads them (written whole, then renamed).
  private func wrapper(_ job: StageJob, marker: String) -> String {
    let quote = Self.shellQuote
    let exitFile = quote(jobDirectory) + "/\"$SLURM_JOB_ID\".exit"
    let shown = { (text: String) in text.filter { $0 != "\"" && $0 != "$" && $0 != "`" && $0 != "\\" } }
    return """
      started=$(date +%s.%N)
      if [ ! -f \(quote(marker)) ]; then echo "dv: node $(hostname) cannot see the workspace \(shown(settings.workspaceRoot)) (no \(shown(marker)))" >&2; exit 97; fi
      \(quote(settings.dvExecutable)) exec-stage --fingerprint \(quote(job.fingerprint)) -- \(quote(job.stage.name))
      code=$?
      echo "$code $started $(date +%s.%N) ${SLURMD_NODENAME:-$(hostname -s)}" > \(exitFile).tmp && mv \(exitFile).tmp \(exitFile)
      exit "$code"
      """
  }

  static func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

  // MARK: - Job files

  /// What the job's wrapper wrote when dv's command ended: its exit code, start and end (seconds
  /// since the epoch) and node; nil when there is nothing (yet).
  func readExit(jobID: String) -> (code: Int32, started: Double, ended: Double, node: String?)? {
    guard let text = (try? FileSystem.readTextIfPresent(jobDirectory + "/\(jobID).exit")) ?? nil else { return nil }
    let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    guard fields.count >= 3, let code = Int32(fields[0]), let started = Double(fields[1]), let ended = Double(fields[2])
    else { return nil }
    return (code, started, ended, fields.count > 3 ? fields[3] : nil)
  }

  private func removeJobFiles(_ jobID: String, key: String) {
    for suffix in [".out", ".exit"] { unlink(jobDirectory + "/\(jobID)" + suffix) }
    unlink(jobDirectory + "/\(key.prefix(16)).visible")
  }

  private func relative(_ path: String) -> String {
    path.hasPrefix(settings.workspaceRoot + "/") ? String(path.dropFirst(settings.workspaceRoot.count + 1)) : path
  }
}

/// Hands a job's output lines to the stage's output (prefixed with `[stage]` by repro when stages
/// run in parallel), or to dv's stdout, as a local stage's output goes.
final class OutputSink: @unchecked Sendable {
  private let context: StageContext
  private var partial: [UInt8] = []

  init(context: StageContext) { self.context = context }

  /// New bytes of the output file.
  func write(_ bytes: [UInt8]) {
    partial += bytes
    guard let last = partial.lastIndex(of: UInt8(ascii: "\n")) else { return }
    let complete = partial[...last]
    partial.removeSubrange(...last)
    if let output = context.output {
      for line in complete.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
        output(String(decoding: line, as: UTF8.self))
      }
    } else {
      Array(complete).withUnsafeBytes { try? FileSystem.writeAll(1, $0, path: "stdout") }
    }
  }

  /// A line of dv's own about the job (it waits in the queue): through the stage's log, as the
  /// stage's own lines go.
  func note(_ line: String) { context.log(line) }

  /// What is left without a final newline.
  func flush() {
    guard !partial.isEmpty else { return }
    write([UInt8(ascii: "\n")])
  }
}

/// Errors of the cluster executors that stop a repro before any stage fails.
public enum ClusterError: DVError {
  /// Slurm's commands are missing or its controller does not answer.
  case slurmUnavailable(String)

  public var kind: FailureKind { .failed }

  public var description: String {
    switch self {
    case .slurmUnavailable(let problem):
      return "Slurm does not answer (\(problem)); check `sinfo` and SLURM_CONF, or run with --executor local"
    }
  }
}
