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
    @discardableResult
    public func finish(_ jobIDs: [Int], processID: Int, on database: Driver.Database) throws -> FinishOutcome {
        let wanted = Array(Set(jobIDs)).sorted()
        guard !wanted.isEmpty else { return FinishOutcome(finished: [], dropped: []) }
        let now = self.now()
        let done = try database.atomically {
            let done = try driver.finishClaims(wanted, processID: processID, now: now, deleting: !preserveFinishedJobs, in: self, on: database)
            try signal(done.compactMap(\.concurrencyKey), now: now, on: database)
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
    ) throws -> [(id: Int, concurrencyKey: String?)] {
        let done: SQL = deleting
            ? "DELETE FROM \(store.jobs) WHERE id IN (SELECT job_id FROM released) RETURNING id, concurrency_key, queue_name, class_name"
            : """
              UPDATE \(store.jobs) SET finished_at = \(now.sql), updated_at = \(now.sql) WHERE id IN (SELECT job_id FROM released)
              RETURNING id, concurrency_key, queue_name, class_name
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
            SELECT id, concurrency_key FROM done
            """)
        var finished: [(id: Int, concurrencyKey: String?)] = []
        finished.reserveCapacity(rows.count)
        for row in rows { finished.append((try row.decode(at: 0, as: Int.self), try row.decode(at: 1, as: String?.self))) }
        return finished
    }
}

extension SQLiteDriver {
    public func finishClaims(
        _ jobIDs: [Int], processID: Int, now: Moment, deleting: Bool, in store: JobStore<Self>, on database: SQLiteConnection
    ) throws -> [(id: Int, concurrencyKey: String?)] {
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
            // The keys first, and only the few jobs that have one: every value a row returns is
            // text to parse, and finishing is hot.
            var keys: [Int: String] = [:]
            for row in try database.query("""
                SELECT id, concurrency_key FROM \(store.jobs) WHERE \(contains("id", ids: released)) AND concurrency_key IS NOT NULL
                """) {
                keys[try row.decode("id", as: Int.self)] = try row.decode("concurrency_key", as: String.self)
            }
            if deleting {
                try database.execute("DELETE FROM \(store.jobs) WHERE \(contains("id", ids: released))")
            } else {
                try database.execute("""
                    UPDATE \(store.jobs) SET finished_at = \(now.sql), updated_at = \(now.sql) WHERE \(contains("id", ids: released))
                    """)
            }
            return released.map { ($0, keys[$0]) }
        }
    }
}
