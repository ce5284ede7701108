import DroverPersistence
import Foundation

/// The queue on SQLite: the same state changes as ``JobStore``, as SQLite statements inside
/// `BEGIN IMMEDIATE` transactions (SQLite serializes writers, so a claim never races another
/// claim and needs no `SKIP LOCKED`).
///
/// Wake-ups: a change that makes jobs ready (or asks a worker to cancel one) touches the wake file
/// next to the database after its commit (``SQLiteConnection/wakeWorkers()``); workers on this
/// host watch it with inotify, as PostgreSQL's workers LISTEN.
public struct SQLiteJobStore: QueueStore {
    public typealias Database = SQLiteConnection

    public let schema: SQLIdentifier
    public var retryPolicy: RetryPolicy
    public var preserveFinishedJobs: Bool

    public init(schema: String = DroverSchema.defaultName, retryPolicy: RetryPolicy = RetryPolicy(), preserveFinishedJobs: Bool = true)
        throws(DatabaseError)
    {
        self.schema = try SQLIdentifier.validated(schema, what: "schema name")
        self.retryPolicy = retryPolicy
        self.preserveFinishedJobs = preserveFinishedJobs
    }

    func table(_ name: String) -> SQLIdentifier { schema.qualifying(name) }
    var jobs: SQLIdentifier { table("jobs") }
    var ready: SQLIdentifier { table("ready_executions") }
    var claimed: SQLIdentifier { table("claimed_executions") }
    var scheduled: SQLIdentifier { table("scheduled_executions") }
    var failed: SQLIdentifier { table("failed_executions") }
    var pauses: SQLIdentifier { table("pauses") }

    /// Timestamps as text of one width (milliseconds, as SQLite's defaults write them), so that
    /// text order is time order.
    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(floor(date.timeIntervalSince1970))
        let milliseconds = Int((date.timeIntervalSince1970 - floor(date.timeIntervalSince1970)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, milliseconds)
    }

    /// A list of ids as the JSON array `json_each` reads: SQLite has no array type.
    static func idList(_ ids: [Int]) -> String { "[" + ids.map(String.init).joined(separator: ",") + "]" }

    // MARK: - Enqueue

    public func enqueue(_ newJobs: [NewJob], on database: SQLiteConnection) throws -> [Int] {
        for (i, job) in newJobs.enumerated() {
            do {
                try JobRules.check(job)
            } catch {
                throw QueueError(error.code, newJobs.count > 1 ? "job \(i + 1): \(error.message)" : error.message, field: error.field)
            }
        }
        let now = Date()
        return try database.withTransaction { db in
            let rules = try concurrencyRulesByClass(on: db)
            var ids: [Int] = []
            // Admitted together after the batch, in priority order, as on PostgreSQL.
            var keyedDue: [Int] = []
            for (i, job) in newJobs.enumerated() {
                var concurrencyKey: String?
                if let rule = rules[job.className] {
                    concurrencyKey = rule.key(for: job.arguments)
                    guard concurrencyKey != nil else {
                        let message = "arguments lack what the concurrency key \(rule.keyTemplate) of \(rule.className) needs"
                        throw QueueError(.invalidJob, newJobs.count > 1 ? "job \(i + 1): \(message)" : message, field: "arguments")
                    }
                }
                if let key = job.uniqueKey, let live = try db.query("""
                    SELECT id FROM \(jobs) WHERE unique_key = \(key) AND finished_at IS NULL AND failed_at IS NULL
                    """).first {
                    ids.append(try live.decode("id", as: Int.self))
                    continue
                }
                let runAt = max(job.runAt ?? now, now)
                let due = (job.runAt ?? now) <= now
                let id = try db.query("""
                    INSERT INTO \(jobs) (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout, unique_key,
                                         concurrency_key, created_at, updated_at)
                    VALUES (\(job.queue), \(job.className), \(job.arguments.text), \(job.priority), \(Self.timestamp(runAt)),
                            \(job.maxAttempts), \(job.timeout?.seconds), \(job.uniqueKey), \(concurrencyKey), \(Self.timestamp(now)),
                            \(Self.timestamp(now)))
                    RETURNING id
                    """)[0].decode("id", as: Int.self)
                if due && concurrencyKey != nil {
                    keyedDue.append(id)
                } else if due {
                    try db.execute("INSERT INTO \(ready) (job_id, queue_name, priority) VALUES (\(id), \(job.queue), \(job.priority))")
                    db.wakeWorkers()
                } else {
                    try db.execute("""
                        INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at)
                        VALUES (\(id), \(job.queue), \(job.priority), \(Self.timestamp(runAt)))
                        """)
                }
                ids.append(id)
            }
            try admit(keyedDue, on: db)
            return ids
        }
    }

