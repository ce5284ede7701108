import DroverPersistence
import Foundation

/// A job a process has claimed and is to run.
public struct ClaimedJob: Sendable, Equatable {
    public let id: Int
    public let queue: String
    public let className: String
    public let arguments: JSON
    public let priority: Int
    /// Which attempt this run is: 1 the first time, 2 after one failure, …
    public let attempt: Int
    public let maxAttempts: Int
    /// How many times a process died while running this job.
    public let crashes: Int
    /// How long one attempt may run, when the job says.
    public let timeout: Duration?
    public let enqueuedAt: Date
    /// The trace context stored at enqueue (``NewJob/traceContext``); nil when there is none, or
    /// when what is stored is not an object of strings (a claim never fails over it).
    public let traceContext: [String: String]?
    /// Its class's rate limit, when it has one: the claim decides whether it starts.
    let rateLimit: RateLimitRule?
    /// The batch it belongs to: jobs it enqueues with this id join the batch.
    public let batchID: Int?

    init(row: Row) throws(DatabaseError) {
        id = try row.decode("id")
        queue = try row.decode("queue_name")
        className = try row.decode("class_name")
        arguments = try row.decode("arguments")
        priority = try row.decode("priority")
        attempt = try row.decode("attempts", as: Int.self) + 1
        maxAttempts = try row.decode("max_attempts")
        crashes = try row.decode("crashes")
        timeout = try row.decode("timeout_seconds", as: Double?.self).map { Duration.milliseconds(Int64($0 * 1000)) }
        enqueuedAt = try row.decode("created_at")
        traceContext = try row.decode("trace_context", as: JSON?.self).flatMap { try? $0.decode([String: String].self) }
        batchID = try row.decode("batch_id")
        if let template = try row.decode("rate_key", as: String?.self) {
            rateLimit = RateLimitRule(
                className: className, keyTemplate: template, limit: try row.decode("rate_limit"),
                period: .milliseconds(Int64((try row.decode("rate_period", as: Double.self) * 1000).rounded())))
        } else {
            rateLimit = nil
        }
    }
}

extension JobStore {
    /// The names ``claimedJobColumns`` gives its columns, to select them again from a CTE.
    var claimedJobNames: SQL {
        "id, queue_name, class_name, arguments, priority, attempts, max_attempts, crashes, timeout_seconds, created_at, trace_context, "
            + "rate_key, rate_limit, rate_period, batch_id"
    }

    /// The columns `ClaimedJob(row:)` reads; `j` is the job, `rl` its class's rate limit (see
    /// ``rateLimitJoin``).
    var claimedJobColumns: SQL {
        """
        j.id, j.queue_name, j.class_name, j.arguments, j.priority, j.attempts, j.max_attempts, j.crashes,
        \(driver.seconds(of: "j.timeout")) AS timeout_seconds, j.created_at, j.trace_context,
        rl.key_template AS rate_key, rl.max_starts AS rate_limit, \(driver.seconds(of: "rl.period")) AS rate_period, j.batch_id
        """
    }

    /// The join that gives job `j` its class's rate limit as `rl` (a table of a few rows, none
    /// for most classes).
    var rateLimitJoin: SQL { "LEFT JOIN \(rateLimitRules) rl ON rl.class_name = j.class_name" }
}
