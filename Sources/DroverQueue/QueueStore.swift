import DroverPersistence
import Foundation

/// The seam between Drover's queue and its database: the core state changes of a job, which the
/// PostgreSQL store (``JobStore``) and the SQLite store (``SQLiteJobStore``) both implement, and
/// one conformance suite checks on both.
///
/// What only PostgreSQL has stays on ``JobStore``: `FOR UPDATE SKIP LOCKED` claims by many
/// processes at once (SQLite serializes writers instead), LISTEN/NOTIFY wake-ups, and the SQL
/// enqueue functions other languages call.
public protocol QueueStore: Sendable {
    associatedtype Database: SQLDatabase

    /// The schema (PostgreSQL) or attached database (SQLite) the tables live in.
    var schema: SQLIdentifier { get }

    /// Enqueues `jobs` and returns their ids in order; nothing is written if one is invalid.
    func enqueue(_ jobs: [NewJob], on database: Database) throws -> [Int]
    /// Takes up to `limit` ready jobs from `queues` for `processID`, in claim order.
    func claim(processID: Int, queues: QueueSelection, limit: Int, on database: Database) throws -> [ClaimedJob]
    /// Finishes jobs `processID` holds; others are reported as dropped.
    func finish(_ jobIDs: [Int], processID: Int, on database: Database) throws -> FinishOutcome
    /// Records a failed attempt: retried later, or failed for good.
    func fail(
        _ jobID: Int, processID: Int, error: JobFailure, permanent: Bool, maxAttempts: Int?, on database: Database
    ) throws -> FailOutcome
    /// Lets go of the jobs `processID` holds (all, or `jobIDs`).
    func release(processID: Int, jobIDs: [Int]?, reason: ReleaseReason, on database: Database) throws -> ReleaseOutcome
    /// Makes up to `batchSize` due scheduled jobs ready; returns how many.
    func dispatchDue(batchSize: Int, on database: Database) throws -> Int
    /// One job, as the management commands show it.
    func job(_ id: Int, on database: Database) throws -> JobInfo?

    /// Registers a process; its record is what its heartbeats update.
    func register(
        kind: ProcessKind, name: String, pid: Int32, hostname: String, supervisorID: Int?, metadata: JSON, on database: Database
    ) throws -> Record
    /// Releases a process's jobs and removes its registration, in one transaction.
    func deregister(processID: Int, reason: ReleaseReason, on database: Database) throws -> ReleaseOutcome
    /// Deregisters processes whose heartbeat is older than `threshold` (but not `sparing`), counting
    /// a crash against each job they held.
    func pruneDeadProcesses(olderThan threshold: Duration, sparing: [String], maxCrashes: Int, on database: Database) throws
        -> [PrunedProcess]
    /// Releases claims whose process is not registered (it vanished without being pruned).
    func recoverOrphanedClaims(maxCrashes: Int, on database: Database) throws -> ReleaseOutcome
    /// The jobs `processID` holds.
    func claimedJobIDs(processID: Int, on database: Database) throws -> [Int]

    /// Deletes a waiting job, or asks the worker running it to stop it.
    func cancel(_ id: Int, on database: Database) throws -> CancelOutcome
    /// The jobs `processID` holds whose cancellation was asked for.
    func cancelRequests(processID: Int, on database: Database) throws -> [Int]
    /// Jobs, newest first, filtered by queue, state and class.
    func listJobs(queue: String?, state: JobState?, className: String?, limit: Int, on database: Database) throws -> [JobInfo]

    /// Stops claims from `queue`; false when it was paused already.
    func pause(_ queue: String, on database: Database) throws -> Bool
    /// Lets claims from `queue` go on; false when it was not paused.
    func resume(_ queue: String, on database: Database) throws -> Bool
    /// Deletes `queue`'s ready and scheduled jobs.
    func clear(_ queue: String, batchSize: Int, on database: Database) throws -> (ready: Int, scheduled: Int)
    /// Puts failed jobs back in ready with fresh attempts; every id must be a failed job.
    func retryFailed(_ ids: [Int], on database: Database) throws -> [Int]
    /// Deletes failed jobs; every id must be a failed job.
    func discardFailed(_ ids: [Int], on database: Database) throws -> [Int]

    // What the runtime needs besides: a supervisor's view of its children, retention, recurring
    // tasks and concurrency limits.

    /// The id of the process called `name`, if it is registered.
    func processID(named name: String, on database: Database) throws -> Int?
    /// The names of the processes `supervisorID` started that are registered.
    func processNames(supervisorID: Int, on database: Database) throws -> Set<String>
    /// What the children of `supervisorID` report in their heartbeats, summed.
    func processTotals(supervisorID: Int, on database: Database) throws -> ProcessTotals
    /// Deletes jobs that finished more than `age` ago; returns how many.
    func clearFinished(olderThan age: Duration, batchSize: Int, on database: Database) throws -> Int
    /// Deletes records of recurring runs older than `age` (each task's latest stays); returns how many.
    func clearRecurringRuns(olderThan age: Duration, batchSize: Int, on database: Database) throws -> Int
    /// Makes the configuration's recurring tasks exactly `tasks`.
    func syncStaticTasks(_ tasks: [RecurringTask], on database: Database) throws
    /// Adds a recurring task at run time.
    func addTask(_ task: RecurringTask, on database: Database) throws
    /// Removes a recurring task added at run time.
    func removeTask(_ key: String, on database: Database) throws
    /// Whether any recurring task exists.
    func hasTasks(on database: Database) throws -> Bool
    /// Every recurring task, by key.
    func tasks(on database: Database) throws -> [RecurringTask]
    /// Every recurring task with its last run, by key.
    func listTasks(on database: Database) throws -> [RecurringTaskInfo]
    /// The latest run time recorded for the task `key`.
    func lastRun(of key: String, on database: Database) throws -> Date?
    /// Enqueues one run of `task`, exactly once; nil when it was enqueued already.
    func enqueueRun(of task: RecurringTask, at runAt: Date, on database: Database) throws -> Int?
    /// Makes the concurrency limits exactly `rules`.
    func syncConcurrencyRules(_ rules: [ConcurrencyRule], on database: Database) throws
    /// Counts again the concurrency keys whose slots expired; returns how many blocked jobs it let run.
    func expireConcurrency(batchSize: Int, on database: Database) throws -> Int

    // What the management commands list.

    /// Every queue that has jobs (not finished) or is paused, by name.
    func listQueues(on database: Database) throws -> [QueueInfo]
    /// Every registered process, supervisors first, each followed by its children.
    func listProcesses(on database: Database) throws -> [ProcessSummary]
    /// Puts every failed job back in ready, `batchSize` per transaction; returns how many.
    func retryAllFailed(batchSize: Int, on database: Database) throws -> Int
    /// Deletes every failed job, `batchSize` per transaction; returns how many.
    func discardAllFailed(batchSize: Int, on database: Database) throws -> Int
    /// The concurrency limits in force.
    func concurrencyRules(on database: Database) throws -> [ConcurrencyRule]
    /// The concurrency keys with jobs that run or wait.
    func concurrencyKeys(on database: Database) throws -> [ConcurrencyKeyInfo]
}

/// What a supervisor's children report in their heartbeats, summed (for systemd's STATUS line).
public struct ProcessTotals: Sendable, Equatable {
    public var running = 0
    public var finished = 0
    public var failed = 0

    public init(running: Int = 0, finished: Int = 0, failed: Int = 0) {
        self.running = running
        self.finished = finished
        self.failed = failed
    }
}

extension JobStore: QueueStore {
    public typealias Database = Connection
}
