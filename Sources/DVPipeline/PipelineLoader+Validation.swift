import DVBasics

extension PipelineLoader {
  /// Whole-pipeline checks: unique names, no output produced twice or nested in another, every
  /// dependency existing or produced, every param defined, no cycle.
  func validate(_ stages: [Stage], file: YAMLFile) throws -> Pipeline {
    var names: [String: Stage] = [:]
    for stage in stages {
      if let other = names[stage.name] {
        throw FileFormatError.invalid(
          stage.location, "stage '\(stage.name)' is defined twice (also at \(other.location))")
      }
      names[stage.name] = stage
    }

    // Outputs: sorted by path, a clash is between neighbours (same path, or a path inside one).
    var outputs: [(path: RelativePath, stage: Int, location: SourceLocation)] = []
    for (i, stage) in stages.enumerated() { for out in stage.outs { outputs.append((out.path, i, out.location)) } }
    outputs.sort { $0.path < $1.path }
    for (a, b) in zip(outputs, outputs.dropFirst()) {
      if a.path == b.path {
        let who =
          a.stage == b.stage
          ? "twice by stage '\(stages[a.stage].name)'"
          : "by both '\(stages[a.stage].name)' and '\(stages[b.stage].name)'"
        throw FileFormatError.invalid(b.location, "output '\(b.path)' is declared \(who); each output has one producer")
      }
    }
    for (i, a) in outputs.enumerated() {
      for b in outputs[(i + 1)...] {
        guard b.path.value.hasPrefix(a.path.value) else { break }
        if b.path.isInside(a.path) {
          throw FileFormatError.invalid(
            b.location,
            "output '\(b.path)' of stage '\(stages[b.stage].name)' is inside output '\(a.path)' of stage '\(stages[a.stage].name)'; outputs may not nest"
          )
        }
      }
    }

    // Edges: a dependency on an output, inside one, or around one.
    var graph = DirectedGraph(count: stages.count)
    for (b, stage) in stages.enumerated() {
      for dep in stage.deps {
        for out in outputs where dep.path.isInside(out.path) || out.path.isInside(dep.path) {
          graph.addEdge(from: out.stage, to: b)
        }
      }
    }
    try checkParams(stages)

    switch graph.topologicalOrder() {
    case .success(let order):
      return Pipeline(stages: stages, graph: graph, order: order)
    case .failure(let cycle):
      let path = cycle.nodes.map { stages[$0].name }.joined(separator: " -> ")
      throw FileFormatError.invalid(stages[cycle.nodes[0]].location, "the stages form a cycle: \(path); break it")
    }
  }

  private func checkParams(_ stages: [Stage]) throws {
    var params = ParamsReader(root: root)
    for stage in stages {
      for param in stage.params {
        guard try params.fileExists(param.file) else {
          throw FileFormatError.invalid(
            param.location, "params file '\(param.file)' of stage '\(stage.name)' does not exist; create it")
        }
        if try params.value(of: param.key, in: param.file) == nil {
          throw FileFormatError.invalid(
            param.location, "param '\(param.key)' of stage '\(stage.name)' is not in \(param.file); add it there")
        }
      }
    }
  }

}

extension Pipeline {
  /// Before stages run: every dependency exists or is produced by a stage. (Not part of loading:
  /// `status` reports a deleted dependency and `checkout` restores one.)
  public func checkDependenciesExist(workspaceRoot root: String) throws {
    for (b, stage) in stages.enumerated() {
      for dep in stage.deps {
        let produced = graph.predecessors[b].contains { a in
          stages[a].outs.contains { dep.path.isInside($0.path) || $0.path.isInside(dep.path) }
        }
        if !produced && !FileSystem.exists(dep.path.absolute(under: root)) {
          throw FileFormatError.invalid(
            dep.location,
            "dependency '\(dep.path)' of stage '\(stage.name)' does not exist and no stage produces it; create it or fix the path"
          )
        }
      }
    }
  }
}
