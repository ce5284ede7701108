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

/// After a failed attempt: run again after a delay, or fail for good.
public enum AttemptDecision: Sendable, Equatable {
    case retry(afterSeconds: Double)
    case failForGood

    /// The policy: a job fails for good when the failure is permanent (exit 100, a cancellation,
    /// an unknown class) or when `failedAttempts` reached `maxAttempts`; otherwise it is retried
    /// after `retryPolicy`'s backoff.
    public static func after(
        failedAttempts: Int, maxAttempts: Int, permanent: Bool, retryPolicy: RetryPolicy,
        random: Double = Double.random(in: 0..<1)
    ) -> AttemptDecision {
        if permanent || failedAttempts >= maxAttempts { return .failForGood }
        return .retry(afterSeconds: retryPolicy.delay(afterFailedAttempts: failedAttempts, random: random))
    }
}

extension JobStore {
    /// Records a failed attempt of a job claimed by `processID`, exactly once.
    ///
    /// The error is kept as the job's `last_error`. With attempts left (and `permanent` false) the
    /// same job row is scheduled again after the ``RetryPolicy`` backoff (`retryPolicy`, a
    /// handler's or a job type's, else the store's), and the delay and the policy are kept in its
    /// `last_error` for `drover jobs show`; otherwise it moves to failed. `maxAttempts` (a
    /// handler's) replaces the job's own when given. Either way the job gives its concurrency
    /// slot back.
    public func fail(
        _ jobID: Int, processID: Int, error: JobFailure, permanent: Bool = false, maxAttempts: Int? = nil,
        retryPolicy: RetryPolicy? = nil, on database: Driver.Database
    ) throws -> FailOutcome {
        let policy = retryPolicy ?? self.retryPolicy
        let now = self.now()
        return try database.atomically {
            // The claim's removal is the lock: a failure racing a release makes one of them act.
            guard try database.change(
                "DELETE FROM \(claimed) WHERE job_id = \(jobID) AND process_id = \(processID)", prepared: true) == 1 else {
                return .dropped
            }
            let row = try database.fetch("""
                UPDATE \(jobs) SET attempts = attempts + 1, max_attempts = coalesce(\(maxAttempts), max_attempts),
                    updated_at = \(now.sql)
                WHERE id = \(jobID)
                RETURNING id, attempts, max_attempts, queue_name, class_name, priority, concurrency_key, batch_id, has_dependants
                """, prepared: true)[0]
            let queue = try row.decode("queue_name", as: String.self)
            let className = try row.decode("class_name", as: String.self)
            let attempts = try row.decode("attempts", as: Int.self)
            let decision = AttemptDecision.after(
                failedAttempts: attempts, maxAttempts: try row.decode("max_attempts", as: Int.self), permanent: permanent,
                retryPolicy: policy)
            let outcome: FailOutcome
            switch decision {
            case .failForGood:
                // The error is written once, by the branch: here as it came, below with the retry's delay.
                try database.change("UPDATE \(jobs) SET failed_at = \(now.sql), last_error = \(error.json) WHERE id = \(jobID)",
                                    prepared: true)
                try database.change("""
                    INSERT INTO \(failed) (job_id, error, created_at) VALUES (\(jobID), \(error.json), \(now.sql))
                    """, prepared: true)
                outcome = .failed(attempts: attempts)
                let cancelled = error.errorClass == JobFailure.cancelledClass
                try count(cancelled ? .cancelled : .failed, queue: queue, className: className, on: database)
                try enqueueFailureHooks(for: [jobID], cancelled: cancelled ? [jobID] : [], on: database)
                try settle([try EndedJob(row: row, finished: false)], now: now, on: database)
            case .retry(let seconds):
                var explained = error
                explained.retryIn = (seconds * 1000).rounded() / 1000
                explained.backoff = policy.description
                try database.change("UPDATE \(jobs) SET last_error = \(explained.json) WHERE id = \(jobID)", prepared: true)
                let at = try database.fetch("""
                    INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
                    VALUES (\(jobID), \(queue), \(try row.decode("priority", as: Int.self)),
                            \(now.after(seconds)), \(now.sql))
                    RETURNING scheduled_at
                    """, prepared: true)[0].decode("scheduled_at", as: Date.self)
                outcome = .retryScheduled(at: at, attempts: attempts)
                try count(.retried, queue: queue, className: className, on: database)
            }
            if error.errorClass == JobFailure.timeoutClass { try count(.timedOut, queue: queue, className: className, on: database) }
            // Failed or waiting for its retry, it no longer holds a slot of its concurrency key.
            if let key = try row.decode("concurrency_key", as: String?.self) { try signal([key], now: now, on: database) }
            return outcome
        }
    }
}
