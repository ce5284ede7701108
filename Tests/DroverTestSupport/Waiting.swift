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

/// Runs `body` on `count` threads at once, each with a connection of its own to the test
/// database: every thread connects first, then all are released together, so that their
/// statements race. Returns each thread's outcome (in no particular order).
public func raceOnConnections<Value: Sendable>(
    _ count: Int, timeout: Duration = .seconds(60), _ body: @escaping @Sendable (Connection) throws -> Value
) throws -> [Swift.Result<Value, any Error>] {
    let url = try TestDatabase.url()
    let outcomes = Mutex<[Swift.Result<Value, any Error>]>([])
    let connected = DispatchSemaphore(value: 0)
    let start = DispatchSemaphore(value: 0)
    let group = DispatchGroup()
    for _ in 0..<count {
        group.enter()
        Thread {
            defer { group.leave() }
            let connection: Connection
            do {
                connection = try Connection(url, applicationName: "drover-tests")
            } catch {
                connected.signal()
                outcomes.withLock { $0.append(.failure(error)) }
                return
            }
            connected.signal()
            start.wait()
            let outcome = Swift.Result { try body(connection) }
            outcomes.withLock { $0.append(outcome) }
        }.start()
    }
    for _ in 0..<count where connected.wait(timeout: .now() + timeout.seconds) != .success {
        throw DeadlineExceeded(description: "the racing threads did not all connect within \(timeout)")
    }
    for _ in 0..<count { start.signal() }
    guard group.wait(timeout: .now() + timeout.seconds) == .success else {
        throw DeadlineExceeded(description: "the racing threads did not all finish within \(timeout)")
    }
    return outcomes.withLock { $0 }
}
