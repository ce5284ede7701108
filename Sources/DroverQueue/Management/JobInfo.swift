import DroverPersistence
import Foundation

/// Where a job is in its life: the execution row that points at it, or finished.
public enum JobState: String, Sendable, Codable, CaseIterable {
    /// `waiting`: for the jobs it depends on (``NewJob/after``) to end.
    case scheduled, ready, claimed, blocked, waiting, failed, finished
}

/// A job as the management commands show it.
public struct JobInfo: Sendable, Equatable {
    public let id: Int
    public let queue: String
    public let className: String
    public let state: JobState
    public let priority: Int
    /// Failed attempts so far.
    public let attempts: Int
    public let maxAttempts: Int
    public let crashes: Int
    /// Times it asked to run again later (``JobStore/snooze(_:processID:for:maxSnoozes:maxAttempts:retryPolicy:on:)``).
    public let snoozes: Int
    public let createdAt: Date
    /// When a scheduled job (or a retry) runs next.
    public let nextRunAt: Date?
    /// The process holding a claimed job.
    public let claimedBy: Int?
    public let finishedAt: Date?
    public let failedAt: Date?
    public let lastError: JobFailure?
    /// Only in ``JobStore/job(_:on:)``, not in listings.
    public let arguments: JSON?
    /// The batch it belongs to.
    public let batchID: Int?
    /// What it handed back when it finished; only in ``JobStore/job(_:on:)``.
    public let result: JSON?

    init(row: Row) throws {
        id = try row.decode("id")
        queue = try row.decode("queue_name")
        className = try row.decode("class_name")
        let stateName = try row.decode("state", as: String.self)
        guard let state = JobState(rawValue: stateName) else {
            throw QueueError(.wrongState, "job \(id) has no execution row and is not finished: the data is inconsistent")
        }
        self.state = state
        priority = try row.decode("priority")
        attempts = try row.decode("attempts")
        maxAttempts = try row.decode("max_attempts")
        crashes = try row.decode("crashes")
        snoozes = try row.decode("snoozes")
        createdAt = try row.decode("created_at")
        nextRunAt = try row.decode("next_run_at")
        claimedBy = try row.decode("claimed_by")
        finishedAt = try row.decode("finished_at")
        failedAt = try row.decode("failed_at")
        lastError = try row.decode("last_error", as: JSON?.self).map { try $0.decode(JobFailure.self) }
        arguments = try row.decode("arguments")
        batchID = try row.decode("batch_id")
        result = try row.decode("result")
    }
}

extension JobStore {
    /// The state of job `j`, from the execution row that points at it.
    var stateExpression: SQL {
        """
        CASE WHEN j.finished_at IS NOT NULL THEN 'finished'
             WHEN EXISTS (SELECT 1 FROM \(ready) x WHERE x.job_id = j.id) THEN 'ready'
             WHEN EXISTS (SELECT 1 FROM \(claimed) x WHERE x.job_id = j.id) THEN 'claimed'
             WHEN EXISTS (SELECT 1 FROM \(scheduled) x WHERE x.job_id = j.id) THEN 'scheduled'
             WHEN EXISTS (SELECT 1 FROM \(blocked) x WHERE x.job_id = j.id) THEN 'blocked'
             WHEN EXISTS (SELECT 1 FROM \(waiting) x WHERE x.job_id = j.id) THEN 'waiting'
             WHEN EXISTS (SELECT 1 FROM \(failed) x WHERE x.job_id = j.id) THEN 'failed'
             ELSE 'none' END
        """
    }

    /// The columns `JobInfo(row:)` reads; `j` is the job.
    func jobInfoColumns(withArguments: Bool) -> SQL {
        """
        j.id, j.queue_name, j.class_name, j.priority, j.attempts, j.max_attempts, j.crashes, j.snoozes, j.created_at,
        j.finished_at, j.failed_at, j.last_error, \(unsafeRaw: withArguments ? "j.arguments" : "NULL AS arguments"),
        j.batch_id, \(unsafeRaw: withArguments ? "j.result" : "NULL AS result"),
        (SELECT s.scheduled_at FROM \(scheduled) s WHERE s.job_id = j.id) AS next_run_at,
        (SELECT c.process_id FROM \(claimed) c WHERE c.job_id = j.id) AS claimed_by,
        \(stateExpression) AS state
        """
    }

    /// The table holding jobs in `state` (nil for finished, which has none).
    func executions(of state: JobState) -> SQLIdentifier? {
        switch state {
        case .scheduled: return scheduled
        case .ready: return ready
        case .claimed: return claimed
        case .blocked: return blocked
        case .waiting: return waiting
        case .failed: return failed
        case .finished: return nil
        }
    }

    /// Jobs, newest first, filtered by queue, state and class.
    public func listJobs(
        queue: String? = nil, state: JobState? = nil, className: String? = nil, limit: Int = 50, on database: Driver.Database
    ) throws -> [JobInfo] {
        try QueueError.require("limit", limit, atLeast: 0)
        if let queue { try JobRules.checkQueueName(queue, code: .invalidQueue) }
        var conditions: [SQL] = []
        if let queue { conditions.append("j.queue_name = \(queue)") }
        if let className { conditions.append("j.class_name = \(className)") }
        if let state {
            if let table = executions(of: state) {
                conditions.append("j.id IN (SELECT job_id FROM \(table))")
            } else {
                conditions.append("j.finished_at IS NOT NULL")
            }
        }
        let filter = conditions.isEmpty ? SQL("1 = 1") : SQL.joined(conditions, separator: " AND ")
        // The states of the page's rows only (see findJobs).
        return try database.fetch("""
            SELECT \(jobInfoColumns(withArguments: false))
            FROM (SELECT * FROM \(jobs) j WHERE \(filter) ORDER BY j.id DESC LIMIT \(limit)) j ORDER BY j.id DESC
            """).map(JobInfo.init(row:))
    }

    /// One job with its arguments, or nil when there is no such job.
    public func job(_ id: Int, on database: Driver.Database) throws -> JobInfo? {
        try database.fetch("SELECT \(jobInfoColumns(withArguments: true)) FROM \(jobs) j WHERE j.id = \(id)").first.map(JobInfo.init(row:))
    }

    /// The state of each of `ids` that exists.
    func states(of ids: [Int], on database: Driver.Database) throws -> [Int: JobState] {
        var states: [Int: JobState] = [:]
        for row in try database.fetch("SELECT j.id, \(stateExpression) AS state FROM \(jobs) j WHERE \(driver.contains("j.id", ids: ids))") {
            states[try row.decode("id")] = JobState(rawValue: try row.decode("state", as: String.self))
        }
        return states
    }
}
