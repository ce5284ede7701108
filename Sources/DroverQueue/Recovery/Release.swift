import DroverPersistence

/// What became of the jobs a process had claimed.
public struct ReleaseOutcome: Sendable, Equatable {
    /// Back in ready, for another worker.
    public let released: [Int]
    /// Failed for good: they crashed their process `maxCrashes` times (crash releases only).
    public let failed: [Int]

    public init(released: [Int], failed: [Int]) {
        self.released = released
        self.failed = failed
    }
}

/// Why a process let go of its jobs. Either way, a job whose cancellation was asked for fails as
/// cancelled instead of running again.
public enum ReleaseReason: Sendable, Equatable {
    /// It stopped gracefully: its jobs go back to ready and no counter changes.
    case graceful
    /// It died (killed, crashed, pruned): each job's crash count goes up by one, and a job that
    /// reaches `maxCrashes` fails with `failure` as its error instead of running again.
    case crashed(JobFailure, maxCrashes: Int)
}

extension JobStore {
    /// Lets go of the jobs `processID` has claimed (all of them, or only `jobIDs`), in one statement,
    /// and wakes workers on the queues that got jobs back.
    ///
    /// The claim's removal is the lock: a finish racing a release makes exactly one of them act.
    @discardableResult
    public func release(
        processID: Int, jobIDs: [Int]? = nil, reason: ReleaseReason, on connection: Connection
    ) throws(DatabaseError) -> ReleaseOutcome {
        let onlyThese: SQL = jobIDs.map { "AND job_id = ANY(\($0))" } ?? ""
        let update: SQL
        switch reason {
        case .graceful:
            update = """
                UPDATE \(jobs) j
                SET updated_at = now(),
                    last_error = CASE WHEN gone.cancelled THEN \(Self.cancelledError.json) ELSE j.last_error END,
                    failed_at = CASE WHEN gone.cancelled THEN now() END
                FROM gone WHERE j.id = gone.job_id
                """
        case .crashed(let failure, let maxCrashes):
            update = """
                UPDATE \(jobs) j
                SET crashes = j.crashes + 1,
                    last_error = CASE WHEN gone.cancelled THEN \(Self.cancelledError.json)
                                      ELSE \(failure.json) || jsonb_build_object('crashes', j.crashes + 1) END,
                    updated_at = now(), failed_at = CASE WHEN gone.cancelled OR j.crashes + 1 >= \(maxCrashes) THEN now() END
                FROM gone WHERE j.id = gone.job_id
                """
        }
        let rows = try connection.query("""
            WITH gone AS (
                DELETE FROM \(claimed) WHERE process_id = \(processID) \(onlyThese)
                RETURNING job_id, cancel_requested_at IS NOT NULL AS cancelled
            ), counted AS (
                \(update)
                RETURNING j.id, j.queue_name, j.priority, j.failed_at, j.last_error, j.concurrency_key
            ), back AS (
                INSERT INTO \(ready) (job_id, queue_name, priority)
                SELECT id, queue_name, priority FROM counted WHERE failed_at IS NULL
                RETURNING job_id, queue_name
            ), dead AS (
                INSERT INTO \(failed) (job_id, error) SELECT id, last_error FROM counted WHERE failed_at IS NOT NULL
            ), woken AS (
                \(notifyingQueues(of: "back"))
            )
            SELECT c.id, c.failed_at IS NOT NULL AS failed, c.concurrency_key FROM counted c, woken ORDER BY c.id
            """)
        var released: [Int] = []
        var failed: [Int] = []
        // A job back in ready keeps its concurrency slot; one that failed gives it back.
        var keys: [String] = []
        for row in rows {
            let id = try row.decode("id", as: Int.self)
            if try row.decode("failed", as: Bool.self) {
                failed.append(id)
                if let key = try row.decode("concurrency_key", as: String?.self) { keys.append(key) }
            } else {
                released.append(id)
            }
        }
        try signal(keys, on: connection)
        return ReleaseOutcome(released: released, failed: failed)
    }
}