    // MARK: - Claim

    public func claim(processID: Int, queues: QueueSelection, limit: Int, on database: SQLiteConnection) throws -> [ClaimedJob] {
        guard limit > 0 else { return [] }
        return try database.withTransaction { db in
            var taken: [Int] = []
            for pattern in queues.patterns where taken.count < limit {
                let condition: SQL
                let order: String
                switch pattern {
                case .exact(let name):
                    condition = "r.queue_name = \(name)"
                    order = "r.priority, r.job_id"
                case .prefix(let prefix):
                    // LIKE ignores case in SQLite: compare the prefix itself.
                    condition = "substr(r.queue_name, 1, \(prefix.utf8.count)) = \(prefix)"
                    order = "r.queue_name, r.priority, r.job_id"
                case .all:
                    condition = "1"
                    order = "r.priority, r.job_id"
                }
                let rows = try db.query("""
                    SELECT r.job_id FROM \(ready) r
                    WHERE \(condition) AND r.queue_name NOT IN (SELECT queue_name FROM \(pauses))
                    ORDER BY \(unsafeRaw: order) LIMIT \(limit - taken.count)
                    """)
                taken += try rows.map { try $0.decode("job_id", as: Int.self) }
            }
            guard !taken.isEmpty else { return [] }
            let list = Self.idList(taken)
            try db.execute("DELETE FROM \(ready) WHERE job_id IN (SELECT value FROM json_each(\(list)))")
            try db.execute("""
                INSERT INTO \(claimed) (job_id, process_id, created_at)
                SELECT value, \(processID), \(Self.timestamp(Date())) FROM json_each(\(list))
                """)
            let rows = try db.query("""
                SELECT j.id, j.queue_name, j.class_name, j.arguments, j.priority, j.attempts, j.max_attempts, j.crashes,
                       j.timeout AS timeout_seconds, j.created_at
                FROM \(jobs) j WHERE j.id IN (SELECT value FROM json_each(\(list)))
                """)
            let byID = Dictionary(uniqueKeysWithValues: try rows.map { (try $0.decode("id", as: Int.self), try ClaimedJob(row: $0)) })
            return taken.compactMap { byID[$0] }
        }
    }

    // MARK: - Finish, fail

    public func finish(_ jobIDs: [Int], processID: Int, on database: SQLiteConnection) throws -> FinishOutcome {
        guard !jobIDs.isEmpty else { return FinishOutcome(finished: [], dropped: []) }
        let finished: [Int] = try database.withTransaction { db in
            let released = try db.query("""
                DELETE FROM \(claimed) WHERE process_id = \(processID) AND job_id IN (SELECT value FROM json_each(\(Self.idList(jobIDs))))
                RETURNING job_id
                """).map { try $0.decode("job_id", as: Int.self) }
            guard !released.isEmpty else { return [] }
            let list = Self.idList(released)
            let keys = try db.query("""
                SELECT concurrency_key FROM \(jobs) WHERE id IN (SELECT value FROM json_each(\(list))) AND concurrency_key IS NOT NULL
                """).map { try $0.decode("concurrency_key", as: String.self) }
            if preserveFinishedJobs {
                let now = Self.timestamp(Date())
                try db.execute("""
                    UPDATE \(jobs) SET finished_at = \(now), updated_at = \(now) WHERE id IN (SELECT value FROM json_each(\(list)))
                    """)
            } else {
                try db.execute("DELETE FROM \(jobs) WHERE id IN (SELECT value FROM json_each(\(list)))")
            }
            // Finished, they give their slots back.
            try signal(keys, on: db)
            return released.sorted()
        }
        let done = Set(finished)
        return FinishOutcome(finished: finished, dropped: jobIDs.filter { !done.contains($0) })
    }

