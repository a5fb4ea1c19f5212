import CDVSystem
import DVBasics
import DVPipeline
import DVRemotes
import DVStorage
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// `plugin: download`: fetches one http, https or file URL into the stage's output, optionally
/// checking its SHA-256. The bytes stream into a partial file under
/// `.pipeline/tmp/downloads/` that is renamed into place only when complete and verified, so a
/// failed download never leaves a partial output; an interrupted one resumes from where it
/// stopped (`Range` + `If-Range`) on the next run. The URL's ETag or Last-Modified is recorded
/// as the stage's source version, so the stage becomes stale when the resource changes.
public struct DownloadPlugin: StagePlugin {
  public static let kind = "download"
  public static let version = "1"
  /// The URL's content can change while the stage's inputs do not: never from the run cache.
  public var readsExternalSource: Bool { true }

  static let options: [OptionSpec] = [
    OptionSpec("url", .string, required: true),
    OptionSpec("sha256", .string),
    OptionSpec("output", .string),
    OptionSpec("timeout", .number),
    OptionSpec("retries", .integer),
  ]

  let transport: any HTTPTransport
  /// The wait before the first retry; tests shorten it.
  let retryDelay: Double

  public init() { self.init(transport: CurlTransport.shared) }

  init(transport: any HTTPTransport, retryDelay: Double = 1) {
    self.transport = transport
    self.retryDelay = retryDelay
  }

  public func validate(config: PluginConfig) throws {
    _ = try DownloadSettings(config)
  }

  public func run(_ context: StageContext) async throws {
    let settings = try DownloadSettings(context.config)
    let transport = self.transport
    let retryDelay = self.retryDelay
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
      // libcurl blocks: a thread of its own keeps Swift's cooperative pool free.
      Thread.detachNewThread {
        continuation.resume(
          with: Result {
            try Download(settings: settings, context: context, transport: transport, retryDelay: retryDelay).run()
          })
      }
    }
  }

  /// A HEAD request with short timeouts (or a stat of a file URL); nil when offline or the
  /// server gives no validator, so that `dv status` without a network does not call the stage
  /// stale.
  public func sourceVersion(config: PluginConfig, workspaceRoot: String) -> String? {
    guard let settings = try? DownloadSettings(config) else { return nil }
    switch settings.source {
    case .file(let path):
      guard let stat = try? FileStat.of(path), stat.kind == .file else { return nil }
      return Download.fileVersion(stat)
    case .http(let url):
      let request = HTTPRequest(.head, url: url, timeouts: HTTPTimeouts(connect: 5, total: 10, stall: 5))
      guard let response = try? transport.send(request), response.isSuccess else { return nil }
      return Download.sourceVersion(response.headers)
    }
  }
}

/// A download stage's options, checked.
struct DownloadSettings: Sendable {
  enum Source: Sendable {
    case http(String)
    /// A file URL's decoded absolute path.
    case file(String)
  }

  var url: String
  var source: Source
  /// Lowercase hex, when given.
  var sha256: String?
  var output: RelativePath
  var timeout: Double?
  var retries: Int

  init(_ config: PluginConfig) throws {
    try config.check(plugin: DownloadPlugin.kind, options: DownloadPlugin.options)
    url = config.string("url") ?? ""
    let shown = HTTPURL.redacted(url)
    let lowered = url.lowercased()
    if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
      guard let parsed = URL(string: url), let host = parsed.host, !host.isEmpty else {
        throw config.error("url", "'\(shown)' is not a valid url; write it like https://example.org/data.csv")
      }
      source = .http(url)
    } else if lowered.hasPrefix("file:") {
      guard let parsed = URL(string: url), parsed.isFileURL, (parsed.host ?? "").isEmpty || parsed.host == "localhost",
        parsed.path.hasPrefix("/")
      else {
        throw config.error("url", "'\(shown)' is not a valid file url; write it like file:///absolute/path")
      }
      source = .file(parsed.path)
    } else {
      throw config.error(
        "url", "the url '\(shown)' of plugin 'download' must start with http://, https:// or file://")
    }

