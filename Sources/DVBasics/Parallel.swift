import Dispatch
import Foundation
import Synchronization

/// The number of worker threads for CPU- and I/O-parallel loops.
/// Read once: Foundation reads cgroup files on every call.
public let activeProcessorCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// A value guarded by a mutex, for results gathered by parallel workers.
public final class Locked<Value>: @unchecked Sendable {
  private var value: Value
  private let lock = NSLock()

  public init(_ value: Value) { self.value = value }

  /// Runs `body` with exclusive access to the value.
  @discardableResult
  public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}

/// Runs `body(i)` for every `i` in `0..<count` on all cores, handing out indices dynamically so
/// that a few large items do not leave other cores idle.
///
/// Each worker gets its own `State` from `makeState` (e.g. a read buffer reused across files).
/// The first error stops the hand-out of new items and is rethrown once every worker is done.
public func parallelForEach<State>(
  _ count: Int, workers: Int = activeProcessorCount,
  makeState: () -> State, _ body: (Int, inout State) throws -> Void
) throws {
  if count == 0 { return }
  let workerCount = min(max(1, workers), count)
  if workerCount == 1 {
    var state = makeState()
    for i in 0..<count { try body(i, &state) }
    return
  }
  let next = Atomic<Int>(0)
  let firstError = Locked<Error?>(nil)
  var states = (0..<workerCount).map { _ in makeState() }
  states.withUnsafeMutableBufferPointer { states in
    let states = UnsafeSendableBox(states)
    withoutActuallyEscaping(body) { body in
      let body = UnsafeSendableBox(body)
      DispatchQueue.concurrentPerform(iterations: workerCount) { worker in
        while true {
          let i = next.add(1, ordering: .relaxed).oldValue
          if i >= count { break }
          do {
            try body.value(i, &states.value[worker])
          } catch {
            firstError.withLock { if $0 == nil { $0 = error } }
            next.store(count, ordering: .relaxed)
            break
          }
        }
      }
    }
  }
  if let error = firstError.withLock({ $0 }) { throw error }
}

/// Runs `body(i)` for every `i` in `0..<count` on all cores.
public func parallelForEach(_ count: Int, workers: Int = activeProcessorCount, _ body: (Int) throws -> Void) throws {
  try parallelForEach(count, workers: workers, makeState: { () }) { i, _ in try body(i) }
}

public struct UnsafeSendableBox<T>: @unchecked Sendable {
  public var value: T
  public init(_ value: T) { self.value = value }
}
