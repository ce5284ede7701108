import DroverPersistence

/// What became of jobs a process reported finished.
public struct FinishOutcome: Sendable, Equatable {
    /// Jobs now finished (or deleted, when finished jobs are not preserved).
    public let finished: [Int]
    /// Jobs whose claim this process no longer held (released or recovered meanwhile): their late
    /// result was dropped.
    public let dropped: [Int]
}

extension JobStore {
    /// Marks jobs finished, exactly once, in one round trip.
    ///
    /// Finishing first removes the job's claim by `processID`; a job whose claim is gone (released,
    /// recovered by a pruner, claimed again by another process) is not touched and is reported in
    /// ``FinishOutcome/dropped``. Racing a release, a job ends finished or back in ready, never both.
    @discardableResult
    public func finish(_ jobIDs: [Int], processID: Int, on connection: Connection) throws(DatabaseError) -> FinishOutcome {
        guard !jobIDs.isEmpty else { return FinishOutcome(finished: [], dropped: []) }
        let done: SQL = preserveFinishedJobs
            ? "UPDATE \(jobs) SET finished_at = now(), updated_at = now() WHERE id IN (SELECT job_id FROM released) RETURNING id, concurrency_key"
            : "DELETE FROM \(jobs) WHERE id IN (SELECT job_id FROM released) RETURNING id, concurrency_key"
        let rows = try connection.query(prepared: true, """
            WITH released AS (
                DELETE FROM \(claimed) WHERE job_id = ANY(\(jobIDs)) AND process_id = \(processID) RETURNING job_id
            ), done AS (\(done))
            SELECT id, concurrency_key FROM done
            """)
        var finished: [Int] = []
        var keys: [String] = []
        finished.reserveCapacity(rows.count)
        for row in rows {
            finished.append(try row.decode(at: 0, as: Int.self))
            if let key = try row.decode(at: 1, as: String?.self) { keys.append(key) }
        }
        try signal(keys, on: connection)
        let finishedSet = Set(finished)
        return FinishOutcome(finished: finished.sorted(), dropped: jobIDs.filter { !finishedSet.contains($0) })
    }
}