    if var digest = config.string("sha256") {
      if digest.hasPrefix("sha256:") { digest.removeFirst("sha256:".count) }
      guard digest.utf8.count == 64, digest.allSatisfy(\.isHexDigit) else {
        throw config.error("sha256", "option 'sha256' of plugin 'download' must be 64 hexadecimal digits")
      }
      sha256 = digest.lowercased()
    }

    if let path = try config.path("output") {
      guard config.outs.contains(where: { path == $0 || path.isInside($0) }) else {
        throw config.error("output", "the output '\(path)' is not among the stage's outs; add it to outs")
      }
      output = path
    } else if config.outs.count == 1 {
      output = config.outs[0]
    } else {
      throw config.error(
        "",
        config.outs.isEmpty
          ? "plugin 'download' needs an output: declare it in outs (or give option 'output')"
          : "the stage has \(config.outs.count) outs; say which one the download writes with option 'output'")
    }

    timeout = config.number("timeout")
    if let timeout, timeout <= 0 {
      throw config.error("timeout", "option 'timeout' of plugin 'download' must be a positive number of seconds")
    }
    retries = config.integer("retries") ?? 3
    if retries < 0 {
      throw config.error("retries", "option 'retries' of plugin 'download' must be 0 or more")
    }
  }
}

/// One run of a download stage.
final class Download {
  let settings: DownloadSettings
  let context: StageContext
  let transport: any HTTPTransport
  let retryDelay: Double
  /// The URL as messages show it: no credentials, no query string.
  let shown: String
  let output: String
  let partial: String
  /// Beside the partial file: the validator it was downloaded under, for `If-Range`.
  let sidecar: String

  init(settings: DownloadSettings, context: StageContext, transport: any HTTPTransport, retryDelay: Double) {
    self.settings = settings
    self.context = context
    self.transport = transport
    self.retryDelay = retryDelay
    shown = HTTPURL.redacted(settings.url)
    output = context.absolute(settings.output)
    let directory = context.workspaceRoot + "/.pipeline/tmp/downloads"
    let key = SHA256Hasher.hash(Array(settings.url.utf8)).hex
    partial = directory + "/" + key + ".part"
    sidecar = partial + ".validator"
  }

  /// The source version of an HTTP response: its ETag, else its Last-Modified.
  static func sourceVersion(_ headers: HTTPHeaders) -> String? {
    if let etag = headers["ETag"], !etag.isEmpty { return "etag " + etag }
    if let date = headers["Last-Modified"], !date.isEmpty { return "last-modified " + date }
    return nil
  }

  /// The source version of a file URL: its size and modification time.
  static func fileVersion(_ stat: FileStat) -> String { "file size \(stat.size) mtime-ns \(stat.mtimeNs)" }

  func run() throws {
    try FileSystem.createDirectory((partial as NSString).deletingLastPathComponent)
    let (digest, size, version): (ObjectID, Int64, String?)
    switch settings.source {
    case .file(let path): (digest, size, version) = try copyFile(path)
    case .http(let url): (digest, size, version) = try fetch(url)
    }
    if let expected = settings.sha256, expected != digest.hex {
      discardPartial()
      throw StageRunError.failed(
        "\(shown): sha256 mismatch: expected \(expected), got \(digest.hex); "
          + "the file changed at its source or the sha256 option is wrong")
    }
    try FileSystem.createDirectory((output as NSString).deletingLastPathComponent)
    if rename(partial, output) != 0 {
      let error = SystemError("moving the download into '\(settings.output)'", errno: errno)
      discardPartial()
      throw StageRunError.failed(error.description)
    }
    try? FileSystem.removeFile(sidecar)
    FileSystem.syncDirectory((output as NSString).deletingLastPathComponent)
    if let version { context.recordSource(version) }
    context.log("downloaded \(Self.formatBytes(size)) from \(shown) to \(settings.output)")
  }

  private func discardPartial() {
    try? FileSystem.removeFile(partial)
    try? FileSystem.removeFile(sidecar)
  }

  // MARK: - file://

