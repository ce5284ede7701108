import DroverPersistence

/// Every state change of a job, as SQL transactions on a connection the caller provides.
///
/// A job is one `jobs` row for its whole life; its state is the one execution row that points at it.
/// Operations are grouped by responsibility in this module: `Enqueue/`, `Claim/`, `Finalize/`,
/// `Recovery/`, `Retention/`, `Management/`.
///
/// ```swift
/// let store = try JobStore(schema: "drover")
/// let id = try store.enqueue(NewJob("SendReport", arguments: try JSON(encoding: ["kind": "daily"])), on: db)
/// let jobs = try store.claim(processID: 7, queues: ["default"], limit: 10, on: db)
/// try store.finish(jobs.map(\.id), processID: 7, on: db)
/// ```
public struct JobStore: Sendable {
    /// The schema Drover's tables live in.
    public let schema: SQLIdentifier
    /// How failed attempts are retried.
    public var retryPolicy: RetryPolicy
    /// Keep finished jobs (with `finished_at`) until retention clears them, or delete them at once.
    public var preserveFinishedJobs: Bool

    public init(
        schema: String = DroverSchema.defaultName, retryPolicy: RetryPolicy = RetryPolicy(),
        preserveFinishedJobs: Bool = true
    ) throws(DatabaseError) {
        self.schema = try SQLIdentifier.validated(schema, what: "schema name")
        self.retryPolicy = retryPolicy
        self.preserveFinishedJobs = preserveFinishedJobs
    }

    /// The channel workers LISTEN on; enqueue and release notify it with the queue's name.
    public var wakeChannel: String { schema.parts[0] }

    func table(_ name: String) -> SQLIdentifier { schema.qualifying(name) }

    /// A CTE body that notifies ``wakeChannel`` once per distinct queue of `source`, a CTE of the
    /// same statement with a `queue_name` column. Reference it from the final SELECT so it runs.
    func notifyingQueues(of source: String) -> SQL {
        """
        SELECT count(pg_notify(\(wakeChannel), queue_name)) AS n FROM (SELECT DISTINCT queue_name FROM \(unsafeRaw: source)) q
        """
    }

    var jobs: SQLIdentifier { table("jobs") }
    var ready: SQLIdentifier { table("ready_executions") }
    var claimed: SQLIdentifier { table("claimed_executions") }
    var scheduled: SQLIdentifier { table("scheduled_executions") }
    var blocked: SQLIdentifier { table("blocked_executions") }
    var failed: SQLIdentifier { table("failed_executions") }
    var pauses: SQLIdentifier { table("pauses") }
    var processes: SQLIdentifier { table("processes") }
}
