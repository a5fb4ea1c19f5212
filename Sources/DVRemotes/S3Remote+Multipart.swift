import DVBasics
import Foundation

extension S3Remote {
  /// Uploads a large file in parts: CreateMultipartUpload, then `partConcurrency` parts at a time
  /// (each signed over its own SHA-256), then CompleteMultipartUpload. Any failure aborts the
  /// upload, so no parts are left stored (and billed) and no object appears.
  func uploadMultipart(from path: String, size: Int64, to key: String, progress: @escaping (Int64) -> Void) throws {
    let shown = displayURL(key)
    let fullKey = objectKey(key)
    // S3 allows at most 10,000 parts.
    let partSize = max(self.partSize, (size + 9_999) / 10_000)
    let partCount = Int((size + partSize - 1) / partSize)

    let createSink = MemorySink(limit: 1 << 20)
    let created = try perform(
      S3Request(.post, key: fullKey, query: [("uploads", "")]), shownAs: shown, sink: createSink)
    guard created.isSuccess else { throw failure(created, shownAs: shown) }
    guard let uploadID = S3XML(createSink.bytes).text("UploadId"), !uploadID.isEmpty else {
      throw RemoteError.server(url: shown, status: created.status, message: "CreateMultipartUpload gave no UploadId")
    }

    do {
      let reporter = ProgressForwarder(progress)
      let etags = Locked([String?](repeating: nil, count: partCount))
      try parallelForEach(partCount, workers: min(partConcurrency, partCount)) { index in
        let offset = Int64(index) * partSize
        let length = min(partSize, size - offset)
        let hash = try S3Crypto.sha256(ofFile: path, offset: offset, length: length)
        let response = try perform(
          S3Request(
            .put, key: fullKey, query: [("partNumber", String(index + 1)), ("uploadId", uploadID)],
            body: .file(path: path, offset: offset, length: length), payloadHash: S3Crypto.hex(hash)),
          shownAs: shown, progress: reporter, progressBase: offset)
        guard response.isSuccess else { throw failure(response, shownAs: shown) }
        guard let etag = response.headers["ETag"], !etag.isEmpty else {
          throw RemoteError.server(url: shown, status: response.status, message: "UploadPart gave no ETag")
        }
        etags.withLock { $0[index] = etag }
      }
      let parts = etags.withLock { $0 }
      var document = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      for (index, etag) in parts.enumerated() {
        document += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(S3XML.escape(etag ?? ""))</ETag></Part>"
      }
      document += "</CompleteMultipartUpload>"
      let body = Array(document.utf8)
      let completeSink = MemorySink(limit: 1 << 20)
      let completed = try perform(
        S3Request(
          .post, key: fullKey, query: [("uploadId", uploadID)], headers: [("Content-Type", "application/xml")],
          body: .bytes(body), payloadHash: S3Crypto.hex(S3Crypto.sha256(body))),
        shownAs: shown, sink: completeSink)
      if !completed.isSuccess {
        // A retried completion whose first attempt did complete (its answer was lost) finds the
        // upload gone; the object then exists with the file's size.
        guard S3XML(completed.errorBody).text("Code") == "NoSuchUpload", try storedSize(fullKey, shownAs: shown) == size
        else { throw failure(completed, shownAs: shown) }
        return
      }
      // S3 may answer 200 and report a failure of the assembly in the body.
      let answer = S3XML(completeSink.bytes)
      if !answer.elements("Error").isEmpty {
        throw failure(
          HTTPResponse(status: completed.status, headers: completed.headers, errorBody: completeSink.bytes),
          shownAs: shown)
      }
    } catch {
      abortMultipart(key: fullKey, uploadID: uploadID, shownAs: shown)
      throw error
    }
  }

  /// The size of the object at `key` (a full bucket key); nil when it is absent.
  private func storedSize(_ key: String, shownAs: String) throws -> Int64? {
    let response = try perform(S3Request(.head, key: key), shownAs: shownAs)
    guard response.isSuccess else { return nil }
    return response.headers["Content-Length"].flatMap { Int64($0) }
  }

  /// AbortMultipartUpload, best effort: the upload's own error is what the caller needs to see.
  private func abortMultipart(key: String, uploadID: String, shownAs: String) {
    _ = try? perform(S3Request(.delete, key: key, query: [("uploadId", uploadID)]), shownAs: shownAs)
  }
}
