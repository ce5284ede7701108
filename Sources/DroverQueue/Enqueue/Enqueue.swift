import DroverPersistence
import Foundation

extension JobStore {
    /// Enqueues `job` and returns its id. Inside the caller's transaction it commits or rolls back
    /// with it. A due job is ready at once; a future one is scheduled.
    ///
    /// - Throws: ``QueueError`` (`invalidJob`, naming the field) before anything is written, so a
    ///   bad job never aborts the caller's transaction; ``DatabaseError`` when the database fails.
    @discardableResult
    public func enqueue(_ job: NewJob, on database: Driver.Database) throws -> Int {
        try enqueue([job], on: database)[0]
    }

    /// Enqueues `jobs` and returns their ids in the same order, all or nothing. Waiting workers are
    /// woken once per queue, not once per job. While a live job holds a job's unique key, that
    /// job's id comes back instead (in one batch, the first of a key makes the job the others
    /// return). A due job of a class with a concurrency limit is admitted: ready while its key has a
    /// free slot, else blocked (or finished as discarded, as its rule says).
    @discardableResult
    public func enqueue(_ jobs: [NewJob], on database: Driver.Database) throws -> [Int] {
        guard !jobs.isEmpty else { return [] }
        for (i, job) in jobs.enumerated() {
            do {
                try JobRules.check(job)
            } catch {
                throw error.about(job: i, of: jobs.count)
            }
        }
        let rules = try concurrencyRulesByClass(on: database)
        var keys: [String?] = []
        keys.reserveCapacity(jobs.count)
        for (i, job) in jobs.enumerated() {
            guard let rule = rules[job.className] else {
                keys.append(nil)
                continue
            }
            guard let key = rule.key(for: job.arguments) else {
                throw QueueError(
                    .invalidJob, "arguments lack what the concurrency key \(rule.keyTemplate) of \(rule.className) needs",
                    field: "arguments"
                ).about(job: i, of: jobs.count)
            }
            keys.append(key)
        }
        let now = self.now()
        // A batch of plain jobs without keys is one statement on PostgreSQL, atomic by itself.
        let simple = jobs.allSatisfy { $0.uniqueKey == nil && $0.after.isEmpty && $0.batchID == nil } && keys.allSatisfy { $0 == nil }
        let alone = { (job: NewJob) in job.uniqueKey != nil || !job.after.isEmpty }
        // In input order, so that ids (and with them the claim order of equal priorities) follow
        // it: runs of plain jobs one batch each, jobs with a unique key or dependencies one at a time.
        let insert = { () throws -> [Int] in
            // Locks first, in the order every operation takes them: the jobs waited for, then batches.
            var known: [Int: Dependency.Outcome?] = [:]
            do {
                known = try lockDependencies(Array(Set(jobs.flatMap(\.after))).sorted(), on: database)
            } catch var error as QueueError {
                if let i = jobs.firstIndex(where: { !Set($0.after).isDisjoint(with: error.jobIDs) }) {
                    error = error.about(job: i, of: jobs.count)
                }
                throw error
            }
            for (i, job) in jobs.enumerated() where !job.runAfterFailure {
                if let failed = job.after.sorted().first(where: { known[$0] == .some(.failed) }) {
                    throw QueueError(
                        .invalidJob, "after: job \(failed) has failed for good, so this one could never run: retry job \(failed) "
                            + "first, or enqueue this one with run_after_failure", field: "after", jobIDs: [failed]
                    ).about(job: i, of: jobs.count)
                }
            }
            var joining: [Int: Int] = [:]
            for job in jobs { if let batch = job.batchID { joining[batch, default: 0] += 1 } }
            do {
                try joinBatches(joining, now: now, on: database)
            } catch var error as QueueError {
                if let i = jobs.firstIndex(where: { $0.batchID != nil }), joining.count == 1 { error = error.about(job: i, of: jobs.count) }
                throw error
            }
            var ids: [Int] = []
            ids.reserveCapacity(jobs.count)
            var toAdmit: [Int] = []
            var start = 0
            while start < jobs.count {
                if !jobs[start].after.isEmpty {
                    let (id, admit) = try enqueueDependant(jobs[start], concurrencyKey: keys[start], known: known, now: now, on: database)
                    ids.append(id)
                    if admit { toAdmit.append(id) }
                    start += 1
                    continue
                }
                if jobs[start].uniqueKey != nil {
                    let (id, admit) = try enqueueUnique(jobs[start], concurrencyKey: keys[start], now: now, on: database)
                    ids.append(id)
                    if admit { toAdmit.append(id) }
                    start += 1
                    continue
                }
                let end = jobs[start...].firstIndex(where: alone) ?? jobs.count
                let inserted = try driver.insertJobs(
                    (start..<end).map { JobRow(job: jobs[$0], concurrencyKey: keys[$0]) }, now: now, in: self, on: database)
                ids += inserted.map(\.id)
                toAdmit += inserted.filter(\.needsAdmission).map(\.id)
                start = end
            }
            try admit(toAdmit, now: now, on: database)
            return ids
        }
        return simple ? try insert() : try database.atomically(insert)
    }

