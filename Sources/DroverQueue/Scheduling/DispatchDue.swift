import DroverPersistence

extension JobStore {
    /// Moves up to `batchSize` scheduled jobs (and retries) that are due to ready, earliest first,
    /// and wakes workers on their queues; a job with a concurrency key is admitted (ready if its
    /// key has a free slot, else blocked). Returns how many moved; a full batch means there may be
    /// more. Several dispatchers share the work: each passes over rows another one holds.
    @discardableResult
    public func dispatchDue(batchSize: Int = 500, on database: Driver.Database) throws -> Int {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        let now = self.now()
        return try database.atomically {
            let moved = try database.ids("""
                WITH due AS MATERIALIZED (
                    SELECT job_id FROM \(scheduled) WHERE scheduled_at <= \(now.sql)
                    ORDER BY scheduled_at, priority, job_id LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked))
                DELETE FROM \(scheduled) WHERE job_id IN (SELECT job_id FROM due)
                RETURNING job_id
                """, column: "job_id", prepared: true)
            try makeReady(moved, now: now, on: database)
            return moved.count
        }
    }
}

extension JobStore {
    /// Seconds until the earliest scheduled job is due (zero or less: due now); nil when none
    /// waits. The dispatcher wakes then rather than at its next poll, so that a job runs at its
    /// time (a rate-limited job at the time its key gave it) and not up to a polling interval late.
    public func secondsUntilNextDue(on database: Driver.Database) throws -> Double? {
        let now = self.now()
        return try database.fetch("""
            SELECT \(seconds(from: now.sql, to: "(SELECT min(scheduled_at) FROM \(scheduled))")) AS seconds
            """, prepared: true)[0].decode("seconds", as: Double?.self)
    }
}

extension JobStore {
    /// Jobs that may run now (due, or brought back from failed): one without a concurrency key
    /// goes to ready, waking its queue's workers; one with a key is admitted (ready while its key
    /// has a free slot, else blocked).
    func makeReady(_ ids: [Int], now: Moment, on database: Driver.Database) throws {
        guard !ids.isEmpty else { return }
        var plain: [Int] = []
        var keyed: [Int] = []
        for row in try database.fetch("""
            SELECT id, concurrency_key IS NOT NULL AS keyed FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id
            """) {
            let id = try row.decode("id", as: Int.self)
            if try row.decode("keyed", as: Bool.self) { keyed.append(id) } else { plain.append(id) }
        }
        try insertReady(plain, now: now, on: database)
        try admit(keyed, now: now, on: database)
    }

    /// Puts the jobs `ids` in ready and wakes their queues' workers.
    func insertReady(_ ids: [Int], now: Moment, on database: Driver.Database) throws {
        guard !ids.isEmpty else { return }
        let queues = try database.fetch("""
            INSERT INTO \(ready) (job_id, queue_name, priority, created_at)
            SELECT id, queue_name, priority, \(now.sql) FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id
            RETURNING queue_name
            """).map { try $0.decode("queue_name", as: String.self) }
        try driver.wakeWorkers(queues: queues, in: self, on: database)
    }
}
