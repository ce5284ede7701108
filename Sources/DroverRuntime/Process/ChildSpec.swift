import DroverQueue
import Foundation

/// What a supervisor tells a child it starts: everything the child needs, so that the child never
/// reads a configuration file that may have changed since the supervisor read it. Passed as JSON in
/// the environment (never in argv, which every user can read), and removed from the child's own
/// environment once read.
public struct ChildSpec: Codable, Sendable, Equatable {
    public static let environmentVariable = "DROVER_CHILD_SPEC"

    public struct WorkerPart: Codable, Sendable, Equatable {
        public var queues: [String]
        public var threads: Int
        public var pollingIntervalMilliseconds: Int
        /// The configuration's `handlers:`, by class.
        public var handlers: [String: HandlerPart]
    }

    /// One command handler of the configuration.
    public struct HandlerPart: Codable, Sendable, Equatable {
        public var command: [String]
        public var timeoutMilliseconds: Int?
        public var gracePeriodMilliseconds: Int
        public var maxAttempts: Int?
        public var environment: [String: String]
        public var workingDirectory: String?
        public var user: String?

        init(_ handler: Configuration.Handler) {
            command = handler.command
            timeoutMilliseconds = handler.timeout?.wholeMilliseconds
            gracePeriodMilliseconds = handler.gracePeriod.wholeMilliseconds
            maxAttempts = handler.maxAttempts
            environment = handler.environment
            workingDirectory = handler.workingDirectory
            user = handler.user
        }
    }

    public struct SchedulerPart: Codable, Sendable, Equatable {
        public var pollingIntervalMilliseconds: Int
    }

    public struct DispatcherPart: Codable, Sendable, Equatable {
        public var pollingIntervalMilliseconds: Int
        public var batchSize: Int
    }

    public var kind: ProcessKind
    public var name: String
    public var supervisorID: Int
    public var databaseURL: String
    public var schema: String
    public var heartbeatIntervalMilliseconds: Int
    public var aliveThresholdMilliseconds: Int
    /// The runtime connection's `database.network_timeout` and `statement_timeout`.
    public var networkTimeoutMilliseconds: Int
    public var statementTimeoutMilliseconds: Int
    public var shutdownTimeoutMilliseconds: Int
    public var maxCrashes: Int
    public var preserveFinishedJobs: Bool
    public var clearFinishedAfterSeconds: Int
    public var testHandlers: Bool
    public var worker: WorkerPart?
    public var dispatcher: DispatcherPart?
    public var scheduler: SchedulerPart? = nil

    /// What makes two children interchangeable, for reload: everything but the name.
    public var role: ChildSpec {
        var role = self
        role.name = ""
        return role
    }

    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// Reads and removes the spec from this process's environment.
    public static func takeFromEnvironment() throws -> ChildSpec {
        guard let text = getenv(environmentVariable).map({ String(cString: $0) }) else {
            throw ValidationFailure("\(environmentVariable) is not set: this command is started by `drover start`, not by hand")
        }
        unsetenv(environmentVariable)
        return try JSONDecoder().decode(ChildSpec.self, from: Data(text.utf8))
    }
}

public struct ValidationFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A failure that may pass by itself (a descriptor limit, a user database that did not answer):
/// a child that meets it while starting exits ``ExitStatus/transient`` and is started again.
public struct TransientFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// Whether a system call that failed with `code` may succeed if tried again later.
    static func isTransient(errno code: Int32) -> Bool {
        [EMFILE, ENFILE, ENOMEM, EAGAIN, EINTR, ENOSPC, EIO, ETIMEDOUT, ENOBUFS].contains(code)
    }
}

extension Duration {
    init(milliseconds value: Int) { self = .milliseconds(Int64(value)) }
    var wholeMilliseconds: Int { Int((seconds * 1000).rounded()) }
}