    public func fail(
        _ jobID: Int, processID: Int, error: JobFailure, permanent: Bool = false, maxAttempts: Int? = nil,
        on database: SQLiteConnection
    ) throws -> FailOutcome {
        try database.withTransaction { db in
            guard try db.execute("DELETE FROM \(claimed) WHERE job_id = \(jobID) AND process_id = \(processID)") > 0 else {
                return .dropped
            }
            let row = try db.query("SELECT attempts, max_attempts, queue_name, priority, concurrency_key FROM \(jobs) WHERE id = \(jobID)")[0]
            // Failed or waiting for its retry, it no longer holds a slot of its concurrency key.
            if let key = try row.decode("concurrency_key", as: String?.self) { try signal([key], on: db) }
            let attempts = try row.decode("attempts", as: Int.self) + 1
            let stored = try row.decode("max_attempts", as: Int.self)
            let limit = maxAttempts ?? stored
            let now = Date()
            if permanent || attempts >= limit {
                try db.execute("""
                    UPDATE \(jobs) SET attempts = \(attempts), max_attempts = \(limit), last_error = \(error.json.text),
                        failed_at = \(Self.timestamp(now)), updated_at = \(Self.timestamp(now))
                    WHERE id = \(jobID)
                    """)
                try db.execute("INSERT INTO \(failed) (job_id, error, created_at) VALUES (\(jobID), \(error.json.text), \(Self.timestamp(now)))")
                return .failed(attempts: attempts)
            }
            let at = now.addingTimeInterval(retryPolicy.delay(afterAttempt: attempts))
            try db.execute("""
                UPDATE \(jobs) SET attempts = \(attempts), max_attempts = \(limit), last_error = \(error.json.text),
                    updated_at = \(Self.timestamp(now))
                WHERE id = \(jobID)
                """)
            try db.execute("""
                INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at)
                VALUES (\(jobID), \(try row.decode("queue_name", as: String.self)), \(try row.decode("priority", as: Int.self)),
                        \(Self.timestamp(at)))
                """)
            return .retryScheduled(at: at, attempts: attempts)
        }
    }

    // MARK: - Release, dispatch

