import DVBasics

/// Passes the body of a (maybe ranged) GET to an `ObjectSink`, telling it where the body starts
/// in the object: at the `Content-Range` start of a 206, at 0 of any other success (a server
/// that ignored the range sends the whole object). The S3 and GCS remotes' `read` use it.
package final class RangedBodySink: HTTPResponseSink {
  private let sink: ObjectSink
  /// The first byte asked for (0 without a range).
  private let requestedStart: Int64
  /// The object's URL, for messages.
  private let url: String
  /// The object offset just past the last byte written in the current attempt.
  package private(set) var end: Int64 = 0
  /// The object's size as a 206's `Content-Range` gives it; nil when it does not.
  private var objectSize: Int64?

  package init(_ sink: ObjectSink, requestedStart: Int64, url: String) {
    self.sink = sink
    self.requestedStart = requestedStart
    self.url = url
  }

  package func begin(_ response: HTTPResponse) throws {
    var start: Int64 = 0
    objectSize = nil
    if response.status == 206 {
      let header = response.headers["Content-Range"] ?? ""
      guard let (first, total) = Self.parseContentRange(header) else {
        throw RemoteError.server(
          url: url, status: 206, message: "the partial response has no usable Content-Range ('\(header)')")
      }
      guard first == requestedStart else {
        throw RemoteError.server(
          url: url, status: 206,
          message: "asked for bytes from \(requestedStart) but the server sent bytes from \(first)")
      }
      start = first
      objectSize = total
    }
    end = start
    try sink.begin(at: start)
  }

  package func write(_ bytes: UnsafeRawBufferPointer) throws {
    end += Int64(bytes.count)
    try sink.write(bytes)
  }

  /// The first byte position and the total size (nil for `*`) of a `Content-Range: bytes
  /// a-b/total` value; nil when it is not one.
  package static func parseContentRange(_ value: String) -> (first: Int64, total: Int64?)? {
    let trimmed = value.drop { $0 == " " }
    guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
    let spec = trimmed.dropFirst("bytes ".count).drop { $0 == " " }
    guard let dash = spec.firstIndex(of: "-"), let first = Int64(spec[..<dash]), first >= 0 else { return nil }
    let total = spec.firstIndex(of: "/").flatMap { Int64(spec[spec.index(after: $0)...]) }
    return (first, total)
  }

  /// The `Range` header value for `range`, which must not be empty: `bytes=lo-(hi-1)`.
  package static func rangeHeader(_ range: Range<Int64>) -> String {
    "bytes=\(range.lowerBound)-\(range.upperBound - 1)"
  }

  /// Checks, after a successful transfer, that the bytes reached the end of `range`: a server
  /// clamps a range that runs past the object's end, and ignores one it does not support.
  package func requireEnd(of range: Range<Int64>?, status: Int) throws {
    guard let range, end < range.upperBound else { return }
    // A 200 sent the whole object; a 206 names its size (or '*').
    let size = status == 206 ? objectSize : end
    throw RemoteError.server(
      url: url, status: status,
      message: "the range \(range.lowerBound)..<\(range.upperBound) lies outside the object"
        + (size.map { ", which has \($0) bytes" } ?? ""))
  }
}
