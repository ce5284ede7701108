/// The queue layer's error: a job or request that cannot be carried out as asked.
///
/// Database failures (connection lost, lock timeouts, …) reach callers as ``DatabaseError``.
public struct QueueError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A job to enqueue breaks a rule (see ``JobRules``); ``QueueError/field`` names the field.
        public static let invalidJob = Code("invalidJob")
        /// A queue name or pattern is not valid.
        public static let invalidQueue = Code("invalidQueue")
        /// No job has that id.
        public static let jobNotFound = Code("jobNotFound")
        /// The job is not in a state the operation applies to (retrying a job that has not failed).
        public static let wrongState = Code("wrongState")
        /// No recurring task has that key.
        public static let taskNotFound = Code("taskNotFound")
        /// The recurring task comes from the configuration file: change it there.
        public static let staticTask = Code("staticTask")
        /// The backend cannot do this (a PostgreSQL-only feature asked of SQLite).
        public static let unsupported = Code("unsupported")
        /// A parameter of the request is out of its range (a negative limit, a batch of none, a
        /// concurrency rule without slots); ``QueueError/field`` names it.
        public static let invalidRequest = Code("invalidRequest")
    }

    public var code: Code
    public var message: String
    /// The field at fault, for ``Code-swift.struct/invalidJob``.
    public var field: String?
    /// The jobs at fault, for ``Code-swift.struct/jobNotFound`` and ``Code-swift.struct/wrongState``.
    public var jobIDs: [Int]
    /// The job at fault by its place in the batch enqueued (from 0), for ``Code-swift.struct/invalidJob``.
    public var jobIndex: Int?

    public init(_ code: Code, _ message: String, field: String? = nil, jobIDs: [Int] = []) {
        self.code = code
        self.message = message
        self.field = field
        self.jobIDs = jobIDs
    }

    public var description: String { message }
}

extension QueueError {
    /// This error as said of the job at `index` (from 0) of a batch of `count`: "job 3: …" when
    /// the batch has several, so that the caller knows which.
    public func about(job index: Int, of count: Int) -> QueueError {
        var error = self
        error.jobIndex = index
        guard count > 1 else { return error }
        error.message = "job \(index + 1): \(message)"
        return error
    }
}

extension QueueError {
    /// Throws `invalidRequest` unless `value` (the parameter `name`) is at least `minimum`.
    static func require(_ name: String, _ value: Int, atLeast minimum: Int) throws(QueueError) {
        guard value >= minimum else {
            throw QueueError(.invalidRequest, "\(name) \(value) is out of range: give \(minimum) or more", field: name)
        }
    }
}
