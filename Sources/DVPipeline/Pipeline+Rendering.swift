/// Text forms of the stage graph for `dv dag`.
extension Pipeline {
  /// One line per stage in dependency order, with the stages it depends on:
  /// `evaluate    <- train@small, train@large`.
  public func asciiGraph() -> String {
    let width = stages.map(\.name.count).max() ?? 0
    let predecessors = graph.predecessors
    var out = ""
    for i in order {
      let name = stages[i].name
      let inputs = predecessors[i].map { stages[$0].name }
      out +=
        inputs.isEmpty
        ? name + "\n"
        : name + String(repeating: " ", count: width - name.count + 2) + "<- " + inputs.joined(separator: ", ") + "\n"
    }
    return out
  }

  /// Graphviz.
  public func dot() -> String {
    var out = "strict digraph {\n"
    for i in order { out += "  \(quoted(stages[i].name));\n" }
    for i in order {
      for j in graph.successors[i] { out += "  \(quoted(stages[i].name)) -> \(quoted(stages[j].name));\n" }
    }
    return out + "}\n"
  }

  /// Mermaid flowchart (node ids are positions; labels are names).
  public func mermaid() -> String {
    var out = "flowchart TD\n"
    for i in order { out += "  s\(i)[\(quoted(stages[i].name))]\n" }
    for i in order { for j in graph.successors[i] { out += "  s\(i) --> s\(j)\n" } }
    return out
  }

  private func quoted(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }
}
