import DVBasics
import Foundation
import Yams

/// Where a stage's work runs (`executor:` in the config, a stage, or `dv repro --executor`).
public enum ExecutorKind: String, Sendable, CaseIterable {
  /// On this machine, as a child of dv (the default).
  case local
  /// As a Slurm batch job, one per stage run.
  case slurm
}

/// What a stage asks of a cluster (`resources:` in stages.yaml, defaults in the config). These
/// are not part of a stage's identity: changing them never makes outputs stale.
public struct StageResources: Sendable, Equatable {
  /// CPUs for the one task (`--cpus-per-task`).
  public var cpus: Int?
  /// Memory as Slurm reads it: a number of MiB, or with a K, M, G or T suffix (`--mem`).
  public var mem: String?
  /// GPUs: a count, or `type:count` (`--gres=gpu:...`).
  public var gpus: String?
  /// Wall time as Slurm reads it: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (`--time`).
  public var time: String?
  public var partition: String?
  public var account: String?
  public var qos: String?
  public var constraint: String?
  /// More sbatch options, each a `--name=value` or `-x` word.
  public var slurmExtra: [String] = []

  public init() {}

  /// The keys `resources:` takes.
  public static let keys: Set<String> = [
    "cpus", "mem", "gpus", "time", "partition", "account", "qos", "constraint", "slurm_extra",
  ]

  /// Options of sbatch that dv sets itself for every job; `slurm_extra` may not name them.
  static let reservedOptions = [
    "--job-name", "-J", "--output", "-o", "--error", "-e", "--parsable", "--wrap", "--chdir", "-D", "--comment",
    "--wait", "-W", "--array", "-a",
  ]

  /// These values, with `defaults` for the keys this does not set.
  public func over(_ defaults: StageResources) -> StageResources {
    var merged = self
    merged.cpus = cpus ?? defaults.cpus
    merged.mem = mem ?? defaults.mem
    merged.gpus = gpus ?? defaults.gpus
    merged.time = time ?? defaults.time
    merged.partition = partition ?? defaults.partition
    merged.account = account ?? defaults.account
    merged.qos = qos ?? defaults.qos
    merged.constraint = constraint ?? defaults.constraint
    merged.slurmExtra = defaults.slurmExtra + slurmExtra
    return merged
  }

  /// The sbatch options these resources make.
  public var sbatchOptions: [String] {
    var options: [String] = []
    if let cpus { options.append("--cpus-per-task=\(cpus)") }
    if let mem { options.append("--mem=\(mem)") }
    if let gpus { options.append("--gres=gpu:\(gpus)") }
    if let time { options.append("--time=\(time)") }
    if let partition { options.append("--partition=\(partition)") }
    if let account { options.append("--account=\(account)") }
    if let qos { options.append("--qos=\(qos)") }
    if let constraint { options.append("--constraint=\(constraint)") }
    return options + slurmExtra
  }

  /// Reads a `resources:` mapping, every value checked where it was written. `scalar` reads one
  /// scalar (stages.yaml interpolates `${...}` in it).
  package static func parse(
    _ node: Node, in file: YAMLFile, what: String, scalar: (Node, String) throws -> String
  ) throws -> StageResources {
    var resources = StageResources()
    for entry in try file.mapping(node, allowed: keys, what: what) {
      let value = entry.value
      let key = "resources." + entry.key
      switch entry.key {
      case "slurm_extra":
        let words: [(Node, String)]
        if let sequence = value.sequence {
          words = try sequence.map { ($0, try scalar($0, key)) }
        } else {
          words = try scalar(value, key).split(separator: " ").map { (value, String($0)) }
        }
        for (node, word) in words {
          guard word.hasPrefix("-"), !word.contains("\n") else {
            throw file.error(node, "\(key): '\(word)' is not an sbatch option (write --name=value)")
          }
          let name = String(word.prefix { $0 != "=" })
          if reservedOptions.contains(name) {
            throw file.error(node, "\(key): dv sets \(name) itself for every job; remove it")
          }
          resources.slurmExtra.append(word)
        }
      default:
        let text = try scalar(value, key).trimmingCharacters(in: .whitespaces)
        func check(_ valid: Bool, _ expected: String) throws {
          if !valid { throw file.error(value, "\(key) must be \(expected), not '\(text)'") }
        }
        switch entry.key {
        case "cpus":
          try check(Int(text).map { $0 >= 1 } == true, "a whole number of at least 1")
          resources.cpus = Int(text)
        case "mem":
          try check(Self.matches(text, #"^[1-9][0-9]*[KMGTkmgt]?$"#), "a size such as 512M, 4G or 4096 (MiB)")
          resources.mem = text.uppercased()
        case "gpus":
          try check(Self.matches(text, #"^([A-Za-z0-9_.-]+:)?[1-9][0-9]*$"#), "a count such as 1, or type:count (a100:2)")
          resources.gpus = text
        case "time":
          try check(Self.isSlurmTime(text), "a time such as 30 (minutes), 1:30:00 or 2-00:00:00")
          resources.time = text
        default:
          try check(Self.matches(text, #"^[A-Za-z0-9_.,:&|()!\[\]*+-]+$"#) && !text.hasPrefix("-"), "a name")
          switch entry.key {
          case "partition": resources.partition = text
          case "account": resources.account = text
          case "qos": resources.qos = text
          default: resources.constraint = text
          }
        }
      }
    }
    return resources
  }

  private static func matches(_ text: String, _ pattern: String) -> Bool {
    text.range(of: pattern, options: .regularExpression) != nil
  }

  /// Slurm's time formats (sbatch(1) `--time`), and `INFINITE`/`UNLIMITED`.
  static func isSlurmTime(_ text: String) -> Bool {
    if text == "INFINITE" || text == "UNLIMITED" { return true }
    let n = "[0-9]+"
    let forms = ["^\(n)$", "^\(n):\(n)$", "^\(n):\(n):\(n)$", "^\(n)-\(n)$", "^\(n)-\(n):\(n)$", "^\(n)-\(n):\(n):\(n)$"]
    guard forms.contains(where: { matches(text, $0) }) else { return false }
    return text.contains(where: { $0 != "0" && $0 != ":" && $0 != "-" })
  }
}
