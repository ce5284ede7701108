import DroverPersistence
import Foundation

/// The seam between Drover's job behaviour and a database engine.
///
/// ``JobStore`` carries out every operation once, over this protocol; a driver supplies only
/// what differs between engines, which is dialect:
///
/// | | PostgreSQL (``PostgresDriver``) | SQLite (``SQLiteDriver``) |
/// |---|---|---|
/// | now | the server's clock: `now()`, the transaction's time | the host's clock, bound as a value |
/// | a set of ids or names | a bound array: `= ANY($1)` | a JSON array: `IN (SELECT value FROM json_each($1))` |
/// | rows the transaction changes | locked: `FOR UPDATE`, `SKIP LOCKED` where another claimer may hold them | nothing: a write transaction holds the whole database from its start (`BEGIN IMMEDIATE`) |
/// | a stored duration | `interval` | seconds (`REAL`) |
/// | waking workers | `NOTIFY` on the schema's channel | touching the wake file after the commit |
/// | claiming, inserting a batch, finishing | one statement with data-modifying CTEs | two or three statements under the write lock |
/// | schema | its migrations; vacuuming the tables claims walk | its migrations; nothing to vacuum |
///
/// Everything else (which jobs a claim takes and in what order, backoff, crash limits,
/// cancellation, concurrency admission, unique keys, retention, every error message) is
/// ``JobStore``'s, and the conformance suite and the differential test run it on every driver.
/// The statements a driver writes for itself (``takeReady(_:processID:limit:now:in:on:)``,
/// ``insertJobs(_:now:in:on:)``, ``finishClaims(_:processID:now:deleting:in:on:)``) sit in the
/// file of the operation they serve, one per driver, side by side.
public protocol StoreDriver: Sendable {
    associatedtype Database: SQLDatabase

    init()

    /// "PostgreSQL" or "SQLite", for messages.
    static var backendName: String { get }

    /// Opens a connection to `url` for `options` (see ``StoreFactory``).
    static func connect(url: String, options: StoreOptions) throws -> Database

    /// Drover's tables on this engine, as numbered migrations.
    static var migrations: [Migration] { get }

    // MARK: Time

    /// The time one operation's statements take as now, by `clock`.
    func moment(_ clock: StoreClock) -> Moment

    // MARK: Sets of values

    /// `column` is one of `ids`.
    func contains(_ column: SQL, ids: [Int]) -> SQL
    /// `column` is one of `names`.
    func contains(_ column: SQL, names: [String]) -> SQL
    /// `needle` occurs in the text `haystack` (case-sensitive; false when `haystack` is NULL).
    func containsText(_ haystack: SQL, _ needle: String) -> SQL
    /// A condition: the JSON `column` contains `wanted`, as PostgreSQL's `@>` means it.
    func jsonContains(_ column: SQL, _ wanted: JSON) -> SQL
    /// The JSON object `column` with its key `key` set to `value` (added, or replaced).
    func jsonSetting(_ column: SQL, key: String, to value: JSON) -> SQL

    // MARK: Row locks

    /// After a `SELECT` of rows the transaction goes on to change.
    var lockingRows: SQL { get }
    /// The same, passing over rows another transaction holds (claims, pruning, batches).
    var lockingRowsSkippingLocked: SQL { get }

    // MARK: Durations

    /// A duration to store, from `seconds` (a value or an expression).
    func interval(seconds: SQL) -> SQL
    /// The seconds of a stored duration.
    func seconds(of interval: SQL) -> SQL
    /// The seconds from `earlier` to `later`, two stored times (or a moment's), as a double.
    func secondsBetween(_ earlier: SQL, _ later: SQL) -> SQL

    // MARK: Metrics

    /// The statement that adds `select`'s rows (metric, queue, class, bucket, n, total) to the
    /// job counts: appended to an event log where writers run at once, added to the totals
    /// where they take turns (``JobMetric``).
    func recordMetrics(select: SQL, in store: JobStore<Self>) -> SQL
    /// Every row of the job counts not yet summed (metric, queue_name, class_name, bucket, n, total).
    func metricRows(in store: JobStore<Self>) -> SQL
    /// Folds an event log into the totals; returns how many events it folded.
    func foldMetricEvents(in store: JobStore<Self>, on database: Database) throws -> Int

    // MARK: Wake-ups

