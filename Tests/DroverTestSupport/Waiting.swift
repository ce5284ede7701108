import DroverPersistence
import Foundation
import Synchronization

/// A condition was not met before its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let description: String
}

/// Checks `condition` until it holds or `timeout` passes. For state that changes by itself (a row
/// appears, a process exits); the deadline bounds the wait, the interval only spaces the checks.
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), interval: Duration = .milliseconds(10),
    _ condition: () throws -> Bool
) throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try condition() { return }
        if ContinuousClock.now >= deadline {
            throw DeadlineExceeded(description: "timed out after \(timeout) waiting until \(what)")
        }
        Thread.sleep(forTimeInterval: interval.seconds)
    }
}

/// Work running on a thread of its own, for blocking calls that must overlap (two connections
/// contending for one lock).
public final class BackgroundWork<Result: Sendable>: Sendable {
    private final class State: Sendable {
        let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
    }
    private let state = State()

    public init(_ name: String = "background work", _ body: @escaping @Sendable () throws -> Result) {
        let thread = Thread { [state] in
            let result = Swift.Result { try body() }
            state.outcome.withLock { $0 = result }
            state.done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// True once the work has returned or thrown.
    public var isFinished: Bool { state.outcome.withLock { $0 != nil } }

    /// The work's result, waiting up to `timeout` for it.
    public func value(timeout: Duration = .seconds(10)) throws -> Result {
        let seconds = timeout.seconds
        guard state.done.wait(timeout: .now() + seconds) == .success else {
            throw DeadlineExceeded(description: "background work did not finish within \(timeout)")
        }
        state.done.signal()  // later calls return at once too
        return try state.outcome.withLock { $0! }.get()
    }
}
