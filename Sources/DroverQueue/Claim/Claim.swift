import DroverPersistence

extension JobStore {
    /// Session settings for the connections of Drover's processes. Every statement they run is
    /// written for an index; but when one queue holds every job (as in most deployments), the
    /// planner estimates that `queue_name <> ALL (paused queues)` keeps a single row, and would
    /// read and sort every ready row instead of walking the index (measured: 0.6 s per claim at
    /// 900,000 ready jobs, against 0.1 ms). Without sequential scans and sorts to choose, it keeps
    /// to the indexes. (The sort of the few claimed rows at the end of a claim stays: it has no
    /// alternative.) JIT compilation goes too: a disabled plan node counts as a huge cost, which
    /// would make PostgreSQL compile every claim (200 ms each), and these statements never need it.
    /// Prepared statements keep one generic plan: PostgreSQL would otherwise plan a claim or a
    /// finish afresh for its values each time, whenever it judged the generic plan costlier, which
    /// it did (measured: 0.4 ms of a 1.3 ms worker turn; one worker's burn-down went from 3,800 to
    /// 5,400 jobs/s). The plans are index lookups whatever the values.
    public static let plannerSettings = [
        ("enable_seqscan", "off"), ("enable_sort", "off"), ("jit", "off"), ("plan_cache_mode", "force_generic_plan"),
    ]

    /// Takes up to `limit` ready jobs from `queues` for process `processID`, in the order of
    /// ``QueueSelection``, skipping paused queues and rows other claimers hold (`SKIP LOCKED`), and
    /// moves them to claimed. One transaction; each pattern is one index-ordered statement.
    public func claim(
        processID: Int, queues: QueueSelection, limit: Int, on connection: Connection
    ) throws -> [ClaimedJob] {
        guard limit > 0 else { return [] }
        if queues.patterns.count == 1 {
            return try claim(queues.patterns[0], processID: processID, limit: limit, on: connection)
        }
        return try connection.withTransaction { connection in
            var claimed: [ClaimedJob] = []
            for pattern in queues.patterns where claimed.count < limit {
                claimed += try claim(pattern, processID: processID, limit: limit - claimed.count, on: connection)
            }
            return claimed
        }
    }

    private func claim(
        _ pattern: QueueSelection.Pattern, processID: Int, limit: Int, on connection: Connection
    ) throws(DatabaseError) -> [ClaimedJob] {
        // A prefix pattern's index range depends on the LIKE value: leave it to a fresh plan each time.
        let prepare: Bool = if case .prefix = pattern { false } else { true }
        let rows = try connection.query(claimStatement(pattern, processID: processID, limit: limit), prepared: prepare)
        var claimedJobs: [ClaimedJob] = []
        claimedJobs.reserveCapacity(rows.count)
        for row in rows { claimedJobs.append(try ClaimedJob(row: row)) }
        return claimedJobs
    }

    /// One pattern's claim, as one statement.
    func claimStatement(_ pattern: QueueSelection.Pattern, processID: Int, limit: Int) -> SQL {
        // The WHERE and ORDER BY follow an index: (queue_name, priority, job_id) for names and
        // prefixes, (priority, job_id) WHERE job_id > 0 for "*".
        let condition: SQL
        let order: [String]
        switch pattern {
        case .exact(let name):
            condition = "r.queue_name = \(name)"
            order = ["priority", "job_id"]
        case .prefix(let prefix):
            condition = "r.queue_name LIKE \(Self.likePrefix(prefix))"
            order = ["queue_name", "priority", "job_id"]
        case .all:
            // The predicate of the index (priority, job_id), which only this claim may use.
            condition = "r.job_id > 0"
            order = ["priority", "job_id"]
        }
        func ordered(by alias: String) -> SQL {
            SQL(unsafeRaw: order.map { "\(alias).\($0)" }.joined(separator: ", "))
        }
        return """
            WITH picked AS (
                SELECT r.job_id FROM \(ready) r
                WHERE \(condition)
                  -- Computed once, so the scan stays in index order (a join with pauses would not).
                  AND r.queue_name <> ALL (ARRAY(SELECT queue_name FROM \(pauses)))
                ORDER BY \(ordered(by: "r"))
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), moved AS (
                DELETE FROM \(ready) r USING picked WHERE r.job_id = picked.job_id
                RETURNING r.job_id, r.queue_name, r.priority
            ), claimed AS (
                INSERT INTO \(claimed) (job_id, process_id) SELECT job_id, \(processID) FROM moved
            )
            SELECT \(ClaimedJob.columns)
            FROM moved m JOIN \(jobs) j ON j.id = m.job_id
            ORDER BY \(ordered(by: "m"))
            """
    }

    /// A LIKE pattern matching names that start with `prefix` (whose `_` must not be a wildcard).
    static func likePrefix(_ prefix: String) -> String {
        var escaped = ""
        for ch in prefix {
            if ch == "\\" || ch == "%" || ch == "_" { escaped.append("\\") }
            escaped.append(ch)
        }
        return escaped + "%"
    }
}
