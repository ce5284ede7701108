import DroverPersistence

extension JobStore {
    /// Takes up to `limit` ready jobs from `queues` for process `processID` and moves them to
    /// claimed, in one transaction. Patterns are taken in the worker's order, each one statement
    /// that sees what the earlier ones took, so a job two patterns match (`critical` and `*`) is
    /// claimed once, by the first; within a pattern, by priority then id (`prefix*` by queue name
    /// first). Paused queues are passed over; on PostgreSQL so are rows another claimer holds.
    ///
    /// A job of a class with a rate limit starts only when its key has room (``RateLimiter``);
    /// one that may not start is given back to wait in scheduled, not returned, and the claim
    /// takes more in its place (a few rounds at most). A claim that takes no rate-limited job
    /// runs no statement more.
    public func claim(processID: Int, queues: QueueSelection, limit: Int, on database: Driver.Database) throws -> [ClaimedJob] {
        guard limit > 0 else { return [] }
        let claimed = try take(queues, processID: processID, limit: limit, on: database)
        guard claimed.contains(where: { $0.rateLimit != nil }) else { return claimed }
        return try database.atomically {
            var started = try holdToRateLimits(claimed, processID: processID, on: database)
            var asked = limit
            var got = claimed.count
            // Each round gives back to scheduled what it may not start, so ready shrinks; a take
            // that got less than it asked for found ready empty.
            for _ in 0..<Self.rateLimitRefills where started.count < limit && got == asked {
                asked = limit - started.count
                let more = try take(queues, processID: processID, limit: asked, on: database)
                got = more.count
                started += try holdToRateLimits(more, processID: processID, on: database)
            }
            return started
        }
    }

    /// How many more times a claim takes jobs in place of rate-limited ones it gave back.
    static var rateLimitRefills: Int { 8 }

    /// The claim's take: ready jobs moved to claimed, each pattern in the worker's order.
    private func take(_ queues: QueueSelection, processID: Int, limit: Int, on database: Driver.Database) throws -> [ClaimedJob] {
        guard limit > 0 else { return [] }
        let now = self.now()
        if queues.patterns.count == 1 {
            return try driver.takeReady(queues.patterns[0], processID: processID, limit: limit, now: now, in: self, on: database)
        }
        return try database.atomically {
            var claimed: [ClaimedJob] = []
            for pattern in queues.patterns where claimed.count < limit {
                claimed += try driver.takeReady(pattern, processID: processID, limit: limit - claimed.count, now: now, in: self, on: database)
            }
            return claimed
        }
    }

    /// The columns of a ready row's claim order for `pattern`, and the condition that picks its rows.
    func claimOrder(_ pattern: QueueSelection.Pattern) -> (condition: SQL, order: [String]) {
        // Each follows an index: (queue_name, priority, job_id) for names and prefixes,
        // (priority, job_id) WHERE job_id > 0 for "*".
        switch pattern {
        case .exact(let name):
            return ("r.queue_name = \(name)", ["priority", "job_id"])
        case .prefix(let prefix):
            // A range of the C-collated index; LIKE would ignore case on SQLite.
            return ("r.queue_name >= \(prefix) AND r.queue_name < \(Self.prefixUpperBound(prefix))", ["queue_name", "priority", "job_id"])
        case .all:
            // The predicate of the (priority, job_id) index, which only this claim may use.
            return ("r.job_id > 0", ["priority", "job_id"])
        }
    }

    /// The smallest text greater than every text starting with `prefix` (queue names are ASCII:
    /// the last character goes up by one).
    public static func prefixUpperBound(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        bytes[bytes.count - 1] += 1
        return String(decoding: bytes, as: UTF8.self)
    }

}

/// `columns` of the table `alias`, for an ORDER BY.
private func ordered(_ columns: [String], by alias: String) -> SQL {
    SQL(unsafeRaw: columns.map { "\(alias).\($0)" }.joined(separator: ", "))
}

