import CZlib
import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Where a table reader's bytes come from: a plain file, or a gzip file inflated on the fly.
protocol ByteSource: AnyObject {
  /// Fills up to `count` bytes at `destination`; 0 at the end of the data.
  func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int
  func close()
}

/// The text of errno for messages.
func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// Reads a file descriptor with plain read(2) calls.
final class FileByteSource: ByteSource {
  private var fd: Int32
  private let displayName: String

  init(path: String, displayName: String) throws {
    fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw TableError.io(file: displayName, message: "cannot open: \(errnoText()); check that it exists") }
    self.displayName = displayName
    posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
  }

  deinit { close() }

  func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
    while true {
      let n = Glibc.read(fd, destination, count)
      if n >= 0 { return n }
      if errno == EINTR { continue }
      throw TableError.io(file: displayName, message: "cannot read: \(errnoText())")
    }
  }

  func close() {
    if fd >= 0 {
      Glibc.close(fd)
      fd = -1
    }
  }
}

/// Inflates gzip data (one or more concatenated members, as `cat a.gz b.gz` makes) from another source.
final class GzipByteSource: ByteSource {
  private let input: ByteSource
  private let displayName: String
  private var stream = z_stream()
  private let compressed: UnsafeMutableRawPointer
  private let compressedCapacity = 1 << 20
  private var inputEnded = false
  private var streamEnded = false
  private var initialized = false

  init(input: ByteSource, displayName: String) throws {
    self.input = input
    self.displayName = displayName
    compressed = UnsafeMutableRawPointer.allocate(byteCount: compressedCapacity, alignment: 16)
    // 15 + 32: a zlib or gzip header, detected automatically.
    let status = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else {
      compressed.deallocate()
      throw TableError.io(file: displayName, message: "cannot start gzip decompression (zlib error \(status))")
    }
    initialized = true
  }

  deinit {
    if initialized { inflateEnd(&stream) }
    compressed.deallocate()
    input.close()
  }

  func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
    stream.next_out = destination.assumingMemoryBound(to: Bytef.self)
    stream.avail_out = uInt(min(count, Int(UInt32.max)))
    while stream.avail_out > 0 {
      if stream.avail_in == 0 && !inputEnded {
        let n = try input.read(into: compressed, count: compressedCapacity)
        if n == 0 {
          inputEnded = true
        } else {
          stream.next_in = compressed.assumingMemoryBound(to: Bytef.self)
          stream.avail_in = uInt(n)
        }
      }
      if stream.avail_in == 0 && inputEnded {
        if !streamEnded && stream.total_in > 0 {
          throw TableError.io(file: displayName, message: "the gzip data ends early; the file is truncated")
        }
        if stream.total_in == 0 && !streamEnded {
          throw TableError.io(file: displayName, message: "the file is empty, not gzip data; write it with gzip")
        }
        break
      }
      if streamEnded {
        // Another gzip member follows the one that ended.
        inflateReset(&stream)
        streamEnded = false
      }
      let status = inflate(&stream, Z_NO_FLUSH)
      switch status {
      case Z_OK, Z_BUF_ERROR: break
      case Z_STREAM_END: streamEnded = true
      default:
        let reason = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
        throw TableError.io(file: displayName, message: "is not valid gzip data (\(reason)); check the file")
      }
      if streamEnded && stream.avail_in == 0 && inputEnded { break }
    }
    return count - Int(stream.avail_out)
  }

  func close() { input.close() }
}

/// Where a table writer's bytes go: a file descriptor, through gzip's deflate when asked.
final class ByteSink {
  private let fd: Int32
  private let path: String
  private let gzip: Bool
  private var stream = z_stream()
  private var deflating = false
  private let compressed: UnsafeMutableRawPointer
  private let compressedCapacity = 1 << 20

  init(fd: Int32, path: String, gzip: Bool) throws {
    self.fd = fd
    self.path = path
    self.gzip = gzip
    compressed = UnsafeMutableRawPointer.allocate(byteCount: compressedCapacity, alignment: 16)
    if gzip {
      // 15 + 16: a gzip header and trailer around the deflate stream; level 6 is gzip's default.
      let status = deflateInit2_(
        &stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
      guard status == Z_OK else {
        compressed.deallocate()
        throw TableError.io(file: path, message: "cannot start gzip compression (zlib error \(status))")
      }
      deflating = true
    }
  }

  deinit {
    if deflating { deflateEnd(&stream) }
    compressed.deallocate()
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    guard gzip else { return try writeFile(bytes) }
    guard bytes.count > 0 else { return }
    stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self))
    stream.avail_in = uInt(bytes.count)
    try deflateAvailable(flush: Z_NO_FLUSH)
  }

  /// Ends the gzip stream (a no-op for plain files).
  func finish() throws {
    guard gzip else { return }
    stream.next_in = nil
    stream.avail_in = 0
    try deflateAvailable(flush: Z_FINISH)
  }

  private func deflateAvailable(flush: Int32) throws {
    while true {
      stream.next_out = compressed.assumingMemoryBound(to: Bytef.self)
      stream.avail_out = uInt(compressedCapacity)
      let status = deflate(&stream, flush)
      if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR {
        throw TableError.io(file: path, message: "gzip compression failed (zlib error \(status))")
      }
      let produced = compressedCapacity - Int(stream.avail_out)
      if produced > 0 { try writeFile(UnsafeRawBufferPointer(start: compressed, count: produced)) }
      if flush == Z_FINISH {
        if status == Z_STREAM_END { return }
      } else if stream.avail_in == 0 && stream.avail_out > 0 {
        return
      }
    }
  }

  private func writeFile(_ bytes: UnsafeRawBufferPointer) throws {
    do {
      try FileSystem.writeAll(fd, bytes, path: path)
    } catch {
      throw TableError.io(file: path, message: "cannot write: \(error); check free space")
    }
  }
}
