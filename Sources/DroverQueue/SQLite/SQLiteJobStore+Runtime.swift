import DroverPersistence
import Foundation

/// What the runtime needs on SQLite besides the core state changes: recurring tasks, retention and
/// the supervisor's view of its children. Same rules and words as PostgreSQL's store.
extension SQLiteJobStore {
    private var recurringTasks: SQLIdentifier { table("recurring_tasks") }
    private var recurringExecutions: SQLIdentifier { table("recurring_executions") }
    private var processes: SQLIdentifier { table("processes") }

    // MARK: - Processes

    public func processID(named name: String, on database: SQLiteConnection) throws -> Int? {
        try database.query("SELECT id FROM \(processes) WHERE name = \(name)").first?.decode("id", as: Int.self)
    }

    public func processNames(supervisorID: Int, on database: SQLiteConnection) throws -> Set<String> {
        Set(try database.query("SELECT name FROM \(processes) WHERE supervisor_id = \(supervisorID)")
            .map { try $0.decode("name", as: String.self) })
    }

    public func processTotals(supervisorID: Int, on database: SQLiteConnection) throws -> ProcessTotals {
        let row = try database.query("""
            SELECT coalesce(sum(json_extract(metadata, '$.running')), 0) AS running,
                   coalesce(sum(json_extract(metadata, '$.finished')), 0) AS finished,
                   coalesce(sum(json_extract(metadata, '$.failed')), 0) AS failed
            FROM \(processes) WHERE supervisor_id = \(supervisorID)
            """)[0]
        return ProcessTotals(running: try row.decode("running"), finished: try row.decode("finished"), failed: try row.decode("failed"))
    }

    // MARK: - Retention

    @discardableResult
    public func clearFinished(olderThan age: Duration, batchSize: Int = 1000, on database: SQLiteConnection) throws -> Int {
        let cutoff = Self.timestamp(Date().addingTimeInterval(-age.seconds))
        return try inBatches {
            try database.execute("""
                DELETE FROM \(jobs) WHERE id IN (
                    SELECT id FROM \(jobs) WHERE finished_at < \(cutoff) ORDER BY finished_at LIMIT \(batchSize))
                """)
        } until: { $0 < batchSize }
    }

    @discardableResult
    public func clearRecurringRuns(olderThan age: Duration, batchSize: Int = 1000, on database: SQLiteConnection) throws -> Int {
        let cutoff = Self.timestamp(Date().addingTimeInterval(-age.seconds))
        return try inBatches {
            try database.execute("""
                DELETE FROM \(recurringExecutions) WHERE id IN (
                    SELECT e.id FROM \(recurringExecutions) e
                    WHERE e.run_at < \(cutoff)
                      AND e.run_at < (SELECT max(l.run_at) FROM \(recurringExecutions) l WHERE l.task_key = e.task_key)
                    ORDER BY e.run_at LIMIT \(batchSize))
                """)
        } until: { $0 < batchSize }
    }

    /// Runs `batch` (each its own transaction) until `until` says the last one was the end; the total.
    private func inBatches(_ batch: () throws -> Int, until done: (Int) -> Bool) throws -> Int {
        var total = 0
        while true {
            let count = try batch()
            total += count
            if done(count) { return total }
        }
    }

    // MARK: - Recurring tasks

    public func syncStaticTasks(_ tasks: [RecurringTask], on database: SQLiteConnection) throws {
        for task in tasks { try RecurringTask.check(task) }
        try database.withTransaction { db in
            for task in tasks { _ = try upsert(task, isStatic: true, on: db) }
            let keys = String(decoding: try JSONEncoder().encode(tasks.map(\.key)), as: UTF8.self)
            try db.execute("DELETE FROM \(recurringTasks) WHERE static AND key NOT IN (SELECT value FROM json_each(\(keys)))")
        }
    }

    public func addTask(_ task: RecurringTask, on database: SQLiteConnection) throws {
        try RecurringTask.check(task)
        guard try !upsert(task, isStatic: false, on: database).isEmpty else {
            throw QueueError(.staticTask, "recurring task \(task.key) is defined in the configuration file: change it there and reload")
        }
    }

