import XCTest

@testable import DVBasics

final class GraphTests: XCTestCase {
  func testTopologicalOrderFollowsEdgesAndThenNodeNumbers() throws {
    var graph = DirectedGraph(count: 5)
    graph.addEdge(from: 3, to: 1)
    graph.addEdge(from: 1, to: 0)
    graph.addEdge(from: 4, to: 0)
    XCTAssertEqual(try graph.topologicalOrder().get(), [2, 3, 1, 4, 0])
    XCTAssertEqual(graph.reachable(from: [3]), [3, 1, 0])
    XCTAssertEqual(graph.predecessors[0], [1, 4])
  }

  func testACycleIsNamed() {
    var graph = DirectedGraph(count: 4)
    graph.addEdge(from: 0, to: 1)
    graph.addEdge(from: 1, to: 2)
    graph.addEdge(from: 2, to: 1)
    graph.addEdge(from: 2, to: 3)
    guard case .failure(let cycle) = graph.topologicalOrder() else { return XCTFail("no cycle found") }
    XCTAssertEqual(cycle.nodes, [1, 2, 1])

    var longer = DirectedGraph(count: 3)
    longer.addEdge(from: 0, to: 1)
    longer.addEdge(from: 1, to: 2)
    longer.addEdge(from: 2, to: 0)
    guard case .failure(let three) = longer.topologicalOrder() else { return XCTFail("no cycle found") }
    XCTAssertEqual(three.nodes, [0, 1, 2, 0])
  }
}
