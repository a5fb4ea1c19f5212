import CDVSystem
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// An exclusive advisory lock (flock) on a file, held until `release` or process exit.
///
/// The kernel drops the lock when the process dies, so a `kill -9` never leaves a stale lock.
/// The holder writes its pid into the file so a waiting process can name it.
public final class FileLock {
  /// The lock could not be taken in time.
  public struct Busy: DVError {
    /// The pid of the holder, when it could be read.
    public let holder: Int32?
    public var kind: FailureKind { .failed }
    public var description: String {
      let who = holder.map { "another dv process (pid \($0))" } ?? "another dv process"
      return "\(who) is using this workspace; wait for it to finish, or stop it"
    }
  }

  private var fd: Int32
  private let path: String

  /// Takes the lock at `path`, polling for up to `timeout` seconds while another process holds it.
  public init(path: String, timeout: Double) throws {
    self.path = path
    fd = dv_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    if fd < 0 { throw SystemError("opening the lock file '\(path)'", errno: errno) }
    let deadline = Date().addingTimeInterval(timeout)
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      guard errno == EWOULDBLOCK || errno == EINTR else {
        let err = errno
        close(fd)
        throw SystemError("locking '\(path)'", errno: err)
      }
      if Date() >= deadline {
        let holder = Self.readHolder(fd)
        close(fd)
        throw Busy(holder: holder)
      }
      usleep(20_000)
    }
    let pid = Array("\(getpid())\n".utf8)
    ftruncate(fd, 0)
    _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
  }

  private static func readHolder(_ fd: Int32) -> Int32? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return nil }
    return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
  }

  /// Releases the lock (also done on deinit).
  public func release() {
    if fd >= 0 {
      ftruncate(fd, 0)
      flock(fd, LOCK_UN)
      close(fd)
      fd = -1
    }
  }

  deinit { release() }
}
