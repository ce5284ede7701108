import DroverPersistence
import Foundation

/// Every state change of a job, written once for every database engine, as transactions on a
/// database the caller provides. What differs between engines is the driver's (``StoreDriver``).
///
/// A job is one `jobs` row for its whole life; its state is the one execution row that points at
/// it (ready, claimed, scheduled, blocked or failed); a finished job has none. Operations are
/// grouped by responsibility: `Enqueue/`, `Claim/`, `Finalize/`, `Recovery/`, `Scheduling/`,
/// `Cancel/`, `Concurrency/`, `Processes/`, `Recurring/`, `Retention/`, `Management/`.
///
/// Locks are taken in one order by every operation, so that two of them never wait for each
/// other: execution rows first (a claim, a ready or scheduled row), then the `jobs` rows, then
/// `semaphores` rows in key order, then blocked rows (skipping locked ones); several rows of one
/// table in id (or key) order. Process rows are locked only alone (a heartbeat) or first (a
/// pruner, skipping locked ones).
///
/// ```swift
/// let store = try PostgresJobStore(schema: "drover")          // or SQLiteJobStore
/// let id = try store.enqueue([NewJob("SendReport", arguments: try JSON(encoding: ["kind": "daily"]))], on: db)[0]
/// let jobs = try store.claim(processID: 7, queues: ["default"], limit: 10, on: db)
/// try store.finish(jobs.map(\.id), processID: 7, on: db)
/// ```
public struct JobStore<Driver: StoreDriver>: Sendable {
    /// The schema (PostgreSQL) or attached database (SQLite) Drover's tables live in.
    public let schema: SQLIdentifier
    /// How failed attempts are retried.
    public var retryPolicy: RetryPolicy
    /// Keep finished jobs (with `finished_at`) until retention clears them, or delete them at once.
    public var preserveFinishedJobs: Bool
    /// Where the statements take the time from.
    public var clock: StoreClock
    public let driver: Driver

    public init(
        schema: String = DroverSchema.defaultName, retryPolicy: RetryPolicy = RetryPolicy(), preserveFinishedJobs: Bool = true,
        clock: StoreClock = .database
    ) throws(DatabaseError) {
        self.schema = try SQLIdentifier.validated(schema, what: "schema name")
        self.retryPolicy = retryPolicy
        self.preserveFinishedJobs = preserveFinishedJobs
        self.clock = clock
        driver = Driver()
    }

    /// "PostgreSQL" or "SQLite".
    public var backendName: String { Driver.backendName }

    /// The channel PostgreSQL's workers LISTEN on: the schema's name.
    public var wakeChannel: String { schema.parts[0] }

    /// Now, for one operation: the time its statements take.
    public func now() -> Moment { driver.moment(clock) }

    /// The time `moment` is, read from the database when only the server knows it.
    func time(_ moment: Moment, on database: Driver.Database) throws -> Date {
        if let date = moment.date { return date }
        return try database.fetch("SELECT \(moment.sql) AS now")[0].decode("now", as: Date.self)
    }

    public func table(_ name: String) -> SQLIdentifier { schema.qualifying(name) }
    var jobs: SQLIdentifier { table("jobs") }
    var ready: SQLIdentifier { table("ready_executions") }
    var claimed: SQLIdentifier { table("claimed_executions") }
    var scheduled: SQLIdentifier { table("scheduled_executions") }
    var blocked: SQLIdentifier { table("blocked_executions") }
    var failed: SQLIdentifier { table("failed_executions") }
    var pauses: SQLIdentifier { table("pauses") }
    var processes: SQLIdentifier { table("processes") }
    var semaphores: SQLIdentifier { table("semaphores") }
    var concurrencyRules: SQLIdentifier { table("concurrency_rules") }
    var recurringTasks: SQLIdentifier { table("recurring_tasks") }
    var recurringExecutions: SQLIdentifier { table("recurring_executions") }

    /// Applies the migrations the database lacks.
    @discardableResult
    public func migrate(on database: Driver.Database, progress: (Migration) -> Void = { _ in }) throws -> Migrator.Report {
        try database.apply(Migrator(schema: schema.parts[0], migrations: Driver.migrations), progress: progress)
    }

    /// Which migrations are applied and which are pending, without changing anything.
    public func migrationStatus(on database: Driver.Database) throws -> Migrator.Status {
        try database.status(of: Migrator(schema: schema.parts[0], migrations: Driver.migrations))
    }
}

/// The store on PostgreSQL: many hosts, `SKIP LOCKED` claims, LISTEN/NOTIFY wake-ups.
public typealias PostgresJobStore = JobStore<PostgresDriver>
/// The store on a SQLite file: one host, no server.
public typealias SQLiteJobStore = JobStore<SQLiteDriver>

extension SQLDatabase {
    /// Runs `sql`, which changes rows, and returns how many.
    @discardableResult
    func change(_ sql: SQL, prepared: Bool = false) throws(DatabaseError) -> Int {
        try fetch(sql, prepared: prepared).affectedRows
    }

    /// The integers of column `column` of `sql`'s rows.
    func ids(_ sql: SQL, column: String = "id", prepared: Bool = false) throws(DatabaseError) -> [Int] {
        var ids: [Int] = []
        for row in try fetch(sql, prepared: prepared) { ids.append(try row.decode(column, as: Int.self)) }
        return ids
    }
}
