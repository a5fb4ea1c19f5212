/// How a failure should end the process: the exit code contract of docs/architecture.md §1.
public enum FailureKind: Sendable, Equatable {
  /// Bad usage or bad input (malformed file, path outside the workspace): exit code 2.
  case badInput
  /// A check failed, or an operation could not complete: exit code 1.
  case failed
  /// Stopped by SIGINT or SIGTERM: exit code 130.
  case interrupted

  /// The process exit code for this kind of failure.
  public var exitCode: Int32 {
    switch self {
    case .badInput: return 2
    case .failed: return 1
    case .interrupted: return 130
    }
  }
}

/// An error dv reports to the user as one line; every domain error enum conforms.
public protocol DVError: Error, CustomStringConvertible, Sendable {
  /// Whether this is the user's input (exit 2) or a failure of the operation (exit 1).
  var kind: FailureKind { get }
}

/// A place in a text file, for errors that point into YAML or ignore files.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
  /// Workspace-relative (or user-given) file path.
  public var file: String
  /// 1-based line.
  public var line: Int
  /// 1-based column.
  public var column: Int

  public init(file: String, line: Int, column: Int) {
    self.file = file
    self.line = line
    self.column = column
  }

  public var description: String { "\(file):\(line):\(column)" }
}

/// A failed system call, wrapped with what dv was doing when it failed.
public struct SystemError: DVError {
  /// What dv was doing, e.g. "reading 'data/raw/a.csv'".
  public var action: String
  /// The errno value.
  public var code: Int32

  public init(_ action: String, errno code: Int32) {
    self.action = action
    self.code = code
  }

  /// ENOSPC and friends are faults of the machine, not of the input.
  public var kind: FailureKind { .failed }

  public var description: String {
    if isOutOfSpace {
      // What to do matters more than errno's words here; nothing was left half-written.
      let what = code == EDQUOT ? "the disk quota is used up" : "no space left on device"
      return "\(action): \(what); free some space (`dv gc` removes cache objects nothing references) and run it again"
    }
    return "\(action): \(String(cString: strerror(code)))"
  }

  /// True when the file or directory did not exist.
  public var isNotFound: Bool { code == ENOENT }

  /// True when the filesystem (or the user's quota on it) is full.
  public var isOutOfSpace: Bool { code == ENOSPC || code == EDQUOT }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
