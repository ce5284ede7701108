import DroverPersistence
import Foundation

/// Moves the live jobs of a SQLite database into PostgreSQL, for an operator who outgrows one host.
///
/// Every job that is not finished is copied with its history (attempts, crashes, last error,
/// times) into PostgreSQL in one transaction, in the state it had: ready, scheduled, blocked
/// (admitted again under PostgreSQL's concurrency rules) or failed; a claimed job becomes ready,
/// since the process that held it is gone. Only once PostgreSQL has committed are the jobs deleted
/// from SQLite, so an interruption loses nothing: at worst the jobs are in both, and the SQLite
/// file is left as it was. The recurring tasks added at run time are copied with the jobs (the
/// configuration file's come back with the configuration). Run it with Drover stopped.
public struct MoveToPostgres {
    public let source: SQLiteJobStore
    public let destination: PostgresJobStore

    public init(from source: SQLiteJobStore, to destination: PostgresJobStore) {
        self.source = source
        self.destination = destination
    }

    public struct Report: Sendable, Equatable {
        /// Jobs moved, by the state they arrived in.
        public var moved: [JobState: Int] = [:]
        public var total: Int { moved.values.reduce(0, +) }
        /// Recurring tasks added at run time, copied (the configuration's come with the configuration).
        public var tasks = 0
    }

    /// Stopped by its caller (Ctrl-C) before PostgreSQL committed: nothing was moved.
    public struct Interrupted: Error, CustomStringConvertible {
        public var description: String { "interrupted before PostgreSQL committed: nothing was moved, the SQLite file is as it was" }
    }

