import DroverPersistence
import Foundation

/// What became of a job whose attempt failed.
public enum FailOutcome: Sendable, Equatable {
    /// It runs again at `at`; `attempts` attempts have failed so far.
    case retryScheduled(at: Date, attempts: Int)
    /// It is out of attempts (or failed permanently) and waits in failed for a person.
    case failed(attempts: Int)
    /// This process no longer held its claim: the late failure was dropped.
    case dropped
}

extension JobStore {
    /// Records a failed attempt of a job claimed by `processID`, exactly once, in one statement.
    ///
    /// The error is kept as the job's `last_error`. With attempts left (and `permanent` false) the same
    /// job row is scheduled again after the ``RetryPolicy`` backoff; otherwise it moves to failed.
    /// `maxAttempts` (a handler's) replaces the job's own when given.
    public func fail(
        _ jobID: Int, processID: Int, error: JobFailure, permanent: Bool = false, maxAttempts: Int? = nil,
        on connection: Connection
    ) throws(DatabaseError) -> FailOutcome {
        let policy = retryPolicy
        let rows = try connection.query(prepared: true, """
            WITH released AS (
                DELETE FROM \(claimed) WHERE job_id = \(jobID) AND process_id = \(processID) RETURNING job_id
            ), counted AS (
                UPDATE \(jobs) j
                SET attempts = j.attempts + 1, last_error = \(error.json), updated_at = now(),
                    max_attempts = coalesce(\(maxAttempts)::integer, j.max_attempts),
                    failed_at = CASE WHEN \(permanent) OR j.attempts + 1 >= coalesce(\(maxAttempts)::integer, j.max_attempts) THEN now() END
                FROM released WHERE j.id = released.job_id
                RETURNING j.id, j.queue_name, j.priority, j.attempts, j.failed_at, j.concurrency_key
            ), retried AS (
                INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at)
                SELECT id, queue_name, priority,
                       now() + make_interval(secs => least(\(policy.maxDelay.seconds), \(policy.baseDelay.seconds) * 2 ^ (attempts - 1))
                                                    * (1 - \(policy.jitter) * random()))
                FROM counted WHERE failed_at IS NULL
                RETURNING job_id, scheduled_at
            ), dead AS (
                INSERT INTO \(failed) (job_id, error) SELECT id, \(error.json) FROM counted WHERE failed_at IS NOT NULL
            )
            SELECT c.attempts, r.scheduled_at, c.concurrency_key FROM counted c LEFT JOIN retried r ON r.job_id = c.id
            """)
        guard let row = rows.first else { return .dropped }
        // Failed or waiting for its retry, it no longer holds a slot of its concurrency key.
        if let key = try row.decode("concurrency_key", as: String?.self) { try signal([key], on: connection) }
        let attempts = try row.decode("attempts", as: Int.self)
        if let at = try row.decode("scheduled_at", as: Date?.self) {
            return .retryScheduled(at: at, attempts: attempts)
        }
        return .failed(attempts: attempts)
    }
}
