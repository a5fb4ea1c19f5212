import DVBasics
import Foundation

/// Resumable uploads (for files above `GCSTuning.resumableThreshold`): a session is started, the
/// file goes up in chunks of `GCSTuning.chunkSize` bytes, and after a dropped chunk the session
/// is asked how much it holds and the upload goes on from there. The object appears only when
/// the last byte has arrived.
extension GCSRemote {
  /// A session the server has forgotten (404 or 410): the upload starts over in a new one.
  private struct SessionGone: Error {}

  func resumableUpload(from path: String, size: Int64, to key: String, progress: @escaping (Int64) -> Void) throws {
    let reporter = GCSProgressDeltas(progress)
    var sessions = 0
    while true {
      let session = try startSession(size: size, key: key)
      do {
        try sendChunks(of: path, size: size, to: session, key: key, reporter: reporter)
        return
      } catch is SessionGone {
        sessions += 1
        reporter.at(0)
        guard sessions <= tuning.retry.retries else {
          throw RemoteError.server(
            url: remoteURL(key), status: 410, message: "the resumable upload session expired again and again; try again"
          )
        }
      }
    }
  }

  /// Starts a session and returns its URI (which authorises the chunks by itself).
  private func startSession(size: Int64, key: String) throws -> String {
    let url =
      "\(endpoint)/upload/storage/v1/b/\(GCSURL.encode(bucket))/o?uploadType=resumable"
      + "&name=\(GCSURL.encode(prefix + key))"
    let metadata = try JSONSerialization.data(withJSONObject: ["name": prefix + key])
    let request = HTTPRequest(
      .post, url: url,
      headers: [
        "Content-Type": "application/json; charset=UTF-8", "X-Upload-Content-Type": "application/octet-stream",
        "X-Upload-Content-Length": String(size),
      ], body: .bytes([UInt8](metadata)))
    let response = try perform(request, key: key)
    guard response.isSuccess else {
      if response.status == 404 { throw RemoteError.noSuchBucket(url: displayURL) }
      throw failure(response, key: key)
    }
    guard let session = response.headers["Location"], !session.isEmpty else {
      throw RemoteError.server(
        url: remoteURL(key), status: response.status, message: "the resumable upload was started without a session URI")
    }
    return session
  }

  /// Sends the file from wherever the session stands until the server has all of it.
  private func sendChunks(
    of path: String, size: Int64, to session: String, key: String, reporter: GCSProgressDeltas
  ) throws {
    var offset: Int64 = 0
    // An empty upload has no chunk to send: asking the status with "bytes */0" finalises it.
    var needStatus = size == 0
    // Consecutive failed attempts without progress; progress resets it.
    var failures = 0
    while true {
      let attempt: Result<HTTPResponse, Error>
      let sentFrom = offset
      if needStatus {
        let request = HTTPRequest(
          .put, url: session, headers: ["Content-Range": "bytes */\(size)"], followRedirects: false)
        attempt = Result { try transport.send(request) }
      } else {
        let length = min(tuning.chunkSize, size - offset)
        let request = HTTPRequest(
          .put, url: session,
          headers: ["Content-Range": "bytes \(offset)-\(offset + length - 1)/\(size)", "Expect": ""],
          body: .file(path: path, offset: offset, length: length), followRedirects: false)
        attempt = Result {
          try transport.send(request, into: nil, progress: { reporter.at(sentFrom + $0.sent) })
        }
      }

      var retryAfter: Double?
      let problem: RemoteError
      switch attempt {
      case .success(let response) where response.isSuccess:
        reporter.at(size)
        return
      case .success(let response) where response.status == 308:
        // "Range: bytes=0-N" says the first N+1 bytes are stored; no Range: none are.
        let stored = Self.storedBytes(response.headers["Range"])
        let answeredStatus = needStatus
        offset = stored
        reporter.at(stored)
        if stored < size {
          needStatus = false
          if answeredStatus { continue }
          if stored > sentFrom {
            failures = 0
            continue
          }
          problem = .server(url: remoteURL(key), status: 308, message: "the upload session stored none of a chunk")
        } else {
          // Every byte is there (or there are none) but the object is not final yet: ask again.
          needStatus = true
          problem = .server(
            url: remoteURL(key), status: 308,
            message: "the upload session holds every byte but did not finish the object")
        }
      case .success(let response) where response.status == 404 || response.status == 410:
        throw SessionGone()
      case .success(let response) where RetryPolicy.isRetryable(status: response.status):
        problem = failure(response, key: key)
        retryAfter = RetryPolicy.retryAfter(response.headers)
        needStatus = true
      case .success(let response):
        throw failure(response, key: key)
      case .failure(let error as HTTPError) where error.isTransient:
        problem = .transport(url: remoteURL(key), message: Self.detail(of: error))
        needStatus = true
      case .failure(let error as HTTPError):
        throw RemoteError.transport(url: remoteURL(key), message: Self.detail(of: error))
      case .failure(let error):
        throw error
      }
      failures += 1
      guard failures <= tuning.retry.retries else { throw problem }
      tuning.retry.sleep(tuning.retry.delay(beforeRetry: failures, retryAfter: retryAfter))
    }
  }

  /// The number of bytes a `Range: bytes=0-N` header says the session holds (0 when absent).
  static func storedBytes(_ range: String?) -> Int64 {
    guard let range, let dash = range.lastIndex(of: "-"), let last = Int64(range[range.index(after: dash)...]) else {
      return 0
    }
    return last + 1
  }
}
