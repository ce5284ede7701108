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
    /// Marks jobs finished, exactly once.
    ///
    /// Finishing first removes the job's claim by `processID`; a job whose claim is gone (released,
    /// recovered by a pruner, claimed again by another process) is not touched and is reported in
    /// ``FinishOutcome/dropped``. Racing a release, a job ends finished or back in ready, never
    /// both. A finished job gives its concurrency slot back.
    ///
    /// `results` holds what jobs handed back (a JSON value of at most ``JobRules/maxResultBytes``
    /// each), kept with the finished job and given to the jobs that wait for it. A job of a batch
    /// is counted in its batch, and jobs waiting for it may run (``NewJob/after``), in the same
    /// transaction.
    ///
    /// - Throws: ``QueueError`` (`invalidJob`, field `result`) for a result too large, before
    ///   anything is written.
    @discardableResult
    public func finish(_ jobIDs: [Int], processID: Int, results: [Int: JSON] = [:], on database: Driver.Database) throws -> FinishOutcome {
        let wanted = Array(Set(jobIDs)).sorted()
        guard !wanted.isEmpty else { return FinishOutcome(finished: [], dropped: []) }
        for (id, result) in results.sorted(by: { $0.key < $1.key }) {
            do {
                try JobRules.checkResult(result)
            } catch {
                var error = error
                error.jobIDs = [id]
                error.message = "job \(id): \(error.message)"
                throw error
            }
        }
        let now = self.now()
        let done = try database.atomically {
            let done = try driver.finishClaims(wanted, processID: processID, now: now, deleting: !preserveFinishedJobs, in: self, on: database)
            if !results.isEmpty && preserveFinishedJobs {
                for claim in done {
                    guard let result = results[claim.id] else { continue }
                    try database.change("UPDATE \(jobs) SET result = \(result) WHERE id = \(claim.id)")
                }
            }
            try signal(done.compactMap(\.concurrencyKey), now: now, on: database)
            try settle(done.map { EndedJob(id: $0.id, batchID: $0.batchID, hasDependants: $0.hasDependants, finished: true,
                                           result: results[$0.id]) }, now: now, on: database)
            return done
        }
        let finished = Set(done.map(\.id))
        return FinishOutcome(finished: finished.sorted(), dropped: wanted.filter { !finished.contains($0) })
    }
}

extension PostgresDriver {
    /// One statement: the claims' removal (the lock that makes a finish and a release exclusive)
    /// and the jobs' update or deletion.
    public func finishClaims(
        _ jobIDs: [Int], processID: Int, now: Moment, deleting: Bool, in store: JobStore<Self>, on database: Connection
    ) throws -> [FinishedClaim] {
        let done: SQL = deleting
            ? """
              DELETE FROM \(store.jobs) WHERE id IN (SELECT job_id FROM released)
              RETURNING id, concurrency_key, queue_name, class_name, batch_id, has_dependants
              """
            : """
              UPDATE \(store.jobs) SET finished_at = \(now.sql), updated_at = \(now.sql) WHERE id IN (SELECT job_id FROM released)
              RETURNING id, concurrency_key, queue_name, class_name, batch_id, has_dependants
              """
        let rows = try database.query(prepared: true, """
            WITH released AS (
                DELETE FROM \(store.claimed) WHERE job_id = ANY(\(jobIDs)) AND process_id = \(processID) RETURNING job_id, created_at
            ), done AS (\(done)
            ), counted AS (
                \(store.counting(.duration, queue: "d.queue_name", className: "d.class_name",
                                 seconds: store.seconds(from: "r.created_at", to: now.sql),
                                 from: "done d JOIN released r ON r.job_id = d.id"))
            )
            SELECT id, concurrency_key, batch_id, has_dependants FROM done
            """)
        var finished: [FinishedClaim] = []
        finished.reserveCapacity(rows.count)
        for row in rows {
            finished.append(FinishedClaim(id: try row.decode(at: 0, as: Int.self), concurrencyKey: try row.decode(at: 1, as: String?.self),
                                          batchID: try row.decode(at: 2, as: Int?.self), hasDependants: try row.decode(at: 3, as: Bool.self)))
        }
        return finished
    }
}

extension SQLiteDriver {
    public func finishClaims(
        _ jobIDs: [Int], processID: Int, now: Moment, deleting: Bool, in store: JobStore<Self>, on database: SQLiteConnection
    ) throws -> [FinishedClaim] {
        try database.atomically {
            // Counted first, while the claims say when they were made (``JobMetric/duration``).
            try database.execute(store.counting(
                .duration, queue: "j.queue_name", className: "j.class_name", seconds: store.seconds(from: "c.created_at", to: now.sql),
                from: """
                    \(store.claimed) c JOIN \(store.jobs) j ON j.id = c.job_id
                    WHERE c.process_id = \(processID) AND \(contains("c.job_id", ids: jobIDs))
                    """))
            let released = try database.ids("""
                DELETE FROM \(store.claimed) WHERE process_id = \(processID) AND \(contains("job_id", ids: jobIDs)) RETURNING job_id
                """, column: "job_id")
            guard !released.isEmpty else { return [] }
            // The keys, batches and dependants first, and only of the few jobs that have one:
            // every value a row returns is text to parse, and finishing is hot.
            var special: [Int: FinishedClaim] = [:]
            for row in try database.query("""
                SELECT id, concurrency_key, batch_id, has_dependants FROM \(store.jobs)
                WHERE \(contains("id", ids: released)) AND (concurrency_key IS NOT NULL OR batch_id IS NOT NULL OR has_dependants)
                """) {
                let id = try row.decode("id", as: Int.self)
                special[id] = FinishedClaim(id: id, concurrencyKey: try row.decode("concurrency_key"), batchID: try row.decode("batch_id"),
                                            hasDependants: try row.decode("has_dependants"))
            }
            if deleting {
                try database.execute("DELETE FROM \(store.jobs) WHERE \(contains("id", ids: released))")
            } else {
                try database.execute("""
                    UPDATE \(store.jobs) SET finished_at = \(now.sql), updated_at = \(now.sql) WHERE \(contains("id", ids: released))
                    """)
            }
            return released.map { special[$0] ?? FinishedClaim(id: $0, concurrencyKey: nil) }
        }
    }
}
