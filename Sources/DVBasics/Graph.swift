/// A directed graph over nodes `0..<count`, for stage dependencies.
public struct DirectedGraph: Sendable {
  /// `successors[n]`: the nodes with an edge from `n`, in insertion order.
  public private(set) var successors: [[Int]]

  public init(count: Int) { successors = Array(repeating: [], count: count) }

  public var count: Int { successors.count }

  /// Adds the edge `from -> to` once.
  public mutating func addEdge(from: Int, to: Int) {
    if !successors[from].contains(to) { successors[from].append(to) }
  }

  /// The nodes with an edge into each node.
  public var predecessors: [[Int]] {
    var result = [[Int]](repeating: [], count: count)
    for (from, tos) in successors.enumerated() { for to in tos { result[to].append(from) } }
    return result
  }

  /// Nodes in an order where every edge goes forward, ties broken by node number (so the order
  /// follows the file when nothing else decides); or a cycle, as the nodes along it with the
  /// first repeated at the end.
  public func topologicalOrder() -> Result<[Int], CycleFound> {
    var indegree = [Int](repeating: 0, count: count)
    for tos in successors { for to in tos { indegree[to] += 1 } }
    var ready = (0..<count).filter { indegree[$0] == 0 }
    var order: [Int] = []
    while !ready.isEmpty {
      let node = ready.removeFirst()
      order.append(node)
      for to in successors[node] {
        indegree[to] -= 1
        if indegree[to] == 0 {
          let at = ready.firstIndex { $0 > to } ?? ready.count
          ready.insert(to, at: at)
        }
      }
    }
    if order.count == count { return .success(order) }
    return .failure(CycleFound(nodes: findCycle(among: Set((0..<count).filter { indegree[$0] > 0 }))))
  }

  /// A cycle among the nodes Kahn's algorithm could not order. Each of them still has a
  /// predecessor among them, so walking predecessors must come back to a node already seen.
  private func findCycle(among candidates: Set<Int>) -> [Int] {
    let predecessors = self.predecessors
    var path: [Int] = []
    var seen: [Int: Int] = [:]
    var node = candidates.min()!
    while seen[node] == nil {
      seen[node] = path.count
      path.append(node)
      node = predecessors[node].filter { candidates.contains($0) }.min()!
    }
    // The walk went against the edges: reverse it so it reads along them.
    let backwards = Array(path[seen[node]!...])
    let cycle = Array(backwards.reversed())
    let start = cycle.firstIndex(of: cycle.min()!)!
    let rotated = Array(cycle[start...] + cycle[..<start])
    return rotated + [rotated[0]]
  }

  /// Every node reachable from `start` (including it).
  public func reachable(from start: [Int]) -> Set<Int> {
    var seen = Set(start)
    var stack = start
    while let node = stack.popLast() {
      for next in successors[node] where seen.insert(next).inserted { stack.append(next) }
    }
    return seen
  }

  /// The nodes of a cycle, first repeated at the end.
  public struct CycleFound: Error, Sendable {
    public let nodes: [Int]
  }
}