    /// Inserts a job with a unique key, or finds the live job that holds the key; whether the new
    /// job waits for admission. The unique index decides between concurrent enqueues of one key
    /// (the second waits for the first to commit or roll back); a live job found by the conflict
    /// may finish before it is looked up, and then the insert is tried again.
    private func enqueueUnique(
        _ job: NewJob, concurrencyKey: String?, now: Moment, on database: Driver.Database
    ) throws -> (id: Int, admit: Bool) {
        guard let uniqueKey = job.uniqueKey else { preconditionFailure("a job without a unique key") }
        let live: SQL = "SELECT id FROM \(jobs) WHERE unique_key = \(uniqueKey) AND finished_at IS NULL AND failed_at IS NULL"
        while true {
            // Looked for first: an insert that conflicts would use up an id on PostgreSQL (a
            // sequence never goes back), and ids would differ from SQLite's for no reason.
            if let id = try database.ids(live).first { return (id, false) }
            let runAt: SQL = job.runAt.map { "\($0)" } ?? now.sql
            if let row = try database.fetch("""
                INSERT INTO \(jobs) (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout, unique_key,
                                     concurrency_key, trace_context, created_at, updated_at)
                VALUES (\(job.queue), \(job.className), \(job.arguments), \(job.priority), \(runAt), \(job.maxAttempts),
                        \(driver.interval(seconds: "\(job.timeout?.seconds)")), \(uniqueKey), \(concurrencyKey), \(try job.traceContextJSON),
                        \(now.sql), \(now.sql))
                ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND finished_at IS NULL AND failed_at IS NULL DO NOTHING
                RETURNING id, scheduled_at <= \(now.sql) AS due
                """).first {
                let id = try row.decode("id", as: Int.self)
                let due = try row.decode("due", as: Bool.self)
                if due && concurrencyKey != nil { return (id, true) }
                if due {
                    try database.change("""
                        INSERT INTO \(ready) (job_id, queue_name, priority, created_at) VALUES (\(id), \(job.queue), \(job.priority), \(now.sql))
                        """)
                    try driver.wakeWorkers(queues: [job.queue], in: self, on: database)
                } else {
                    try database.change("""
                        INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
                        SELECT id, queue_name, priority, scheduled_at, \(now.sql) FROM \(jobs) WHERE id = \(id)
                        """)
                }
                return (id, false)
            }
            // A concurrent enqueue of the key won the insert: the loop finds its job (or, if that
            // one finished meanwhile, inserts again).
        }
    }
}

extension PostgresDriver {
    /// One statement: the jobs, their ready and scheduled rows, and one NOTIFY per queue that got
    /// ready jobs, from a JSON array of the batch.
    public func insertJobs(_ batch: [JobRow], now: Moment, in store: JobStore<Self>, on database: Connection) throws -> [InsertedJob] {
        guard !batch.isEmpty else { return [] }
        var document = "["
        document.reserveCapacity(batch.count * 120)
        for (i, row) in batch.enumerated() {
            if i > 0 { document += "," }
            document += row.jsonElement
        }
        document += "]"
        // Batch ids only when a job has one: the plain statement stays what it was, and runs on a
        // schema before migration 14 (a process of this version during an upgrade).
        let batched = batch.contains { $0.job.batchID != nil }
        let batchColumn: SQL = batched ? ", batch_id" : ""
        let rows = try database.query(prepared: true, """
            WITH input AS (
                SELECT e.ord, e.job ->> 'class' AS class_name, e.job ->> 'queue' AS queue_name, e.job -> 'arguments' AS arguments,
                       (e.job ->> 'priority')::integer AS priority, (e.job ->> 'run_at')::timestamptz AS run_at,
                       (e.job ->> 'max_attempts')::integer AS max_attempts, (e.job ->> 'timeout')::float8 AS timeout,
                       e.job ->> 'concurrency_key' AS concurrency_key, e.job -> 'trace_context' AS trace_context,
                       (e.job ->> 'batch_id')::bigint AS batch_id
                FROM jsonb_array_elements(\(DatabaseValue(type: .jsonb, text: document))) WITH ORDINALITY AS e(job, ord)
            ), inserted AS (
                INSERT INTO \(store.jobs) (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout,
                                           concurrency_key, trace_context\(batchColumn), created_at, updated_at)
                SELECT queue_name, class_name, arguments, priority, coalesce(run_at, \(now.sql)), max_attempts,
                       make_interval(secs => timeout), concurrency_key, trace_context\(batchColumn), \(now.sql), \(now.sql)
                FROM input ORDER BY ord
                RETURNING id, queue_name, priority, scheduled_at, concurrency_key
            ), ready AS (
                INSERT INTO \(store.ready) (job_id, queue_name, priority, created_at)
                SELECT id, queue_name, priority, \(now.sql) FROM inserted WHERE scheduled_at <= \(now.sql) AND concurrency_key IS NULL
                RETURNING queue_name
            ), scheduled AS (
                INSERT INTO \(store.scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
                SELECT id, queue_name, priority, scheduled_at, \(now.sql) FROM inserted WHERE scheduled_at > \(now.sql)
            ), woken AS (
                SELECT count(pg_notify(\(store.wakeChannel), queue_name)) AS n FROM (SELECT DISTINCT queue_name FROM ready) q
            )
            SELECT i.id, i.scheduled_at <= \(now.sql) AND i.concurrency_key IS NOT NULL AS admit FROM inserted i, woken ORDER BY i.id
            """)
        var inserted: [InsertedJob] = []
        inserted.reserveCapacity(rows.count)
        for row in rows {
            inserted.append(InsertedJob(id: try row.decode(at: 0, as: Int.self), needsAdmission: try row.decode(at: 1, as: Bool.self)))
        }
        return inserted
    }
}