    /// `progress` is told, every 1,000 jobs copied, how many of how many; when it returns false
    /// the copy stops and PostgreSQL's transaction is rolled back (``Interrupted``). Once PostgreSQL
    /// has committed, the jobs leave SQLite whatever `progress` says.
    public func run(
        from sqlite: SQLiteConnection, to postgres: Connection, progress: (_ copied: Int, _ of: Int) -> Bool = { _, _ in true }
    ) throws -> Report {
        // Workflows are not moved yet: their ids (what jobs wait for, the batches jobs belong to)
        // would change on the way. Refused before anything is copied.
        let waiting = try sqlite.query("SELECT count(*) AS n FROM \(source.schema.qualifying("waiting_executions"))")[0]
            .decode("n", as: Int.self)
        let open = try sqlite.query("""
            SELECT count(*) AS n FROM \(source.schema.qualifying("batches")) WHERE completed_at IS NULL AND total > 0
            """)[0].decode("n", as: Int.self)
        if waiting > 0 || open > 0 {
            var what: [String] = []
            if waiting > 0 { what.append("\(waiting) job\(waiting == 1 ? "" : "s") waiting for other jobs") }
            if open > 0 { what.append("\(open) batch\(open == 1 ? "" : "es") not complete") }
            throw QueueError(
                .wrongState, "the SQLite file holds \(what.joined(separator: " and ")), which cannot be moved yet (their ids would change): "
                    + "let them finish, or cancel them (drover jobs cancel --state waiting --all), then move again; nothing was moved")
        }
        let rows = try sqlite.query("""
            SELECT j.*,
                   (SELECT s.scheduled_at FROM \(source.schema.qualifying("scheduled_executions")) s WHERE s.job_id = j.id) AS due_at,
                   CASE WHEN EXISTS (SELECT 1 FROM \(source.schema.qualifying("failed_executions")) f WHERE f.job_id = j.id) THEN 'failed'
                        WHEN EXISTS (SELECT 1 FROM \(source.schema.qualifying("scheduled_executions")) s WHERE s.job_id = j.id) THEN 'scheduled'
                        WHEN EXISTS (SELECT 1 FROM \(source.schema.qualifying("blocked_executions")) b WHERE b.job_id = j.id) THEN 'blocked'
                        ELSE 'ready' END AS move_state
            FROM \(source.schema.qualifying("jobs")) j
            WHERE j.finished_at IS NULL
            ORDER BY j.id
            """)
        var report = Report()
        var movedIDs: [Int] = []
        let jobs = destination.schema.qualifying("jobs")
        try postgres.withTransaction { pg in
            for row in rows {
                let state = try row.decode("move_state", as: String.self)
                let failedAt: Date? = try row.decode("failed_at")
                let lastError: JSON? = try row.decode("last_error")
                let timeout: Double? = try row.decode("timeout")
                let id = try pg.query("""
                    INSERT INTO \(jobs) (queue_name, class_name, arguments, priority, scheduled_at, attempts, max_attempts, crashes,
                                         snoozes, timeout, concurrency_key, unique_key, last_error, failed_at, trace_context, created_at, updated_at)
                    VALUES (\(try row.decode("queue_name", as: String.self)), \(try row.decode("class_name", as: String.self)),
                            \(try row.decode("arguments", as: JSON.self)), \(try row.decode("priority", as: Int.self)),
                            \(try row.decode("scheduled_at", as: Date.self)), \(try row.decode("attempts", as: Int.self)),
                            \(try row.decode("max_attempts", as: Int.self)), \(try row.decode("crashes", as: Int.self)),
                            \(try row.decode("snoozes", as: Int.self)), make_interval(secs => \(timeout)::float8), \(try row.decode("concurrency_key", as: String?.self)),
                            \(try row.decode("unique_key", as: String?.self)), \(lastError), \(failedAt),
                            \(try row.decode("trace_context", as: JSON?.self)), \(try row.decode("created_at", as: Date.self)), now())
                    RETURNING id, queue_name, priority
                    """)[0].decode("id", as: Int.self)
                let queue = try row.decode("queue_name", as: String.self)
                let priority = try row.decode("priority", as: Int.self)
                let arrived: JobState
                switch state {
                case "failed":
                    try pg.execute("""
                        INSERT INTO \(destination.schema.qualifying("failed_executions")) (job_id, error)
                        VALUES (\(id), \(lastError ?? JSON.emptyObject))
                        """)
                    arrived = .failed
                case "scheduled":
                    try pg.execute("""
                        INSERT INTO \(destination.schema.qualifying("scheduled_executions")) (job_id, queue_name, priority, scheduled_at)
                        VALUES (\(id), \(queue), \(priority), \(try row.decode("due_at", as: Date.self)))
                        """)
                    arrived = .scheduled
                default:
                    if try row.decode("concurrency_key", as: String?.self) != nil {
                        try destination.admit([id], now: destination.now(), on: pg)
                        arrived = try destination.job(id, on: pg)?.state ?? .ready
                    } else {
                        try pg.execute("""
                            INSERT INTO \(destination.schema.qualifying("ready_executions")) (job_id, queue_name, priority)
                            VALUES (\(id), \(queue), \(priority))
                            """)
                        arrived = .ready
                    }
                }
                report.moved[arrived, default: 0] += 1
                movedIDs.append(try row.decode("id", as: Int.self))
                if movedIDs.count % 1000 == 0, !progress(movedIDs.count, rows.count) { throw Interrupted() }
            }
            if !progress(movedIDs.count, rows.count) { throw Interrupted() }
            for task in try source.tasks(on: sqlite) where !task.isStatic {
                do {
                    try destination.addTask(task, on: pg)
                    report.tasks += 1
                } catch let error as QueueError where error.code == .staticTask {
                    continue  // PostgreSQL's configuration defines it: that one stays.
                }
            }
        }
        // PostgreSQL has them: now they leave SQLite (their execution rows go with them).
        try sqlite.withTransaction { db in
            for chunk in stride(from: 0, to: movedIDs.count, by: 500) {
                let ids = movedIDs[chunk..<min(chunk + 500, movedIDs.count)]
                try db.execute("""
                    DELETE FROM \(source.schema.qualifying("jobs"))
                    WHERE \(source.driver.contains("id", ids: Array(ids)))
                    """)
            }
        }
        return report
    }
}
