import Foundation

/// Runs blocking file work on a thread of its own and waits for it without holding one of the
/// few threads of Swift's cooperative pool (stages run in parallel with `-j`).
func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    let thread = Thread {
      continuation.resume(with: Result { try work() })
    }
    // Deep JSON nesting recurses; give the parser room.
    thread.stackSize = 8 << 20
    thread.start()
  }
}