extension SQLiteDriver {
    /// A job and its ready or scheduled row at a time, under the write lock (SQLite keeps every
    /// statement prepared, and there is no round trip to save).
    public func insertJobs(_ batch: [JobRow], now: Moment, in store: JobStore<Self>, on database: SQLiteConnection) throws -> [InsertedJob] {
        guard !batch.isEmpty else { return [] }
        return try database.atomically {
            var inserted: [InsertedJob] = []
            var woken: Set<String> = []
            for row in batch {
                let job = row.job
                let runAt: SQL = job.runAt.map { "\($0)" } ?? now.sql
                let batchColumn: SQL = job.batchID == nil ? "" : ", batch_id"
                let batchValue: SQL = job.batchID.map { ", \($0)" } ?? ""
                let result = try database.query("""
                    INSERT INTO \(store.jobs) (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout,
                                               concurrency_key, trace_context\(batchColumn), created_at, updated_at)
                    VALUES (\(job.queue), \(job.className), \(job.arguments), \(job.priority), \(runAt), \(job.maxAttempts),
                            \(job.timeout?.seconds), \(row.concurrencyKey), \(try job.traceContextJSON)\(batchValue), \(now.sql), \(now.sql))
                    RETURNING id, scheduled_at <= \(now.sql) AS due
                    """)[0]
                let id = try result.decode("id", as: Int.self)
                let due = try result.decode("due", as: Bool.self)
                if due && row.concurrencyKey == nil {
                    try database.execute("""
                        INSERT INTO \(store.ready) (job_id, queue_name, priority, created_at) VALUES (\(id), \(job.queue), \(job.priority), \(now.sql))
                        """)
                    woken.insert(job.queue)
                } else if !due {
                    try database.execute("""
                        INSERT INTO \(store.scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
                        VALUES (\(id), \(job.queue), \(job.priority), \(runAt), \(now.sql))
                        """)
                }
                inserted.append(InsertedJob(id: id, needsAdmission: due && row.concurrencyKey != nil))
            }
            try wakeWorkers(queues: Array(woken), in: store, on: database)
            return inserted
        }
    }
}

extension JobRow {
    /// The job as an element of the JSON array PostgreSQL's insert reads. Names were checked
    /// (they need no escaping) and arguments are valid JSON, so the text is built directly: bulk
    /// enqueue is hot.
    var jsonElement: String {
        var text = "{\"class\":\"\(job.className)\",\"queue\":\"\(job.queue)\",\"arguments\":\(job.arguments.text)"
        text += ",\"priority\":\(job.priority),\"max_attempts\":\(job.maxAttempts)"
        if let timeout = job.timeout { text += ",\"timeout\":\(timeout.seconds)" }
        if let runAt = job.runAt, let time = runAt.databaseText { text += ",\"run_at\":\"\(time)\"" }
        // A key is any text: the one field that needs JSON escaping.
        if let key = concurrencyKey, let quoted = try? JSONEncoder().encode(key) {
            text += ",\"concurrency_key\":" + String(decoding: quoted, as: UTF8.self)
        }
        if let trace = try? job.traceContextJSON { text += ",\"trace_context\":" + trace.text }
        if let batch = job.batchID { text += ",\"batch_id\":\(batch)" }
        return text + "}"
    }
}

extension NewJob {
    /// The trace context as a JSON object, keys sorted; nil when there is none.
    var traceContextJSON: JSON? {
        get throws {
            guard let traceContext, !traceContext.isEmpty else { return nil }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try JSON(encoding: traceContext, encoder: encoder)
        }
    }
}
