import DroverPersistence

/// What `cancel` did to a job.
public enum CancelOutcome: Sendable, Equatable {
    /// It was waiting (ready, scheduled or blocked) and is gone.
    case discarded(was: JobState)
    /// It is running: the worker `processID` was asked to stop it; it then fails as cancelled.
    case requested(processID: Int)
}

extension JobStore {
    /// Cancels job `id`: a waiting job is deleted at once (a ready one gives its concurrency slot
    /// back); a running one is marked on its claim and its worker is told, so that it stops the
    /// job, which then fails without retries. A job whose worker dies first fails as cancelled when
    /// it is released.
    ///
    /// - Throws: ``QueueError`` `jobNotFound`, or `wrongState` for a finished or failed job.
    public func cancel(_ id: Int, on database: Driver.Database) throws -> CancelOutcome {
        let now = self.now()
        return try database.atomically {
            // Each DELETE waits for a claim or release in progress on its row (PostgreSQL), so a
            // job moving between states is found in the state it lands in.
            for (table, state) in [(ready, JobState.ready), (scheduled, .scheduled), (blocked, .blocked), (waiting, .waiting)]
            where try database.change("DELETE FROM \(table) WHERE job_id = \(id)") > 0 {
                try count(.cancelled, jobs: [id], on: database)
                let row = try database.fetch("DELETE FROM \(jobs) WHERE id = \(id) RETURNING id, concurrency_key, batch_id, has_dependants")[0]
                // A ready job held a slot of its concurrency key.
                if state == .ready, let key = try row.decode("concurrency_key", as: String?.self) { try signal([key], now: now, on: database) }
                try settle([try EndedJob(row: row, finished: false)], now: now, on: database)
                return .discarded(was: state)
            }
            if let row = try database.fetch("""
                UPDATE \(claimed) SET cancel_requested_at = coalesce(cancel_requested_at, \(now.sql))
                WHERE job_id = \(id) RETURNING process_id
                """).first {
                let processID = try row.decode("process_id", as: Int.self)
                try driver.askToCancel(processID: processID, in: self, on: database)
                return .requested(processID: processID)
            }
            guard let state = try states(of: [id], on: database)[id] else {
                throw QueueError(.jobNotFound, "no job with id \(id)", jobIDs: [id])
            }
            throw QueueError(.wrongState, "job \(id) is \(state.rawValue): only waiting or running jobs can be cancelled", jobIDs: [id])
        }
    }

    /// Cancels those of `ids` that wait (ready, scheduled or blocked) in one transaction, as
    /// ``cancel(_:on:)`` does one: each is deleted and counted as cancelled, and a ready one gives
    /// its concurrency slot back. Returns the ids cancelled; the others (running, finished,
    /// failed, gone) are left as they are for the caller.
    public func cancelWaiting(_ ids: [Int], on database: Driver.Database) throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        let now = self.now()
        return try database.atomically {
            var gone: [Int] = []
            var wereReady: Set<Int> = []
            for table in [ready, scheduled, blocked, waiting] {
                let deleted = try database.ids("DELETE FROM \(table) WHERE \(driver.contains("job_id", ids: ids)) RETURNING job_id",
                                               column: "job_id")
                gone += deleted
                if table == ready { wereReady.formUnion(deleted) }
            }
            guard !gone.isEmpty else { return [] }
            try count(.cancelled, jobs: gone, on: database)
            var keys: [String] = []
            var ended: [EndedJob] = []
            for row in try database.fetch("""
                DELETE FROM \(jobs) WHERE \(driver.contains("id", ids: gone)) RETURNING id, concurrency_key, batch_id, has_dependants
                """) {
                if wereReady.contains(try row.decode("id", as: Int.self)), let key = try row.decode("concurrency_key", as: String?.self) {
                    keys.append(key)
                }
                ended.append(try EndedJob(row: row, finished: false))
            }
            try signal(keys, now: now, on: database)
            try settle(ended.sorted { $0.id < $1.id }, now: now, on: database)
            return gone.sorted()
        }
    }

    /// The jobs claimed by `processID` whose cancellation was asked for.
    public func cancelRequests(processID: Int, on database: Driver.Database) throws -> [Int] {
        try database.ids("""
            SELECT job_id FROM \(claimed) WHERE process_id = \(processID) AND cancel_requested_at IS NOT NULL ORDER BY job_id
            """, column: "job_id", prepared: true)
    }
}