    public func release(processID: Int, jobIDs: [Int]? = nil, reason: ReleaseReason, on database: SQLiteConnection) throws -> ReleaseOutcome {
        try database.withTransaction { db in
            let only: SQL = jobIDs.map { "AND job_id IN (SELECT value FROM json_each(\(Self.idList($0))))" } ?? ""
            let gone = try db.query("""
                DELETE FROM \(claimed) WHERE process_id = \(processID) \(only) RETURNING job_id, cancel_requested_at IS NOT NULL AS cancelled
                """).map { (try $0.decode("job_id", as: Int.self), try $0.decode("cancelled", as: Bool.self)) }
            var released: [Int] = []
            var failedIDs: [Int] = []
            let now = Self.timestamp(Date())
            for (id, cancelled) in gone.sorted(by: { $0.0 < $1.0 }) {
                let row = try db.query("SELECT crashes, queue_name, priority, concurrency_key FROM \(jobs) WHERE id = \(id)")[0]
                var crashes = try row.decode("crashes", as: Int.self)
                // A crash is counted and recorded as the job's last error; the limit, or a
                // cancellation, fails the job instead of putting it back.
                var lastError: String? = nil
                var failsNow = cancelled
                if case .crashed(let failure, let maxCrashes) = reason {
                    crashes += 1
                    lastError = try JSON(encoding: CrashedFailure(failure: failure, crashes: crashes)).text
                    failsNow = failsNow || crashes >= maxCrashes
                }
                if cancelled { lastError = JobStore.cancelledError.json.text }
                if failsNow, let error = lastError {
                    try db.execute("""
                        UPDATE \(jobs) SET crashes = \(crashes), last_error = \(error), failed_at = \(now), updated_at = \(now) WHERE id = \(id)
                        """)
                    try db.execute("INSERT INTO \(failed) (job_id, error, created_at) VALUES (\(id), \(error), \(now))")
                    // A job back in ready keeps its slot; one that failed gives it back.
                    if let key = try row.decode("concurrency_key", as: String?.self) { try signal([key], on: db) }
                    failedIDs.append(id)
                } else {
                    if let lastError {
                        try db.execute("UPDATE \(jobs) SET last_error = \(lastError) WHERE id = \(id)")
                    }
                    try db.execute("UPDATE \(jobs) SET crashes = \(crashes), updated_at = \(now) WHERE id = \(id)")
                    try db.execute("""
                        INSERT INTO \(ready) (job_id, queue_name, priority)
                        VALUES (\(id), \(try row.decode("queue_name", as: String.self)), \(try row.decode("priority", as: Int.self)))
                        """)
                    released.append(id)
                }
            }
            if !released.isEmpty { db.wakeWorkers() }
            return ReleaseOutcome(released: released, failed: failedIDs)
        }
    }

    /// A crash failure with its count, as `last_error` keeps it.
    private struct CrashedFailure: Encodable {
        let failure: JobFailure
        let crashes: Int
        func encode(to encoder: any Encoder) throws {
            try failure.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(crashes, forKey: .crashes)
        }
        enum Key: String, CodingKey { case crashes }
    }

    public func dispatchDue(batchSize: Int = 500, on database: SQLiteConnection) throws -> Int {
        try database.withTransaction { db in
            let moved = try db.query("""
                DELETE FROM \(scheduled) WHERE job_id IN (
                    SELECT job_id FROM \(scheduled) WHERE scheduled_at <= \(Self.timestamp(Date()))
                    ORDER BY scheduled_at, priority, job_id LIMIT \(batchSize))
                RETURNING job_id, queue_name, priority
                """)
            let movedIDs = try moved.map { try $0.decode("job_id", as: Int.self) }
            let keyed = Set(try db.query("""
                SELECT id FROM \(jobs) WHERE id IN (SELECT value FROM json_each(\(Self.idList(movedIDs)))) AND concurrency_key IS NOT NULL
                """).map { try $0.decode("id", as: Int.self) })
            for row in moved where !keyed.contains(try row.decode("job_id", as: Int.self)) {
                try db.execute("""
                    INSERT INTO \(ready) (job_id, queue_name, priority)
                    VALUES (\(try row.decode("job_id", as: Int.self)), \(try row.decode("queue_name", as: String.self)),
                            \(try row.decode("priority", as: Int.self)))
                    """)
            }
            // A job with a concurrency key takes a free slot or waits in blocked.
            try admit(movedIDs.filter(keyed.contains), on: db)
            if !moved.isEmpty { db.wakeWorkers() }
            return moved.count
        }
    }

    // MARK: - Looking at jobs

    public func job(_ id: Int, on database: SQLiteConnection) throws -> JobInfo? {
        try database.query("SELECT \(jobColumns(withArguments: true)) FROM \(jobs) j WHERE j.id = \(id)").first.map(JobInfo.init(row:))
    }

