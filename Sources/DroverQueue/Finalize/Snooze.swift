import DroverPersistence
import Foundation

/// What became of a job whose attempt asked to run again later.
public enum SnoozeOutcome: Sendable, Equatable {
    /// It runs again at `at`, its attempts untouched; it has snoozed `snoozes` times.
    case snoozed(at: Date, snoozes: Int)
    /// It had snoozed `maxSnoozes` times already: this snooze counted as a failed attempt instead.
    case overLimit(FailOutcome)
    /// This process no longer held its claim: the late snooze was dropped.
    case dropped
}

/// How long, and how often, a job may ask to run again later.
public enum SnoozeRules {
    /// The delays a job may snooze for.
    public static let delayRange: ClosedRange<Duration> = .milliseconds(1)...(.seconds(30 * 86_400))
    /// How many times a job may snooze when its handler does not say (`max_snoozes`).
    public static let defaultMaxSnoozes = 100
    /// The range `max_snoozes` takes.
    public static let maxSnoozesRange = 0...1_000_000
    /// The error class of a snooze past the limit, which counts as a failed attempt.
    public static let limitClass = "SnoozeLimit"
}

extension JobStore {
    /// Puts a job claimed by `processID` back to run after `delay`, exactly once, without spending
    /// an attempt: a job that is not ready for its work yet (a rate-limited API, a file not there
    /// yet). The snooze is counted on the job; one past `maxSnoozes` is a failed attempt instead
    /// (error class `SnoozeLimit`), so that a job cannot snooze for ever. The job gives its
    /// concurrency slot back while it waits.
    public func snooze(
        _ jobID: Int, processID: Int, for delay: Duration, maxSnoozes: Int = SnoozeRules.defaultMaxSnoozes,
        maxAttempts: Int? = nil, retryPolicy: RetryPolicy? = nil, on database: Driver.Database
    ) throws -> SnoozeOutcome {
        guard SnoozeRules.delayRange.contains(delay) else {
            throw QueueError(.invalidRequest, "a snooze must be from 1ms to 30d, not \(DurationText.format(delay))", field: "delay")
        }
        try QueueError.require("maxSnoozes", maxSnoozes, atLeast: 0)
        let now = self.now()
        return try database.atomically {
            guard let row = try database.fetch("""
                SELECT j.snoozes FROM \(jobs) j
                WHERE j.id = \(jobID) AND EXISTS (SELECT 1 FROM \(claimed) c WHERE c.job_id = j.id AND c.process_id = \(processID))
                """, prepared: true).first else {
                return .dropped
            }
            let snoozes = try row.decode("snoozes", as: Int.self)
            if snoozes >= maxSnoozes {
                let failure = JobFailure(
                    errorClass: SnoozeRules.limitClass,
                    message: "the job asked to snooze after \(snoozes) snoozes, its limit (max_snoozes): counted as a failed attempt")
                return .overLimit(try fail(jobID, processID: processID, error: failure, maxAttempts: maxAttempts,
                                           retryPolicy: retryPolicy, on: database))
            }
            // The claim's removal is the lock: a snooze racing a release makes one of them act.
            guard try database.change(
                "DELETE FROM \(claimed) WHERE job_id = \(jobID) AND process_id = \(processID)", prepared: true) == 1 else {
                return .dropped
            }
            let job = try database.fetch("""
                UPDATE \(jobs) SET snoozes = snoozes + 1, updated_at = \(now.sql) WHERE id = \(jobID)
                RETURNING snoozes, queue_name, class_name, priority, concurrency_key
                """, prepared: true)[0]
            try count(.snoozed, queue: try job.decode("queue_name", as: String.self), className: try job.decode("class_name", as: String.self),
                      on: database)
            let at = try database.fetch("""
                INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
                VALUES (\(jobID), \(try job.decode("queue_name", as: String.self)), \(try job.decode("priority", as: Int.self)),
                        \(now.after(delay.seconds)), \(now.sql))
                RETURNING scheduled_at
                """, prepared: true)[0].decode("scheduled_at", as: Date.self)
            if let key = try job.decode("concurrency_key", as: String?.self) { try signal([key], now: now, on: database) }
            return .snoozed(at: at, snoozes: try job.decode("snoozes", as: Int.self))
        }
    }
}
