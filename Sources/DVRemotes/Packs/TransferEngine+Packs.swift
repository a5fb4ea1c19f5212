import DVBasics
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

extension TransferEngine {
  /// The pack catalog, refreshed from the remote on first use in this process; nil when the
  /// engine does not use packs.
  public func packCatalog() throws -> PackCatalog? {
    guard let catalog else { return nil }
    if !catalog.isRefreshed { try catalog.refresh(self) }
    return catalog
  }

  /// The remote URL of a pack, for messages.
  func packURL(_ name: String) -> String { remote.displayURL + "/" + PackFormat.packKey(name) }

  // MARK: - Push

  /// Builds one pack of `items`, uploads it and then its index, and records the outcome of
  /// every item in `results`.
  func uploadPack(_ items: [UploadItem], results: Locked<TransferSummary>) {
    var sent: Int64 = 0
    do {
      guard let workDirectory else { preconditionFailure("packs need a work directory") }
      let built = try PackBuilder.build(items, in: workDirectory)
      defer { unlink(built.path) }
      if !built.corrupt.isEmpty {
        results.withLock { summary in
          for (item, actual) in built.corrupt {
            summary.failed.append((item.id, PackError.corruptSource(id: item.id, path: item.path, actual: actual)))
          }
        }
      }
      guard !built.packed.isEmpty else { return }
      let name = built.index.name
      try retrying {
        let attempt = Locked<Int64>(0)
        do {
          try remote.upload(
            from: built.path, size: built.index.packSize, sha256: built.digest, to: PackFormat.packKey(name)
          ) { n in
            attempt.withLock { $0 += n }
            self.progress.advance(items: 0, bytes: n)
          }
          sent += attempt.withLock { $0 }
        } catch {
          self.progress.advance(items: 0, bytes: -attempt.withLock { $0 })
          throw error
        }
      }
      try FailPoint.hit("transfer:before-pack-index")
      // The index goes up only after its pack: an index on the remote promises a whole pack.
      let indexBytes = built.index.encoded()
      let indexPath = built.path + ".idx"
      try FileSystem.writeFile(indexBytes, to: indexPath)
      defer { unlink(indexPath) }
      try retrying {
        try remote.upload(
          from: indexPath, size: Int64(indexBytes.count), sha256: SHA256Stream.digest(indexBytes),
          to: PackFormat.indexKey(name), progress: { _ in })
      }
      try catalog?.add(built.index, bytes: indexBytes)
      progress.advance(items: built.packed.count, bytes: 0)
      results.withLock { summary in
        summary.transferred += built.packed.count
        summary.bytes += built.packed.reduce(0) { $0 + $1.size }
      }
    } catch {
      progress.advance(items: 0, bytes: -sent)
      results.withLock { summary in
        let failed = Set(summary.failed.map(\.id))
        for item in items where !failed.contains(item.id) { summary.failed.append((item.id, error)) }
      }
    }
  }

  // MARK: - Fetch

  /// Reads one segment of a pack, storing every wanted object whose bytes verify. Returns the
  /// objects that did not arrive whole and verified (with the error, when the read failed), to
  /// be read again one by one.
  func downloadSegment(
    _ segment: PackSegment, store: @escaping ObjectBatchStore, results: Locked<TransferSummary>
  ) -> [(pack: String, entry: PackIndex.Entry, error: Error?)] {
    let received = Locked<Int64>(0)
    // The segment's verified objects are stored together once the read ends (whole or not),
    // so the cache can keep them as one pack.
    var batch: [(id: String, bytes: [UInt8])] = []
    let extractor = PackExtractor(entries: segment.entries) { entry, bytes in
      batch.append((entry.id, Array(bytes)))
    }
    var failure: Error?
    do {
      try retrying {
        try remote.read(PackFormat.packKey(segment.pack), range: segment.range, into: extractor) { n in
          received.withLock { $0 += n }
          self.progress.advance(items: 0, bytes: n)
        }
        try extractor.finishEmptyObjects()
        // Corrupt bytes in a range: read the range again (objects already stored are skipped).
        if let (id, actual) = extractor.corrupt.first {
          throw RemoteError.integrity(
            url: packURL(segment.pack) + " (object " + id + ")", expected: "sha256:" + id, actual: "sha256:" + actual)
        }
      }
    } catch {
      failure = error
    }
    storeVerified(batch, store: store, results: results)
    if extractor.undelivered.isEmpty { return [] }
    progress.advance(items: 0, bytes: -received.withLock { $0 })
    return extractor.undelivered.map { (segment.pack, $0, failure) }
  }

  /// Hands a segment's verified objects to `store` and counts them; if storing fails (a full
  /// disk), each of them is a failure with that error.
  private func storeVerified(
    _ batch: [(id: String, bytes: [UInt8])], store: ObjectBatchStore, results: Locked<TransferSummary>
  ) {
    guard !batch.isEmpty else { return }
    do {
      try FailPoint.hit("transfer:store")
      try store(batch)
      progress.advance(items: batch.count, bytes: 0)
      results.withLock {
        $0.transferred += batch.count
        $0.bytes += batch.reduce(0) { $0 + Int64($1.bytes.count) }
      }
    } catch {
      results.withLock { summary in
        for object in batch { summary.failed.append((object.id, error)) }
      }
    }
  }

  /// Reads one object from a pack by itself, after its segment failed. A final failure is
  /// recorded in `results` naming the object, the pack and the remote.
  func downloadPackedObject(
    _ pack: String, _ entry: PackIndex.Entry, after earlier: Error?,
    store: @escaping ObjectBatchStore, results: Locked<TransferSummary>
  ) {
    // A permanent failure of the whole read (access denied, pack missing) is not retried.
    if let earlier, !Self.isTransient(earlier) {
      results.withLock { $0.failed.append((entry.id, earlier)) }
      return
    }
    let single = PackSegment(pack: pack, entries: [entry])
    let left = downloadSegment(single, store: store, results: results)
    if let (_, _, error) = left.first {
      let final =
        error
        ?? RemoteError.integrity(
          url: packURL(pack) + " (object " + entry.id + ")", expected: "sha256:" + entry.id, actual: "other bytes")
      results.withLock { $0.failed.append((entry.id, final)) }
    }
  }

  /// Writes each verified object to a temporary file and hands it to `commit` (engines whose
  /// caller gives no `store`).
  static func commitThroughFiles(
    _ objects: [(id: String, bytes: [UInt8])], _ directory: String, _ commit: (String, String) throws -> Void
  ) throws {
    for object in objects {
      let path = directory + "/" + downloadPrefix + "\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
      defer { unlink(path) }
      try FileSystem.writeFile(object.bytes, to: path)
      try commit(object.id, path)
    }
  }
}
