import DroverPersistence

extension JobStore {
    /// Puts failed jobs back in ready (a job with a concurrency key is admitted) with fresh
    /// attempts and crash counts, and wakes workers. Every id must be a failed job, and none may
    /// have a unique key another live job holds; otherwise nothing changes and the error names
    /// the jobs at fault. An id given twice counts once. Returns the ids, in order.
    @discardableResult
    public func retryFailed(_ ids: [Int], on database: Driver.Database) throws -> [Int] {
        let wanted = Array(Set(ids)).sorted()
        let now = self.now()
        return try database.atomically {
            try lockFailed(wanted, doing: "retried", on: database)
            let conflicts = try uniqueKeyConflicts(of: wanted, on: database)
            if let (id, holder, key) = conflicts.first {
                throw QueueError(
                    .wrongState,
                    "job \(id) cannot be retried while job \(holder) holds its unique key \(key); finish or discard that one first; "
                        + "nothing was retried",
                    jobIDs: conflicts.map(\.id))
            }
            let refused = try retryRefusals(wanted, on: database)
            if let (id, dependency) = refused.first {
                throw QueueError(
                    .wrongState,
                    "job \(id) cannot be retried while job \(dependency), which it waits for, has failed: retry job \(dependency) "
                        + "with it (or first); nothing was retried",
                    jobIDs: refused.map(\.id))
            }
            if let raced = try revive(wanted, now: now, on: database).first {
                // A live job with its key was enqueued since the check above.
                throw QueueError(
                    .wrongState,
                    "job \(raced) cannot be retried while another live job holds its unique key; finish or discard that one first; "
                        + "nothing was retried",
                    jobIDs: [raced])
            }
            return wanted
        }
    }

    /// Retries every failed job, `batchSize` per transaction, passing over jobs another
    /// transaction holds and jobs whose unique key a live job holds (they stay failed). Returns
    /// how many it retried.
    @discardableResult
    public func retryAllFailed(batchSize: Int = 1000, on database: Driver.Database) throws -> Int {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        var total = 0
        var after = 0
        while true {
            let now = self.now()
            let (count, last) = try database.inWriteTransaction { () -> (Int, Int?) in
                let batch = try database.ids("""
                    SELECT job_id FROM \(failed) WHERE job_id > \(after) ORDER BY job_id LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked)
                    """, column: "job_id")
                let conflicting = Set(try uniqueKeyConflicts(of: batch, on: database).map(\.id))
                let unretried = batch.filter { !conflicting.contains($0) }
                let refused = Set(try retryRefusals(unretried, on: database).map(\.id))
                let candidates = unretried.filter { !refused.contains($0) }
                let raced = try revive(candidates, now: now, on: database)
                return (candidates.count - raced.count, batch.count < batchSize ? nil : batch.last)
            }
            total += count
            guard let last else { return total }
            after = last
        }
    }

    /// Deletes failed jobs. Every id must be a failed job; otherwise nothing changes. An id given
    /// twice counts once. Returns the ids, in order.
    @discardableResult
    public func discardFailed(_ ids: [Int], on database: Driver.Database) throws -> [Int] {
        let wanted = Array(Set(ids)).sorted()
        return try database.atomically {
            try lockFailed(wanted, doing: "discarded", on: database)
            try count(.discarded, jobs: wanted, on: database)
            return try database.ids("DELETE FROM \(jobs) WHERE \(driver.contains("id", ids: wanted)) RETURNING id").sorted()
        }
    }

    /// Deletes every failed job, `batchSize` per transaction. Returns how many.
    @discardableResult
    public func discardAllFailed(batchSize: Int = 1000, on database: Driver.Database) throws -> Int {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        var total = 0
        while true {
            let deleted = try database.inWriteTransaction { () -> Int in
                let batch = try database.ids("""
                    SELECT job_id FROM \(failed) ORDER BY job_id LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked)
                    """, column: "job_id")
                guard !batch.isEmpty else { return 0 }
                try count(.discarded, jobs: batch, on: database)
                return try database.change("DELETE FROM \(jobs) WHERE \(driver.contains("id", ids: batch))")
            }
            total += deleted
            if deleted < batchSize { return total }
        }
    }

