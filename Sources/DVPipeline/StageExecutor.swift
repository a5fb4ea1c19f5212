import DVBasics
import Foundation

/// How and where one stage run was carried out, for the lineage ledger.
public struct ExecutionRecord: Sendable, Equatable {
  public var executor: ExecutorKind
  /// The scheduler's job id (nil for local runs).
  public var jobID: String?
  /// The node the job ran on.
  public var node: String?
  /// Seconds from submission until the job started, as dv's polling saw it.
  public var queueSeconds: Double?
  /// Seconds the job ran.
  public var runSeconds: Double?
  /// The scheduler's final state: COMPLETED, FAILED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, ...
  public var state: String?
  /// Runs started for this stage run: 1, or more after `retries:`.
  public var attempts = 1

  public init(
    executor: ExecutorKind, jobID: String? = nil, node: String? = nil, queueSeconds: Double? = nil,
    runSeconds: Double? = nil, state: String? = nil
  ) {
    self.executor = executor
    self.jobID = jobID
    self.node = node
    self.queueSeconds = queueSeconds
    self.runSeconds = runSeconds
    self.state = state
  }
}

/// One stage run handed to an executor.
public struct StageJob: Sendable {
  public var context: StageContext
  public var plugin: any StagePlugin
  /// The stage's `resources:` over the config's defaults.
  public var resources: StageResources
  /// The run-cache key: what the run computes; a cluster job carries it, so a later dv finds it.
  public var key: String
  /// The stage's identity (its fingerprint in stages.lock), checked where the job runs.
  public var fingerprint: String

  public var stage: Stage { context.stage }

  public init(
    context: StageContext, plugin: any StagePlugin, resources: StageResources, key: String, fingerprint: String
  ) {
    self.context = context
    self.plugin = plugin
    self.resources = resources
    self.key = key
    self.fingerprint = fingerprint
  }
}

/// A stage run failed where it ran; `record` says how (a cluster job's state and reason).
public struct ExecutionFailure: Error, Sendable {
  public var error: StageRunError
  public var record: ExecutionRecord

  public init(_ error: StageRunError, record: ExecutionRecord) {
    self.error = error
    self.record = record
  }
}

/// Runs stage work somewhere: here (`LocalExecutor`) or on a cluster's scheduler. `repro` keeps
/// the rest (staleness, output removal, hashing, the lock file, the ledger), so another kind of
/// executor is one new type behind this protocol.
public protocol StageExecutor: AnyObject, Sendable {
  var kind: ExecutorKind { get }
  /// True when a job of an earlier dv (killed meanwhile) is doing exactly this stage run, or
  /// finished it: `run` then waits for that job instead of starting another, and the stage's
  /// outputs must not be removed first.
  func hasExistingJob(for job: StageJob) throws -> Bool
  /// Runs the job to its end; throws `StageRunError` (or `ExecutionFailure` wrapping one) as a
  /// plugin does. `attempt` counts from 1 (`retries:` starts later ones).
  func run(_ job: StageJob, attempt: Int) async throws -> ExecutionRecord
}

/// Runs stages on this machine, as children of dv: the plugin's `run` as it always did.
public final class LocalExecutor: StageExecutor {
  public let kind = ExecutorKind.local

  public init() {}

  public func hasExistingJob(for job: StageJob) throws -> Bool { false }

  public func run(_ job: StageJob, attempt: Int) async throws -> ExecutionRecord {
    let started = Date()
    try await job.plugin.run(job.context)
    return ExecutionRecord(executor: .local, runSeconds: Date().timeIntervalSince(started))
  }
}
