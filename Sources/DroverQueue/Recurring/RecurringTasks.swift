import DroverPersistence
import Foundation

/// A job enqueued on a schedule. The schedule is text here (a cron expression, a shorthand or an
/// interval); the runtime parses it and computes run times.
public struct RecurringTask: Sendable, Equatable {
    public var key: String
    public var schedule: String
    /// An IANA time zone name.
    public var timeZone: String
    public var className: String
    public var arguments: JSON
    /// nil: the default queue.
    public var queue: String?
    public var priority: Int?
    /// After an outage, enqueue the latest missed run once (otherwise missed runs are skipped).
    public var catchUp: Bool
    /// From the configuration file (replaced at every start and reload), or added at run time.
    public var isStatic: Bool
    public var description: String?
    /// When `schedule` or `timeZone` last changed: runs after it follow them.
    public var scheduleChangedAt: Date

    public init(
        key: String, schedule: String, timeZone: String = "UTC", className: String, arguments: JSON = .emptyObject,
        queue: String? = nil, priority: Int? = nil, catchUp: Bool = false, isStatic: Bool = false, description: String? = nil,
        scheduleChangedAt: Date = Date()
    ) {
        self.key = key
        self.schedule = schedule
        self.timeZone = timeZone
        self.className = className
        self.arguments = arguments
        self.queue = queue
        self.priority = priority
        self.catchUp = catchUp
        self.isStatic = isStatic
        self.description = description
        self.scheduleChangedAt = scheduleChangedAt
    }

    static let columns: SQL = """
        t.key, t.schedule, t.time_zone, t.class_name, t.arguments, t.queue_name, t.priority, t.catch_up, t.static,
        t.description, t.schedule_changed_at
        """

    init(row: Row) throws(DatabaseError) {
        key = try row.decode("key")
        schedule = try row.decode("schedule")
        timeZone = try row.decode("time_zone")
        className = try row.decode("class_name")
        arguments = try row.decode("arguments")
        queue = try row.decode("queue_name")
        priority = try row.decode("priority")
        catchUp = try row.decode("catch_up")
        isStatic = try row.decode("static")
        description = try row.decode("description")
        scheduleChangedAt = try row.decode("schedule_changed_at")
    }

    /// Throws when the key or the job a run would enqueue is not valid.
    static func check(_ task: RecurringTask) throws(QueueError) {
        guard (1...200).contains(task.key.count), !task.key.contains(where: { $0.isWhitespace }) else {
            throw QueueError(.invalidJob, "recurring task key \"\(task.key)\" must be 1 to 200 characters without spaces", field: "key")
        }
        try JobRules.check(task.job(runAt: Date()))
    }

    /// The job one run enqueues.
    func job(runAt: Date) -> NewJob {
        NewJob(className, arguments: arguments, queue: queue ?? JobRules.defaultQueue, priority: priority ?? 0, runAt: runAt)
    }
}

/// A task with what `drover recurring list` shows about its last run.
public struct RecurringTaskInfo: Sendable, Equatable {
    public let task: RecurringTask
    public let lastRunAt: Date?
    public let lastJobID: Int?
    /// The last run's job's state, when the job still exists.
    public let lastJobState: JobState?
}

extension JobStore {
    /// Makes the static tasks exactly `tasks`: adds and updates them (a task added at run time with
    /// the same key becomes static) and deletes static tasks that are gone. A task whose schedule
    /// or time zone changed gets a new `schedule_changed_at`.
    public func syncStaticTasks(_ tasks: [RecurringTask], on database: Driver.Database) throws {
        for task in tasks { try RecurringTask.check(task) }
        let now = self.now()
        try database.atomically {
            for task in tasks { _ = try upsert(task, isStatic: true, now: now, on: database) }
            try database.change("DELETE FROM \(recurringTasks) WHERE static AND NOT (\(driver.contains("key", names: tasks.map(\.key))))")
        }
    }

    /// Adds a task at run time, or replaces one added at run time with that key.
    ///
    /// - Throws: ``QueueError`` `staticTask` when the configuration file defines the key.
    public func addTask(_ task: RecurringTask, on database: Driver.Database) throws {
        try RecurringTask.check(task)
        guard try !upsert(task, isStatic: false, now: now(), on: database).isEmpty else {
            throw QueueError(.staticTask, "recurring task \(task.key) is defined in the configuration file: change it there and reload")
        }
    }

