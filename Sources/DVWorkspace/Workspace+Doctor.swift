import DVBasics
import DVRemotes
import DVStorage
import Foundation

/// What `dv doctor` found about this machine and workspace.
public struct DoctorReport: Sendable {
  /// One link type as tried from the cache into the workspace.
  public struct LinkProbe: Sendable {
    public var type: LinkType
    /// nil when it works; else the system's reason.
    public var failure: String?
  }

  /// One configured remote and whether it answered.
  public struct RemoteProbe: Sendable {
    public var name: String
    /// The URL as configured (it holds no secret: dv refuses credentials in URLs).
    public var url: String
    public var isDefault: Bool
    /// nil when it answered; else why not (one line, secrets scrubbed).
    public var failure: String?
    /// How long the answer (or the failure) took.
    public var seconds: Double
  }

  /// The workspace root.
  public var root: String
  /// The filesystem type holding the workspace (`ext4`, `btrfs`, ...; `0x...` when unknown).
  public var filesystem: String
  /// Every link type, in `cache.type`'s vocabulary, tried for real.
  public var links: [LinkProbe]
  /// `cache.type` as configured.
  public var configuredCacheTypes: [LinkType]
  public var remotes: [RemoteProbe]
  /// Bytes of `.pipeline/lineage.db` with its WAL.
  public var ledgerBytes: Int64
  /// Bytes of `.pipeline/state.db` with its WAL.
  public var stateCacheBytes: Int64
  /// Bytes and files of `.pipeline/cache`.
  public var cacheBytes: Int64
  public var cacheFiles: Int
  /// The hooks directory git reports and each dv hook's state; nil outside git (the reason in
  /// `hooksProblem`).
  public var hooksDirectory: String?
  public var hooks: [HookFileStatus]
  public var hooksProblem: String?

  /// The link type checkout will use: the first configured one that works.
  public var effectiveCacheType: LinkType? {
    configuredCacheTypes.first { type in links.contains { $0.type == type && $0.failure == nil } }
  }
}

extension Workspace {
  /// The operating system, kernel and processor: `Debian GNU/Linux 12 (bookworm), Linux
  /// 6.1.0-18-amd64, x86_64`.
  public static func platformDescription() -> String {
    var parts: [String] = []
    if let release = try? FileSystem.readTextIfPresent("/etc/os-release"),
      let line = release.split(separator: "\n").first(where: { $0.hasPrefix("PRETTY_NAME=") })
    {
      parts.append(line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"'")))
    }
    var names = utsname()
    if uname(&names) == 0 {
      parts.append(cString(names.sysname) + " " + cString(names.release))
      parts.append(cString(names.machine))
    }
    return parts.joined(separator: ", ")
  }

  /// A fixed-size C character array (a tuple in Swift) as a string.
  private static func cString<Tuple>(_ tuple: Tuple) -> String {
    withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }

  /// Tries what `dv doctor` reports: each link type, each remote (one existence check each,
  /// asked once, with the remote's own timeouts), and reads the sizes of the ledger, stat cache and cache.
  /// Changes nothing in the workspace or the cache.
  public func doctor(environment: [String: String]) -> DoctorReport {
    let links = cache.probeLinkTypes(into: root).map { DoctorReport.LinkProbe(type: $0.type, failure: $0.failure) }
    let remotes = config.remotes.values.sorted { $0.name < $1.name }.map { settings in
      probeRemote(settings, environment: environment)
    }
    var hooksDirectory: String?
    var hooks: [HookFileStatus] = []
    var hooksProblem: String?
    if config.noSCM {
      hooksProblem = "the workspace is not in git (core.no_scm)"
    } else {
      do {
        let directory = try gitHooksDirectory()
        hooksDirectory = directory.path
        hooks = GitHook.allCases.map { directory.status($0) }
      } catch {
        hooksProblem = "\(error)"
      }
    }
    let (cacheBytes, cacheFiles) = Self.treeSize(pipelineDirectory + "/cache")
    return DoctorReport(
      root: root, filesystem: FileSystem.filesystemType(of: root), links: links,
      configuredCacheTypes: config.cacheTypes, remotes: remotes,
      ledgerBytes: Self.databaseSize(pipelineDirectory + "/lineage.db"),
      stateCacheBytes: Self.databaseSize(pipelineDirectory + "/state.db"),
      cacheBytes: cacheBytes, cacheFiles: cacheFiles,
      hooksDirectory: hooksDirectory, hooks: hooks, hooksProblem: hooksProblem)
  }

  private func probeRemote(_ settings: RemoteSettings, environment: [String: String]) -> DoctorReport.RemoteProbe {
    let started = Date()
    var failure: String?
    do {
      guard !settings.url.isEmpty else { throw RemoteConfigError.noURL(settings.name) }
      let remote = try RemoteFactory.make(settings, environment: environment, relativeTo: root, retry: RetryPolicy.none)
      // A key no dv writes: the remote answers "absent" when it is reachable and the
      // credentials may read it.
      _ = try remote.exists("dv-doctor-probe")
    } catch {
      failure = SecretScrubber.scrub("\(error)")
    }
    return DoctorReport.RemoteProbe(
      name: settings.name, url: settings.url, isDefault: settings.name == config.defaultRemote,
      failure: failure, seconds: Date().timeIntervalSince(started))
  }

  /// A SQLite database's bytes with its write-ahead log.
  private static func databaseSize(_ path: String) -> Int64 {
    ["", "-wal"].reduce(0) { total, suffix in total + (((try? FileStat.of(path + suffix)) ?? nil)?.size ?? 0) }
  }

  /// Bytes and regular files under `path` (0 when absent).
  private static func treeSize(_ path: String) -> (Int64, Int) {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return (0, 0) }
    var bytes: Int64 = 0
    var files = 0
    while let name = walker.nextObject() as? String {
      guard let stat = (try? FileStat.of(path + "/" + name, followLinks: false)) ?? nil, stat.kind == .file else {
        continue
      }
      bytes += stat.size
      files += 1
    }
    return (bytes, files)
  }
}