extension PostgresDriver {
    /// One statement: pick in index order passing over locked rows, delete them from ready,
    /// insert their claims, count them (``JobMetric/latency``), return the jobs.
    public func takeReady(
        _ pattern: QueueSelection.Pattern, processID: Int, limit: Int, now: Moment, in store: JobStore<Self>, on database: Connection
    ) throws -> [ClaimedJob] {
        let rows = try database.query(claimStatement(pattern, processID: processID, limit: limit, now: now, in: store), prepared: true)
        var jobs: [ClaimedJob] = []
        jobs.reserveCapacity(rows.count)
        for row in rows { jobs.append(try ClaimedJob(row: row)) }
        return jobs
    }

    /// One pattern's claim. Every pattern's is an index walk in claim order, also as a generic
    /// plan (the runtime keeps one per prepared statement): a prefix is a range of the
    /// C-collated queue names, not a LIKE, whose value a generic plan cannot use.
    public func claimStatement(
        _ pattern: QueueSelection.Pattern, processID: Int, limit: Int, now: Moment, in store: JobStore<Self>
    ) -> SQL {
        let (condition, order) = store.claimOrder(pattern)
        return """
            WITH picked AS MATERIALIZED (
                SELECT r.job_id FROM \(store.ready) r
                WHERE \(condition)
                  -- Computed once, so the scan stays in index order (a join with pauses would not).
                  AND r.queue_name <> ALL (ARRAY(SELECT queue_name FROM \(store.pauses)))
                  AND \(store.notOfPausedClass)
                ORDER BY \(ordered(order, by: "r"))
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), moved AS (
                DELETE FROM \(store.ready) r USING picked WHERE r.job_id = picked.job_id
                RETURNING r.job_id, r.queue_name, r.priority, r.created_at
            ), claimed AS (
                INSERT INTO \(store.claimed) (job_id, process_id, created_at) SELECT job_id, \(processID), \(now.sql) FROM moved
            ), taken AS (
                -- Read once, for the count and for the answer.
                SELECT \(store.claimedJobColumns), m.job_id, m.created_at AS ready_at
                FROM moved m JOIN \(store.jobs) j ON j.id = m.job_id \(store.rateLimitJoin)
            ), counted AS (
                \(store.counting(.latency, queue: "t.queue_name", className: "t.class_name",
                                 seconds: store.seconds(from: "t.ready_at", to: now.sql), from: "taken t"))
            )
            SELECT \(store.claimedJobNames) FROM taken t
            ORDER BY \(ordered(order, by: "t"))
            """
    }
}

extension SQLiteDriver {
    /// Under the write lock nothing else claims: pick the rows in the pattern's order (an index
    /// walk), count them (``JobMetric/latency``), delete them from ready, insert their claims,
    /// read the jobs.
    public func takeReady(
        _ pattern: QueueSelection.Pattern, processID: Int, limit: Int, now: Moment, in store: JobStore<Self>, on database: SQLiteConnection
    ) throws -> [ClaimedJob] {
        let (condition, order) = store.claimOrder(pattern)
        return try database.atomically {
            let ids = try database.ids("""
                SELECT r.job_id FROM \(store.ready) r
                WHERE \(condition) AND r.queue_name NOT IN (SELECT queue_name FROM \(store.pauses)) AND \(store.notOfPausedClass)
                ORDER BY \(ordered(order, by: "r")) LIMIT \(limit)
                """, column: "job_id")
            guard !ids.isEmpty else { return [] }
            try database.execute(store.counting(
                .latency, queue: "r.queue_name", className: "j.class_name", seconds: store.seconds(from: "r.created_at", to: now.sql),
                from: "\(store.ready) r JOIN \(store.jobs) j ON j.id = r.job_id WHERE \(contains("r.job_id", ids: ids))"))
            try database.execute("DELETE FROM \(store.ready) WHERE \(contains("job_id", ids: ids))")
            try database.execute("""
                INSERT INTO \(store.claimed) (job_id, process_id, created_at)
                SELECT value, \(processID), \(now.sql) FROM json_each(\("[" + ids.map(String.init).joined(separator: ",") + "]"))
                """)
            let rows = try database.query(
                "SELECT \(store.claimedJobColumns) FROM \(store.jobs) j \(store.rateLimitJoin) WHERE \(contains("j.id", ids: ids))")
            var byID: [Int: ClaimedJob] = [:]
            for row in rows {
                let job = try ClaimedJob(row: row)
                byID[job.id] = job
            }
            return ids.compactMap { byID[$0] }
        }
    }
}