    /// Inserts `task`, or updates the task with its key; a changed schedule or time zone gets a new
    /// `schedule_changed_at`. A static task takes over a run-time one; a run-time task never
    /// replaces a static one (no row comes back then).
    private func upsert(_ task: RecurringTask, isStatic: Bool, now: Moment, on database: Driver.Database) throws -> QueryResult {
        try database.fetch("""
            INSERT INTO \(recurringTasks) AS t
                (key, schedule, time_zone, class_name, arguments, queue_name, priority, catch_up, static, description,
                 schedule_changed_at, created_at, updated_at)
            VALUES (\(task.key), \(task.schedule), \(task.timeZone), \(task.className), \(task.arguments), \(task.queue),
                    \(task.priority), \(task.catchUp), \(isStatic), \(task.description), \(now.sql), \(now.sql), \(now.sql))
            ON CONFLICT (key) DO UPDATE SET
                schedule_changed_at = CASE WHEN t.schedule <> excluded.schedule OR t.time_zone <> excluded.time_zone
                                           THEN excluded.schedule_changed_at ELSE t.schedule_changed_at END,
                schedule = excluded.schedule, time_zone = excluded.time_zone, class_name = excluded.class_name,
                arguments = excluded.arguments, queue_name = excluded.queue_name, priority = excluded.priority,
                catch_up = excluded.catch_up, static = excluded.static, description = excluded.description,
                updated_at = excluded.updated_at
            WHERE excluded.static OR NOT t.static
            RETURNING key
            """)
    }

    /// Removes a task added at run time. Its past runs' records go with it; their jobs stay.
    public func removeTask(_ key: String, on database: Driver.Database) throws {
        try database.atomically {
            guard try database.fetch("DELETE FROM \(recurringTasks) WHERE key = \(key) AND NOT static RETURNING key").isEmpty else {
                try database.change("DELETE FROM \(recurringExecutions) WHERE task_key = \(key)")
                return
            }
            if try database.fetch("SELECT 1 FROM \(recurringTasks) WHERE key = \(key)").isEmpty {
                throw QueueError(.taskNotFound, "no recurring task named \(key)")
            }
            throw QueueError(.staticTask, "recurring task \(key) is defined in the configuration file: remove it there and reload")
        }
    }

    /// Whether any task exists (a supervisor starts a scheduler then).
    public func hasTasks(on database: Driver.Database) throws -> Bool {
        try !database.fetch("SELECT 1 FROM \(recurringTasks) LIMIT 1").isEmpty
    }

    /// Every task, by key.
    public func tasks(on database: Driver.Database) throws -> [RecurringTask] {
        try database.fetch("SELECT \(RecurringTask.columns) FROM \(recurringTasks) t ORDER BY t.key").map(RecurringTask.init(row:))
    }

    /// Every task with its last run, by key.
    public func listTasks(on database: Driver.Database) throws -> [RecurringTaskInfo] {
        let rows = try database.fetch("""
            SELECT x.*, CASE WHEN x.last_job_id IS NULL THEN NULL
                             ELSE (SELECT \(stateExpression) FROM \(jobs) j WHERE j.id = x.last_job_id) END AS last_state
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

    /// The latest run time recorded for `key`.
    public func lastRun(of key: String, on database: Driver.Database) throws -> Date? {
        try database.fetch("SELECT max(run_at) AS at FROM \(recurringExecutions) WHERE task_key = \(key)", prepared: true)
            .first?.decode("at", as: Date?.self)
    }

    /// Enqueues the run of `task` at `runAt`, exactly once across every scheduler: the run's record
    /// and its job are written in one transaction, and the unique (task, run time) constraint
    /// makes every other scheduler's attempt at the same run a no-op. Returns the job's id, or nil
    /// when the run was already enqueued.
    @discardableResult
    public func enqueueRun(of task: RecurringTask, at runAt: Date, on database: Driver.Database) throws -> Int? {
        let now = self.now()
        return try database.atomically {
            let recorded = try database.fetch("""
                INSERT INTO \(recurringExecutions) (task_key, run_at, created_at) VALUES (\(task.key), \(runAt), \(now.sql))
                ON CONFLICT (task_key, run_at) DO NOTHING RETURNING id
                """, prepared: true)
            guard let execution = try recorded.first?.decode("id", as: Int.self) else { return nil }
            let jobID = try enqueue(task.job(runAt: runAt), on: database)
            try database.change("UPDATE \(recurringExecutions) SET job_id = \(jobID) WHERE id = \(execution)", prepared: true)
            return jobID
        }
    }

    /// Enqueues a job of task `key` to run now, outside its schedule: no run is recorded, so the
    /// schedule's own runs are unchanged. Returns the job's id.
    ///
    /// - Throws: ``QueueError`` `taskNotFound`.
    public func enqueueTaskNow(_ key: String, on database: Driver.Database) throws -> Int {
        guard let task = try tasks(on: database).first(where: { $0.key == key }) else {
            throw QueueError(.taskNotFound, "no recurring task with key \(key)")
        }
        var job = task.job(runAt: Date())
        job.runAt = nil
        return try enqueue(job, on: database)
    }
}
