import DVBasics
import Yams

/// A stage to append to stages.yaml (`dv stage add`).
public struct NewStage: Sendable {
  public var name: String
  public var command: String
  public var deps: [String] = []
  public var outs: [String] = []
  public var outsNoCache: [String] = []
  public var metrics: [String] = []
  public var params: [String] = []
  public var wdir: String?

  public init(name: String, command: String) {
    self.name = name
    self.command = command
  }

  /// The stage's YAML lines, indented by `indent` spaces.
  func yaml(indent: Int) -> String {
    let pad = String(repeating: " ", count: indent)
    var out = "\(pad)\(YAMLText.scalar(name)):\n\(pad)  cmd: \(YAMLText.scalar(command))\n"
    if let wdir { out += "\(pad)  wdir: \(YAMLText.scalar(wdir))\n" }
    for (key, values) in [("deps", deps), ("params", params)] where !values.isEmpty {
      out += "\(pad)  \(key):\n" + values.map { "\(pad)  - \(YAMLText.scalar($0))\n" }.joined()
    }
    if !outs.isEmpty || !outsNoCache.isEmpty {
      out += "\(pad)  outs:\n" + outs.map { "\(pad)  - \(YAMLText.scalar($0))\n" }.joined()
      out += outsNoCache.map { "\(pad)  - \(YAMLText.scalar($0)):\n\(pad)      cache: false\n" }.joined()
    }
    if !metrics.isEmpty {
      out += "\(pad)  metrics:\n" + metrics.map { "\(pad)  - \(YAMLText.scalar($0))\n" }.joined()
    }
    return out
  }
}

/// Appends stages to stages.yaml as text, keeping the user's comments and formatting.
public enum StageFile {
  /// Errors of editing stages.yaml.
  public enum EditError: DVError {
    case exists(String)
    case invalidName(String)
    case notAppendable(String)

    public var kind: FailureKind { .badInput }
    public var description: String {
      switch self {
      case .exists(let name): return "stage '\(name)' already exists in stages.yaml; pick another name or use --force"
      case .invalidName(let name):
        return "'\(name)' is not a stage name; use letters, digits, '_', '-' and '.'"
      case .notAppendable(let why): return "cannot append to stages.yaml (\(why)); add the stage by hand"
      }
    }
  }

  /// The new text of stages.yaml with `stage` appended (or replacing a stage of that name when
  /// `replace`), validated as a whole pipeline before it is returned.
  public static func appending(_ stage: NewStage, to text: String?, replace: Bool, workspaceRoot: String) throws
    -> String
  {
    guard PipelineLoader.isValidName(stage.name) else { throw EditError.invalidName(stage.name) }
    var current = text ?? ""
    let file = try YAMLFile(text: current, name: PipelineLoader.fileName)
    var indent = 2
    if let root = file.root {
      guard let top = root.mapping else { throw EditError.notAppendable("its top level is not a mapping") }
      guard let stagesPair = top.first(where: { $0.key.scalar?.string == "stages" }) else {
        current += (current.isEmpty || current.hasSuffix("\n") ? "" : "\n") + "stages:\n"
        return try validated(current + stage.yaml(indent: indent), workspaceRoot: workspaceRoot)
      }
      let lastKeyLine = top.map { $0.key.mark?.line ?? 0 }.max() ?? 0
      guard stagesPair.key.mark?.line == lastKeyLine else {
        throw EditError.notAppendable("'stages' is not its last top-level key")
      }
      if let stages = stagesPair.value.mapping {
        guard stages.style != .flow else { throw EditError.notAppendable("'stages' is written in flow style") }
        if let existing = stages.first(where: { $0.key.scalar?.string == stage.name }) {
          guard replace else { throw EditError.exists(stage.name) }
          current = try removing(existing.key, from: current, stages: stages)
        }
        if let firstKey = stages.first?.key.mark { indent = firstKey.column - 1 }
      } else if stagesPair.value.scalar?.string.isEmpty == false || stagesPair.value.sequence != nil {
        throw EditError.notAppendable("'stages' is not a mapping")
      }
    } else {
      current += (current.isEmpty || current.hasSuffix("\n") ? "" : "\n") + "stages:\n"
    }
    if !current.isEmpty && !current.hasSuffix("\n") { current += "\n" }
    return try validated(current + stage.yaml(indent: indent), workspaceRoot: workspaceRoot)
  }

  /// Drops the lines of one stage (from its key to the next stage key or the end).
  private static func removing(_ key: Node, from text: String, stages: Node.Mapping) throws -> String {
    guard let start = key.mark?.line else { throw EditError.notAppendable("stage without a position") }
    let later = stages.compactMap { $0.key.mark?.line }.filter { $0 > start }.min()
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let end = (later ?? lines.count + 1) - 1
    lines.removeSubrange((start - 1)..<min(end, lines.count))
    return lines.joined(separator: "\n")
  }

  private static func validated(_ text: String, workspaceRoot: String) throws -> String {
    _ = try PipelineLoader(workspaceRoot: workspaceRoot).load(text: text)
    return text
  }
}