    public func listJobs(
        queue: String? = nil, state: JobState? = nil, className: String? = nil, limit: Int = 50, on database: SQLiteConnection
    ) throws -> [JobInfo] {
        var conditions: [SQL] = []
        if let queue { conditions.append("j.queue_name = \(queue)") }
        if let className { conditions.append("j.class_name = \(className)") }
        if let state {
            let tables: [JobState: String] = [.scheduled: "scheduled_executions", .ready: "ready_executions",
                                              .claimed: "claimed_executions", .blocked: "blocked_executions", .failed: "failed_executions"]
            if let name = tables[state] {
                conditions.append("j.id IN (SELECT job_id FROM \(table(name)))")
            } else {
                conditions.append("j.finished_at IS NOT NULL")
            }
        }
        let filter = conditions.isEmpty ? SQL("1") : SQL.joined(conditions, separator: " AND ")
        return try database.query("""
            SELECT \(jobColumns(withArguments: false)) FROM \(jobs) j WHERE \(filter) ORDER BY j.id DESC LIMIT \(limit)
            """).map(JobInfo.init(row:))
    }

    /// The columns `JobInfo(row:)` reads, with the job's state from the execution row that points at it.
    private func jobColumns(withArguments: Bool) -> SQL {
        """
        j.id, j.queue_name, j.class_name, j.priority, j.attempts, j.max_attempts, j.crashes, j.created_at,
        j.finished_at, j.failed_at, j.last_error, \(unsafeRaw: withArguments ? "j.arguments" : "NULL AS arguments"),
        (SELECT s.scheduled_at FROM \(scheduled) s WHERE s.job_id = j.id) AS next_run_at,
        (SELECT c.process_id FROM \(claimed) c WHERE c.job_id = j.id) AS claimed_by,
        \(JobStore.stateExpression(schema: schema)) AS state
        """
    }

    // MARK: - Cancel

    public func cancel(_ id: Int, on database: SQLiteConnection) throws -> CancelOutcome {
        try database.withTransaction { db in
            for (name, state) in [("ready_executions", JobState.ready), ("scheduled_executions", .scheduled),
                                  ("blocked_executions", .blocked)] where try db.execute("DELETE FROM \(table(name)) WHERE job_id = \(id)") > 0 {
                let key = try db.query("DELETE FROM \(jobs) WHERE id = \(id) RETURNING concurrency_key").first?
                    .decode("concurrency_key", as: String?.self)
                // A ready job held a slot of its concurrency key.
                if state == .ready, let key { try signal([key], on: db) }
                return .discarded(was: state)
            }
            if let row = try db.query("""
                UPDATE \(claimed) SET cancel_requested_at = coalesce(cancel_requested_at, \(Self.timestamp(Date())))
                WHERE job_id = \(id) RETURNING process_id
                """).first {
                // SQLite has no NOTIFY: the wake file makes the workers look for cancellations.
                db.wakeWorkers()
                return .requested(processID: try row.decode("process_id", as: Int.self))
            }
            guard let state = try job(id, on: db)?.state else {
                throw QueueError(.jobNotFound, "no job with id \(id)", jobIDs: [id])
            }
            throw QueueError(.wrongState, "job \(id) is \(state.rawValue): only waiting or running jobs can be cancelled", jobIDs: [id])
        }
    }

    public func cancelRequests(processID: Int, on database: SQLiteConnection) throws -> [Int] {
        try database.query("""
            SELECT job_id FROM \(claimed) WHERE process_id = \(processID) AND cancel_requested_at IS NOT NULL ORDER BY job_id
            """).map { try $0.decode("job_id", as: Int.self) }
    }

}



extension RetryPolicy {
    /// Seconds before the retry after `attempt` failed attempts: doubling from `baseDelay`, at most
    /// `maxDelay`, less up to `jitter` of it at random (as the PostgreSQL store computes it in SQL).
    func delay(afterAttempt attempt: Int) -> Double {
        let full = min(maxDelay.seconds, baseDelay.seconds * pow(2, Double(attempt - 1)))
        return full * (1 - jitter * Double.random(in: 0..<1))
    }
}