    /// Tells the workers of `queues` that jobs became ready; after the commit, or not at all if
    /// the transaction rolls back.
    func wakeWorkers(queues: [String], in store: JobStore<Self>, on database: Database) throws
    /// Tells worker `processID` that a job it runs is to be cancelled.
    func askToCancel(processID: Int, in store: JobStore<Self>, on database: Database) throws

    // MARK: Statements written per engine

    /// Moves up to `limit` ready jobs that `pattern` matches (paused queues left out) to
    /// claimed by `processID`, in the pattern's order, and returns them in that order.
    func takeReady(
        _ pattern: QueueSelection.Pattern, processID: Int, limit: Int, now: Moment, in store: JobStore<Self>, on database: Database
    ) throws -> [ClaimedJob]

    /// Inserts `batch` (jobs without a unique key) as jobs, in order, with their ready rows (a
    /// due job without a concurrency key, waking its queue's workers) or scheduled rows (a
    /// future one); a due job with a concurrency key gets neither (it is to be admitted).
    func insertJobs(_ batch: [JobRow], now: Moment, in store: JobStore<Self>, on database: Database) throws -> [InsertedJob]

    /// Removes `processID`'s claims on `jobIDs` and finishes those jobs (marked finished, or
    /// deleted when `deleting`); returns the jobs it finished with their concurrency keys.
    func finishClaims(
        _ jobIDs: [Int], processID: Int, now: Moment, deleting: Bool, in store: JobStore<Self>, on database: Database
    ) throws -> [FinishedClaim]

    // MARK: Maintenance

    /// Vacuums the tables claims walk once they hold `minimumDeadRows` dead rows.
    func vacuumHotTables(minimumDeadRows: Int, in store: JobStore<Self>, on database: Database) throws -> [VacuumedTable]
}

/// The time an operation's statements take as now.
///
/// One value per operation: every statement of it sees the same time, as PostgreSQL's `now()`
/// is the same for a whole transaction.
public struct Moment: Sendable {
    /// The time when Swift knows it (SQLite, or a store with a fixed clock); nil for the
    /// database server's clock.
    public let date: Date?
    /// The time `seconds` from now, as a value in a statement.
    private let later: @Sendable (Double) -> SQL

    /// A time Swift knows: bound as a value.
    public init(_ date: Date) {
        self.date = date
        later = { seconds in "\(date.addingTimeInterval(seconds))" }
    }

    /// The server's clock, as `server(seconds)` writes it `seconds` from now.
    public init(server: @escaping @Sendable (Double) -> SQL) {
        date = nil
        later = server
    }

    /// Now, as a value in a statement.
    public var sql: SQL { later(0) }

    /// `seconds` from now, as a value in a statement.
    public func after(_ seconds: Double) -> SQL { later(seconds) }
}

/// Where a store's statements take the time from.
///
/// ```swift
/// let store = try PostgresJobStore(schema: "drover")                        // the server's clock
/// let pinned = try SQLiteJobStore(schema: "drover", clock: .fixed { testNow }) // tests: a clock of their own
/// ```
public struct StoreClock: Sendable {
    let fixed: (@Sendable () -> Date)?

    /// The database's own: PostgreSQL's server clock; for SQLite, which has no server, the host's.
    public static let database = StoreClock(fixed: nil)

    /// A clock of the caller's, the same for every backend (tests that compare backends).
    public static func fixed(_ now: @escaping @Sendable () -> Date) -> StoreClock { StoreClock(fixed: now) }
}

/// A job as ``StoreDriver/insertJobs(_:now:in:on:)`` inserts it.
public struct JobRow: Sendable {
    public let job: NewJob
    /// Rendered from the job's arguments by its class's concurrency rule.
    public let concurrencyKey: String?
}

/// A job ``StoreDriver/finishClaims(_:processID:now:deleting:in:on:)`` finished, with what
/// follows from it: a concurrency slot to give back, a batch to count, dependants to settle.
public struct FinishedClaim: Sendable {
    public let id: Int
    public let concurrencyKey: String?
    public let batchID: Int?
    public let hasDependants: Bool

    public init(id: Int, concurrencyKey: String?, batchID: Int? = nil, hasDependants: Bool = false) {
        self.id = id
        self.concurrencyKey = concurrencyKey
        self.batchID = batchID
        self.hasDependants = hasDependants
    }
}

/// A job ``StoreDriver/insertJobs(_:now:in:on:)`` inserted.
public struct InsertedJob: Sendable {
    public let id: Int
    /// Due with a concurrency key: it waits for admission (``JobStore/admit(_:now:on:)``).
    public let needsAdmission: Bool
}
