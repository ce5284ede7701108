import DroverPersistence
import DroverQueue
import Foundation

/// Runs jobs of one class. Throwing fails the attempt (retried per policy); throwing
/// ``PermanentJobFailure`` fails the job at once.
public protocol JobHandler: Sendable {
    func perform(_ job: ClaimedJob) throws
}

/// A failure that retrying will not fix.
public struct PermanentJobFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which handler runs which class.
public struct JobHandlers: Sendable {
    private var handlers: [String: any JobHandler] = [:]

    public init() {}

    public mutating func register(_ className: String, _ handler: any JobHandler) {
        handlers[className] = handler
    }

    public func handler(for className: String) -> (any JobHandler)? { handlers[className] }

    /// Adds `other`'s handlers; `other` wins where both have a class.
    public mutating func merge(_ other: JobHandlers) {
        handlers.merge(other.handlers) { _, theirs in theirs }
    }

    /// Handlers for testing and benchmarking Drover itself. They run only when the supervisor was
    /// started with DROVER_TEST_HANDLERS=1, since one of them kills its worker.
    public static var builtInTestHandlers: JobHandlers {
        var handlers = JobHandlers()
        handlers.register("drover.test.succeed", Succeed())
        handlers.register("drover.test.noop", Succeed())
        handlers.register("drover.test.fail", Fail())
        handlers.register("drover.test.sleep", Sleep())
        handlers.register("drover.test.crash", Crash())
        handlers.register("drover.test.exit", Exit())
        return handlers
    }

    struct Succeed: JobHandler {
        func perform(_ job: ClaimedJob) throws {}
    }

    /// Fails with `{"message": …}`; `{"permanent": true}` fails for good.
    struct Fail: JobHandler {
        struct Arguments: Decodable { var message: String?; var permanent: Bool? }
        func perform(_ job: ClaimedJob) throws {
            let arguments = (try? job.arguments.decode(Arguments.self)) ?? Arguments()
            let message = arguments.message ?? "drover.test.fail failed, as asked"
            if arguments.permanent == true { throw PermanentJobFailure(message) }
            throw TestFailure(description: message)
        }
    }

    /// Sleeps `{"ms": …}` milliseconds.
    struct Sleep: JobHandler {
        struct Arguments: Decodable { var ms: Int }
        func perform(_ job: ClaimedJob) throws {
            let arguments = try job.arguments.decode(Arguments.self)
            Thread.sleep(forTimeInterval: Double(arguments.ms) / 1000)
        }
    }

    /// Ends its worker process with `{"status": …}`, as a worker that gives up would.
    struct Exit: JobHandler {
        struct Arguments: Decodable { var status: Int32 }
        func perform(_ job: ClaimedJob) throws {
            exit(try job.arguments.decode(Arguments.self).status)
        }
    }

    /// Kills its own worker process, as a crashing job would.
    struct Crash: JobHandler {
        func perform(_ job: ClaimedJob) throws {
            kill(getpid(), SIGKILL)
        }
    }
}

/// The failure `drover.test.fail` throws.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
}