    /// Locks the failed rows of `ids` (in order); throws, naming them, when any id is missing or
    /// not failed.
    private func lockFailed(_ ids: [Int], doing verb: String, on database: Driver.Database) throws {
        let locked = Set(try database.ids("""
            SELECT job_id FROM \(failed) WHERE \(driver.contains("job_id", ids: ids)) ORDER BY job_id\(driver.lockingRows)
            """, column: "job_id"))
        let others = ids.filter { !locked.contains($0) }
        guard !others.isEmpty else { return }
        let states = try self.states(of: others, on: database)
        let missing = others.filter { states[$0] == nil }
        if !missing.isEmpty {
            throw QueueError(
                .jobNotFound, "no job with id \(missing.map(String.init).joined(separator: ", ")); nothing was \(verb)", jobIDs: missing)
        }
        let described = others.map { "job \($0) is \(states[$0]!.rawValue)" }.joined(separator: ", ")
        throw QueueError(.wrongState, "only failed jobs can be \(verb): \(described); nothing was \(verb)", jobIDs: others)
    }

    /// The failed jobs of `ids` that cannot come back to life: another live job holds their unique
    /// key, or a job before them in `ids` has it (it would). With the job that holds the key.
    private func uniqueKeyConflicts(of ids: [Int], on database: Driver.Database) throws -> [(id: Int, holder: Int, key: String)] {
        guard !ids.isEmpty else { return [] }
        let rows = try database.fetch("""
            SELECT j.id, j.unique_key,
                   (SELECT l.id FROM \(jobs) l
                    WHERE l.unique_key = j.unique_key AND l.finished_at IS NULL AND l.failed_at IS NULL ORDER BY l.id LIMIT 1) AS holder
            FROM \(jobs) j WHERE \(driver.contains("j.id", ids: ids)) AND j.unique_key IS NOT NULL ORDER BY j.id
            """)
        var taken: [String: Int] = [:]
        var conflicts: [(id: Int, holder: Int, key: String)] = []
        for row in rows {
            let id = try row.decode("id", as: Int.self)
            let key = try row.decode("unique_key", as: String.self)
            if let holder = try row.decode("holder", as: Int?.self) ?? taken[key] {
                conflicts.append((id, holder, key))
            } else {
                taken[key] = id
            }
        }
        return conflicts
    }

    /// Moves the failed jobs `ids` back to ready (admitting those with a concurrency key), with
    /// fresh attempts and crash counts. A job with a unique key comes back in a savepoint of its
    /// own: if a live job with its key was enqueued since the caller looked, it stays failed and
    /// is returned, instead of failing the whole batch on the unique index.
    @discardableResult
    private func revive(_ ids: [Int], now: Moment, on database: Driver.Database) throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        let unique = Set(try database.ids("""
            SELECT id FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) AND unique_key IS NOT NULL
            """))
        func bringBack(_ ids: [Int]) throws {
            try database.change("DELETE FROM \(failed) WHERE \(driver.contains("job_id", ids: ids))")
            try database.change("""
                UPDATE \(jobs) SET attempts = 0, crashes = 0, failed_at = NULL, updated_at = \(now.sql) WHERE \(driver.contains("id", ids: ids))
                """)
        }
        var raced: [Int] = []
        for id in ids where unique.contains(id) {
            do {
                try database.inWriteTransaction { try bringBack([id]) }
            } catch let error as DatabaseError where error.code == .uniqueViolation {
                raced.append(id)
            }
        }
        let plain = ids.filter { !unique.contains($0) }
        if !plain.isEmpty { try bringBack(plain) }
        let revived = ids.filter { !raced.contains($0) }
        try makeReady(try routeRetried(revived, now: now, on: database), now: now, on: database)
        try reopenInBatches(revived, now: now, on: database)
        try count(.retried, jobs: revived, on: database)
        return raced
    }
}
