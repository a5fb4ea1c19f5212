import CDVSystem
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a program found on PATH, without a shell, with stdin from /dev/null and its stdout and
/// stderr captured: git for the hooks, Slurm's sbatch/squeue/scancel for the cluster executor.
///
/// posix_spawnp rather than Foundation's Process, which costs several milliseconds more per call:
/// the hooks and the cluster's polling loop call programs often, and each millisecond counts.
public enum Program {
  /// What a finished program left.
  public struct Outcome: Sendable {
    /// The exit code, or 128 + the signal that killed it.
    public var status: Int32
    public var stdout: Data
    public var stderr: Data

    /// stdout as text.
    public var output: String { String(decoding: stdout, as: UTF8.self) }
    /// stderr's first non-empty line, for a one-line error.
    public var firstErrorLine: String? {
      String(decoding: stderr, as: UTF8.self).split(separator: "\n").first { !$0.isEmpty }.map(String.init)
    }
  }

  /// A started program whose output `finish` reads.
  public struct Running: Sendable {
    public let pid: pid_t
    let output: Int32
    let errors: Int32

    /// Waits for the program and returns what it printed and how it ended. stderr is read on
    /// another thread, so a program that writes much to both never blocks on a full pipe.
    public func finish() -> Outcome {
      let errors = self.errors
      let problem = Locked(Data())
      let group = DispatchGroup()
      DispatchQueue.global().async(group: group) {
        let data = FileHandle(fileDescriptor: errors, closeOnDealloc: true).readDataToEndOfFile()
        problem.withLock { $0 = data }
      }
      let data = FileHandle(fileDescriptor: output, closeOnDealloc: true).readDataToEndOfFile()
      group.wait()
      return Outcome(status: dv_wait_exit_code(pid), stdout: data, stderr: problem.withLock { $0 })
    }
  }

  /// Could not start the program (not on PATH, no pipes).
  public struct StartFailure: Error, CustomStringConvertible {
    public var program: String
    public var reason: String
    public var description: String { "cannot run \(program): \(reason)" }
  }

  /// Starts `program` (looked up on PATH) with `arguments` and `environment`, without waiting.
  public static func start(
    _ program: String, _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> Running {
    var output: [Int32] = [-1, -1]
    var errors: [Int32] = [-1, -1]
    guard dv_pipe_cloexec(&output) == 0 else { throw StartFailure(program: program, reason: "no pipe") }
    guard dv_pipe_cloexec(&errors) == 0 else {
      close(output[0])
      close(output[1])
      throw StartFailure(program: program, reason: "no pipe")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for p in argv { free(p) }
      for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, program, &actions, nil, argv, envp)
    close(output[1])
    close(errors[1])
    guard result == 0 else {
      close(output[0])
      close(errors[0])
      throw StartFailure(program: program, reason: String(cString: strerror(result)))
    }
    return Running(pid: pid, output: output[0], errors: errors[0])
  }

  /// Runs `program` to its end.
  public static func run(
    _ program: String, _ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> Outcome {
    try start(program, arguments, environment: environment).finish()
  }
}
