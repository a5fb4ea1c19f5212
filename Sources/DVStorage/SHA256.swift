import COpenSSL
import DVBasics

#if canImport(Glibc)
  import Glibc
#endif

/// Incremental SHA-256 through OpenSSL's EVP interface (SHA-NI where the CPU has it).
public struct SHA256Hasher: ~Copyable {
  private let context: OpaquePointer

  /// OpenSSL reads openssl.cnf on first use unless told not to; hashing needs none of it.
  private static let initialized: Bool = {
    OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_LOAD_CONFIG), nil)
    return true
  }()

  public init() {
    _ = Self.initialized
    context = EVP_MD_CTX_new()
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
  }

  deinit { EVP_MD_CTX_free(context) }

  /// Feeds bytes.
  public mutating func update(_ buffer: UnsafeRawBufferPointer) {
    if buffer.count > 0 { EVP_DigestUpdate(context, buffer.baseAddress, buffer.count) }
  }

  /// Feeds bytes.
  public mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// Finishes and returns the digest; the hasher is reset for reuse.
  public mutating func finalize() -> ObjectID {
    var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    EVP_DigestFinal_ex(context, &digest, &length)
    EVP_DigestInit_ex(context, EVP_sha256(), nil)
    return ObjectID(bytes: Array(digest[0..<32]))
  }

  /// The digest of `bytes`.
  public static func hash(_ bytes: [UInt8]) -> ObjectID {
    var hasher = SHA256Hasher()
    hasher.update(bytes)
    return hasher.finalize()
  }

  /// The digest of a file, streamed with large reads through `buffer` (never the whole file in
  /// memory). Returns the id and the number of bytes read.
  public static func hashFile(
    _ path: String, buffer: UnsafeMutableRawBufferPointer, progress: ProgressReporter? = nil
  ) throws -> (ObjectID, Int64) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw SystemError("opening '\(path)' to hash it", errno: errno) }
    defer { close(fd) }
    return try hashDescriptor(fd, path: path, buffer: buffer, progress: progress)
  }

  /// The digest of everything readable from `fd`.
  public static func hashDescriptor(
    _ fd: Int32, path: String, buffer: UnsafeMutableRawBufferPointer, progress: ProgressReporter? = nil
  ) throws -> (ObjectID, Int64) {
    var hasher = SHA256Hasher()
    var total: Int64 = 0
    while true {
      let n = read(fd, buffer.baseAddress, buffer.count)
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("reading '\(path)'", errno: errno)
      }
      if n == 0 { break }
      hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
      total += Int64(n)
      progress?.advance(items: 0, bytes: Int64(n))
    }
    return (hasher.finalize(), total)
  }
}

/// A reusable, page-aligned read buffer for one worker thread.
public final class IOBuffer: @unchecked Sendable {
  /// The buffer's bytes.
  public let bytes: UnsafeMutableRawBufferPointer

  /// 1 MiB by default: large reads keep a streaming hash at disk speed.
  public init(size: Int = 1 << 20) {
    bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
  }

  deinit { bytes.deallocate() }
}
