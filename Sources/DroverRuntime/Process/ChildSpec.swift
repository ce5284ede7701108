import CProcess
import DroverQueue
import Foundation

/// What a supervisor tells a child it starts: everything the child needs, so that the child never
/// reads a configuration file that may have changed since the supervisor read it.
///
/// It holds the database URL, so it travels as JSON in a memory file the child inherits as
/// descriptor 5 (``memoryFile()``, ``read()``), which the child closes once read: never in argv,
/// which every user can read, nor in the environment, which stays readable in
/// `/proc/PID/environ` for the life of the process (`unsetenv` does not change what that file
/// shows) to every process of the same user, job commands included.
public struct ChildSpec: Codable, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The descriptor a child reads its spec from: 3 is the parent-death pipe, 4 the life-sign pipe.
    public static let descriptor: Int32 = 5

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
        public var retry: RetryPolicy?
        public var maxSnoozes: Int
        public var environment: [String: String]
        public var workingDirectory: String?
        public var user: String?

        init(_ handler: Configuration.Handler) {
            command = handler.command
            timeoutMilliseconds = handler.timeout?.wholeMilliseconds
            gracePeriodMilliseconds = handler.gracePeriod.wholeMilliseconds
            maxAttempts = handler.maxAttempts
            retry = handler.retry
            maxSnoozes = handler.maxSnoozes
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

    /// The dashboard (`web:`). It says where the password is, never the password, which the
    /// child reads itself (``WebSecretSource/read(environment:)``).
    public struct WebPart: Codable, Sendable, Equatable {
        public var listen: ListenAddress
        public var readOnly: Bool
        /// nil: no authentication (a loopback address or a unix socket).
        public var auth: WebSecretSource?
        /// The password file's identity when the supervisor looked (``WebSecretSource/stamp(environment:)``):
        /// a reload that finds the file replaced starts a new web child, which reads it again.
        public var passwordStamp: String?

        public init(listen: ListenAddress, readOnly: Bool, auth: WebSecretSource? = nil, passwordStamp: String? = nil) {
            self.listen = listen
            self.readOnly = readOnly
            self.auth = auth
            self.passwordStamp = passwordStamp
        }
    }

    public var kind: ProcessKind
    public var name: String
    public var supervisorID: Int
    public var databaseURL: String
    /// The supervisor's `PGPASSWORD`, which its children do not get in their environment: libpq's
    /// password when the URL gives none, as `PGPASSWORD` would be.
    public var pgpassword: String? = nil
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
    public var web: WebPart? = nil

    /// What makes two children interchangeable, for reload: everything but the name.
    public var role: ChildSpec {
        var role = self
        role.name = ""
        return role
    }

    /// Which child this is, for messages: never the database URL or the password.
    public var description: String { "\(kind.rawValue) \(name.isEmpty ? "(unnamed)" : name)" }
    public var debugDescription: String { description }

    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// A close-on-exec memory file holding this spec, to give a child as descriptor 5; the caller
    /// closes it once the child is started.
    ///
    /// ```swift
    /// let file = try spec.memoryFile()
    /// defer { close(file) }
    /// let pid = try Spawn.start("/proc/self/exe", arguments: ["_child", "worker"], environment: environment,
    ///                           descriptors: [deathPipe, lifeSigns, file])
    /// ```
    public func memoryFile() throws(SpawnError) -> Int32 {
        let bytes = Array(encoded().utf8)
        let descriptor = bytes.withUnsafeBytes { drover_memfd_holding("drover-child-spec", $0.baseAddress, $0.count) }
        guard descriptor >= 0 else { throw SpawnError(executable: "a child: cannot create the memory file of its spec", errno: errno) }
        return descriptor
    }

    /// Reads the spec its supervisor gave this process on descriptor 5, and closes it.
    public static func read() throws -> ChildSpec {
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw ValidationFailure("descriptor \(descriptor) holds no child spec: this command is started by `drover start`, not by hand")
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw ValidationFailure("cannot read the child spec on descriptor \(descriptor): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
        return try JSONDecoder().decode(ChildSpec.self, from: Data(bytes))
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
