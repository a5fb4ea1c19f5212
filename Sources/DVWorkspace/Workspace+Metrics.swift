import DVBasics
import DVPipeline
import Foundation

/// The metrics files of the pipeline, flattened.
public struct MetricsReport: Sendable {
  public var files: [(path: String, values: [(key: String, value: String)])]
}

extension Workspace {
  /// Every `metrics:` output of stages.yaml as it is in the workspace.
  public func metrics() throws -> MetricsReport {
    var files: [(String, [(key: String, value: String)])] = []
    for path in try metricsPaths() {
      guard let text = try FileSystem.readTextIfPresent(path.absolute(under: root)) else { continue }
      files.append((path.value, try MetricsFile.flatten(text: text, name: path.value)))
    }
    return MetricsReport(files: files)
  }

  /// Metrics that differ between git HEAD and the workspace.
  public func metricsDiff() throws -> [MetricsFile.Change] {
    try diffAgainstHEAD(try metricsPaths())
  }

  /// Params read by stages that differ between git HEAD and the workspace.
  public func paramsDiff() throws -> [MetricsFile.Change] {
    guard let pipeline = try pipeline() else { return [] }
    var files: [RelativePath] = []
    var keys: [RelativePath: Set<String>] = [:]
    for stage in pipeline.stages {
      for param in stage.params {
        if !files.contains(param.file) { files.append(param.file) }
        keys[param.file, default: []].insert(param.key)
      }
    }
    return try diffAgainstHEAD(files).filter { change in
      keys[RelativePath(validating: change.path)!]?.contains { change.key == $0 || change.key.hasPrefix($0 + ".") }
        ?? false
    }
  }

  private func metricsPaths() throws -> [RelativePath] {
    (try pipeline())?.stages.flatMap { $0.outs.filter(\.isMetric).map(\.path) } ?? []
  }

  private func diffAgainstHEAD(_ paths: [RelativePath]) throws -> [MetricsFile.Change] {
    var changes: [MetricsFile.Change] = []
    for path in paths {
      let old = try gitShowHEAD(path).map { try MetricsFile.flatten(text: $0, name: "HEAD:" + path.value) } ?? []
      let now =
        try FileSystem.readTextIfPresent(path.absolute(under: root)).map {
          try MetricsFile.flatten(text: $0, name: path.value)
        } ?? []
      changes += MetricsFile.diff(path: path.value, old: old, new: now)
    }
    return changes
  }

  /// The file as committed at git HEAD; nil when it is not there.
  func gitShowHEAD(_ path: RelativePath) throws -> String? {
    guard Workspace.isInsideGitRepository(root) else { throw WorkspaceError.needsGit }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["git", "show", "HEAD:./" + path.value]
    process.currentDirectoryURL = URL(fileURLWithPath: root)
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
  }
}