  private func copyFile(_ path: String) throws -> (ObjectID, Int64, String?) {
    let source = open(path, O_RDONLY | O_CLOEXEC)
    if source < 0 {
      let reason = errno == ENOENT || errno == ENOTDIR ? "not found" : String(cString: strerror(errno))
      throw StageRunError.failed("\(shown): \(reason); check the url")
    }
    defer { close(source) }
    let stat = try FileStat.of(descriptor: source, path: path)
    guard stat.kind == .file else { throw StageRunError.failed("\(shown): not a regular file; check the url") }
    let sink = PartialFile(path: partial, sidecar: sidecar, resumeFrom: 0)
    try sink.begin(HTTPResponse(status: 200))
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw StageRunError.failed(SystemError("reading '\(path)'", errno: errno).description) }
      if n == 0 { break }
      try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
      if dv_received_signal() != 0 { throw StageRunError.interrupted }
    }
    let (digest, size) = try sink.finish()
    return (digest, size, Self.fileVersion(stat))
  }

  // MARK: - http(s)://

  /// The partial file no longer matches the server's answer: start again from zero.
  private struct Restart: Error {}

  private func fetch(_ url: String) throws -> (ObjectID, Int64, String?) {
    let policy = RetryPolicy(retries: settings.retries, baseDelay: retryDelay)
    context.log("downloading \(shown)")
    var sink: PartialFile?
    let response: HTTPResponse
    do {
      response = try policy.run(
        { _ in
          var restarted = false
          while true {
            let (request, offset) = self.request(url)
            if offset > 0 { self.context.log("resuming at \(Self.formatBytes(offset))") }
            let attemptSink = PartialFile(path: self.partial, sidecar: self.sidecar, resumeFrom: offset)
            sink = attemptSink
            do {
              let response = try self.transport.send(request, into: attemptSink, progress: self.progress(from: offset))
              guard response.status == 416, offset > 0, !restarted else { return response }
            } catch HTTPError.sink(_, let error) where error is Restart && !restarted {}
            // The partial file does not fit what the server has now: once more from zero.
            self.discardPartial()
            restarted = true
          }
        },
        willRetry: { event in
          self.context.log(
            "\(event.reason); retrying in \(String(format: "%.1f", event.delay)) s "
              + "(attempt \(event.failedAttempt + 1) of \(event.attempts))")
        })
    } catch HTTPError.aborted {
      throw StageRunError.interrupted
    } catch let error as HTTPError {
      let attempts = error.isTransient && settings.retries > 0 ? " after \(settings.retries + 1) attempts" : ""
      let resume = FileSystem.exists(partial) ? "; rerun `dv repro` to resume" : ""
      throw StageRunError.failed("\(error)\(attempts)\(resume)")
    }
    guard response.isSuccess, let sink else {
      if !RetryPolicy.isRetryable(status: response.status) { discardPartial() }
      throw StageRunError.failed(message(for: response))
    }
    do {
      let (digest, size) = try sink.finish()
      return (digest, size, Self.sourceVersion(response.headers))
    } catch {
      throw StageRunError.failed("\(error)")
    }
  }

  /// The GET for the next attempt, resuming the partial file when its validator allows it.
  private func request(_ url: String) -> (HTTPRequest, Int64) {
    var headers = HTTPHeaders()
    var offset: Int64 = 0
    if let size = (try? FileStat.of(partial))?.size, size > 0,
      let validator = try? FileSystem.readTextIfPresent(sidecar), !validator.isEmpty
    {
      offset = size
      headers.add("Range", "bytes=\(size)-")
      headers.add("If-Range", validator)
    } else {
      discardPartial()
    }
    let timeouts = HTTPTimeouts(connect: min(30, settings.timeout ?? 30), total: settings.timeout)
    return (HTTPRequest(.get, url: url, headers: headers, timeouts: timeouts), offset)
  }

  private func progress(from offset: Int64) -> HTTPProgressHandler {
    let start = Date()
    var lastLog = start
    return { progress in
      if dv_received_signal() != 0 { return false }
      let now = Date()
      // Small downloads finish before the first line; large ones report every few seconds.
      if now.timeIntervalSince(lastLog) >= 5 {
        lastLog = now
        let done = offset + progress.received
        let total = progress.expected.map { " of " + Self.formatBytes(offset + $0) } ?? ""
        self.context.log("downloaded \(Self.formatBytes(done))\(total)")
      }
      return true
    }
  }

  private func message(for response: HTTPResponse) -> String {
    switch response.status {
    case 404, 410: return "\(shown): not found (HTTP \(response.status)); check the url"
    case 401, 403:
      return "\(shown): access denied (HTTP \(response.status)); check the url and whether it needs credentials"
    default:
      if RetryPolicy.isRetryable(status: response.status) {
        let attempts = settings.retries > 0 ? " after \(settings.retries + 1) attempts" : ""
        return "\(shown): the server answered \(response.statusText)\(attempts); try again later"
      }
      return "\(shown): the server answered \(response.statusText)"
    }
  }

  static func formatBytes(_ count: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(count)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? "\(count) bytes" : String(format: "%.1f %@", value, units[unit])
  }

  /// The partial file as a response sink: appends to what is there on 206, starts over on 200,
  /// and hashes everything it holds.
  final class PartialFile: HTTPResponseSink {
    let path: String
    let sidecar: String
    let resumeFrom: Int64
    /// The validator the partial file is now downloaded under.
    private(set) var validator: String?
    private var fd: Int32 = -1
    private var hasher = SHA256Hasher()
    private var size: Int64 = 0

    init(path: String, sidecar: String, resumeFrom: Int64) {
      self.path = path
      self.sidecar = sidecar
      self.resumeFrom = resumeFrom
    }

    deinit { if fd >= 0 { close(fd) } }

    func begin(_ response: HTTPResponse) throws {
      if fd >= 0 { close(fd) }
      fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
      if fd < 0 { throw SystemError("creating '\(path)'", errno: errno) }
      hasher = SHA256Hasher()
      if response.status == 206 && resumeFrom > 0 {
        guard Self.rangeStart(response.headers["Content-Range"]) == resumeFrom else { throw Restart() }
        try hashPrefix()
        validator = try FileSystem.readTextIfPresent(sidecar)
      } else {
        if ftruncate(fd, 0) != 0 { throw SystemError("emptying '\(path)'", errno: errno) }
        size = 0
        // Written before any body byte, so that a transfer cut short can resume under it. Only a
        // strong ETag or a date may go in If-Range.
        let etag = response.headers["ETag"].flatMap { $0.hasPrefix("W/") ? nil : $0 }
        validator = etag ?? response.headers["Last-Modified"]
        if let validator {
          try FileSystem.writeAtomically(validator, to: sidecar)
        } else {
          try FileSystem.removeFile(sidecar)
        }
      }
    }

    /// Hashes the `resumeFrom` bytes already there, and positions at their end.
    private func hashPrefix() throws {
      var buffer = [UInt8](repeating: 0, count: 1 << 20)
      var done: Int64 = 0
      while done < resumeFrom {
        let want = Int(min(Int64(buffer.count), resumeFrom - done))
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(done)) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { throw SystemError("reading '\(path)'", errno: errno) }
        if n == 0 { throw Restart() }
        buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        done += Int64(n)
      }
      if ftruncate(fd, off_t(resumeFrom)) != 0 || lseek(fd, off_t(resumeFrom), SEEK_SET) < 0 {
        throw SystemError("resuming '\(path)'", errno: errno)
      }
      size = resumeFrom
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
      try FileSystem.writeAll(fd, bytes, path: path)
      hasher.update(bytes)
      size += Int64(bytes.count)
    }

    /// Makes the file durable; returns its digest and size.
    func finish() throws -> (ObjectID, Int64) {
      if fd < 0 { try begin(HTTPResponse(status: 200)) }
      defer {
        close(fd)
        fd = -1
      }
      if fsync(fd) != 0 { throw SystemError("syncing '\(path)'", errno: errno) }
      return (hasher.finalize(), size)
    }

    /// The first byte of a `Content-Range: bytes first-last/total`.
    static func rangeStart(_ header: String?) -> Int64? {
      guard let header, header.hasPrefix("bytes ") else { return nil }
      return Int64(header.dropFirst("bytes ".count).prefix { $0 != "-" })
    }
  }
}