    /// As PostgreSQL's upsert: a static task takes over a run-time one, never the other way round.
    private func upsert(_ task: RecurringTask, isStatic: Bool, on database: SQLiteConnection) throws -> QueryResult {
        let now = Self.timestamp(Date())
        return try database.query("""
            INSERT INTO \(recurringTasks)
                (key, schedule, time_zone, class_name, arguments, queue_name, priority, catch_up, static, description,
                 schedule_changed_at, created_at, updated_at)
            VALUES (\(task.key), \(task.schedule), \(task.timeZone), \(task.className), \(task.arguments.text), \(task.queue),
                    \(task.priority), \(task.catchUp), \(isStatic), \(task.description), \(now), \(now), \(now))
            ON CONFLICT (key) DO UPDATE SET
                schedule_changed_at = CASE WHEN schedule IS NOT excluded.schedule OR time_zone IS NOT excluded.time_zone
                                           THEN excluded.schedule_changed_at ELSE schedule_changed_at END,
                schedule = excluded.schedule, time_zone = excluded.time_zone, class_name = excluded.class_name,
                arguments = excluded.arguments, queue_name = excluded.queue_name, priority = excluded.priority,
                catch_up = excluded.catch_up, static = excluded.static, description = excluded.description,
                updated_at = excluded.updated_at
            WHERE excluded.static OR NOT static
            RETURNING key
            """)
    }

    public func removeTask(_ key: String, on database: SQLiteConnection) throws {
        try database.withTransaction { db in
            guard try db.query("DELETE FROM \(recurringTasks) WHERE key = \(key) AND NOT static RETURNING key").isEmpty else {
                try db.execute("DELETE FROM \(recurringExecutions) WHERE task_key = \(key)")
                return
            }
            if try db.query("SELECT 1 FROM \(recurringTasks) WHERE key = \(key)").isEmpty {
                throw QueueError(.taskNotFound, "no recurring task named \(key)")
            }
            throw QueueError(.staticTask, "recurring task \(key) is defined in the configuration file: remove it there and reload")
        }
    }

    public func hasTasks(on database: SQLiteConnection) throws -> Bool {
        try !database.query("SELECT 1 FROM \(recurringTasks) LIMIT 1").isEmpty
    }

    public func tasks(on database: SQLiteConnection) throws -> [RecurringTask] {
        try database.query("SELECT \(RecurringTask.columns) FROM \(recurringTasks) t ORDER BY t.key").map(RecurringTask.init(row:))
    }

    public func listTasks(on database: SQLiteConnection) throws -> [RecurringTaskInfo] {
        let rows = try database.query("""
            SELECT x.*, CASE WHEN x.last_job_id IS NULL THEN NULL
                             ELSE (SELECT \(JobStore.stateExpression(schema: schema)) FROM \(jobs) j WHERE j.id = x.last_job_id) END
                        AS last_state
            FROM (SELECT \(RecurringTask.columns),
                         (SELECT max(e.run_at) FROM \(recurringExecutions) e WHERE e.task_key = t.key) AS last_run_at,
                         (SELECT e.job_id FROM \(recurringExecutions) e WHERE e.task_key = t.key ORDER BY e.run_at DESC LIMIT 1)
                             AS last_job_id
                  FROM \(recurringTasks) t) x
            ORDER BY x.key
            """)
        return try rows.map { row in
            RecurringTaskInfo(
                task: try RecurringTask(row: row), lastRunAt: try row.decode("last_run_at"), lastJobID: try row.decode("last_job_id"),
                lastJobState: try row.decode("last_state", as: String?.self).flatMap(JobState.init(rawValue:)))
        }
    }

    public func lastRun(of key: String, on database: SQLiteConnection) throws -> Date? {
        try database.query("SELECT max(run_at) AS at FROM \(recurringExecutions) WHERE task_key = \(key)")
            .first?.decode("at", as: Date?.self)
    }

    /// Exactly once, as on PostgreSQL: the run's record and its job in one transaction, under the
    /// unique (task, run time) constraint.
    @discardableResult
    public func enqueueRun(of task: RecurringTask, at runAt: Date, on database: SQLiteConnection) throws -> Int? {
        try database.withTransaction { db in
            let recorded = try db.query("""
                INSERT INTO \(recurringExecutions) (task_key, run_at, created_at)
                VALUES (\(task.key), \(Self.timestamp(runAt)), \(Self.timestamp(Date())))
                ON CONFLICT (task_key, run_at) DO NOTHING RETURNING id
                """)
            guard let execution = try recorded.first?.decode("id", as: Int.self) else { return nil }
            let jobID = try enqueue([task.job(runAt: runAt)], on: db)[0]
            try db.execute("UPDATE \(recurringExecutions) SET job_id = \(jobID) WHERE id = \(execution)")
            return jobID
        }
    }
}
