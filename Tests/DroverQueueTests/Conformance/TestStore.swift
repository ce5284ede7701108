import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The backends every store scenario runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case postgresql, sqlite
    var testDescription: String { rawValue }

    /// Runs `body` on a fresh, migrated store of this backend (a schema of its own, or a file in a
    /// directory of its own), then checks the data model's invariant: whatever a scenario does,
    /// the store must be left consistent.
    func withStore<R>(
        retryPolicy: RetryPolicy = RetryPolicy(), preserveFinishedJobs: Bool = true, clock: StoreClock = .database,
        checkInvariant: Bool = true, sourceLocation: SourceLocation = #_sourceLocation, _ body: (any TestStore) throws -> R
    ) throws -> R {
        let options = { (schema: String) in
            StoreOptions(schema: schema, preserveFinishedJobs: preserveFinishedJobs, retryPolicy: retryPolicy, clock: clock,
                         applicationName: "drover-tests", migrating: .always)
        }
        switch self {
        case .postgresql:
            return try TestDatabase.withSchema(migrate: false) { schema, _ in
                let url = try TestDatabase.url()
                let (store, db) = try PostgresDriver.open(url: url, options: options(schema))
                let bound = BoundTestStore(store: store, database: db, backend: self) {
                    try PostgresDriver.connect(url: url, options: options(schema))
                }
                let result = try body(bound)
                if checkInvariant { try bound.expectInvariant(sourceLocation: sourceLocation) }
                return result
            }
        case .sqlite:
            let directory = try TemporaryDirectory("drover-store")
            let url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
            let (store, db) = try SQLiteDriver.open(url: url, options: options("drover"))
            let bound = BoundTestStore(store: store, database: db, backend: self) {
                try SQLiteDriver.connect(url: url, options: StoreOptions(lockTimeout: .seconds(20)))
            }
            let result = try body(bound)
            if checkInvariant { try bound.expectInvariant(sourceLocation: sourceLocation) }
            return result
        }
    }
}

/// A store on its database, of either backend, with every operation bound: what the scenarios of
/// the conformance suite and the differential test call.
protocol TestStore: AnyObject {
    var backend: Backend { get }
    var schema: SQLIdentifier { get }
    /// Another connection to the same database, with the same store (scenarios that race).
    func connectAgain() throws -> any TestStore

    /// Any statement, for setting a scene or looking under the hood.
    @discardableResult func sql(_ sql: SQL) throws -> QueryResult
    func withTransaction<R>(_ body: () throws -> R) throws -> R
    func table(_ name: String) -> SQLIdentifier
    /// The time the store's statements take as now (its clock's, when it has one of its own).
    func currentTime() -> Date

    func enqueue(_ jobs: [NewJob]) throws -> [Int]
    func claim(processID: Int, queues: QueueSelection, limit: Int) throws -> [ClaimedJob]
    func finish(_ ids: [Int], processID: Int) throws -> FinishOutcome
    func finish(_ ids: [Int], processID: Int, results: [Int: JSON]) throws -> FinishOutcome
    func enqueueBatch(_ batch: NewBatch, jobs: [NewJob]) throws -> (batchID: Int, jobIDs: [Int])
    func batch(_ id: Int) throws -> BatchInfo?
    func batchStates(_ id: Int) throws -> [JobState: Int]
    func batchJobs(_ id: Int) throws -> [BatchJob]
    func dependencies(of jobID: Int) throws -> [Dependency]
    func fail(_ id: Int, processID: Int, error: JobFailure, permanent: Bool, maxAttempts: Int?, retryPolicy: RetryPolicy?) throws -> FailOutcome
    func snooze(_ id: Int, processID: Int, for delay: Duration, maxSnoozes: Int, retryPolicy: RetryPolicy?) throws -> SnoozeOutcome
    func release(processID: Int, jobIDs: [Int]?, reason: ReleaseReason) throws -> ReleaseOutcome
    func release(processID: Int, jobIDs: [Int]?, onlyEarlierClaims: Bool, reason: ReleaseReason) throws -> ReleaseOutcome
    func dispatchDue(batchSize: Int) throws -> Int
    func job(_ id: Int) throws -> JobInfo?
    func listJobs(queue: String?, state: JobState?, className: String?, limit: Int) throws -> [JobInfo]

    func register(kind: ProcessKind, name: String, supervisorID: Int?, metadata: JSON) throws -> Record
    func heartbeat(_ record: Record, at time: Date) throws
    func deregister(processID: Int, reason: ReleaseReason) throws -> ReleaseOutcome
    func prune(olderThan threshold: Duration, sparing: [String], maxCrashes: Int) throws -> [PrunedProcess]
    func recoverOrphanedClaims(maxCrashes: Int) throws -> ReleaseOutcome
    func claimedJobIDs(processID: Int) throws -> [Int]
    func processID(named name: String) throws -> Int?
    func processNames(supervisorID: Int) throws -> Set<String>
    func processTotals(supervisorID: Int) throws -> ProcessTotals
    func listProcesses() throws -> [ProcessSummary]

    func cancel(_ id: Int) throws -> CancelOutcome
    func cancelRequests(processID: Int) throws -> [Int]
    func cancelWaiting(_ ids: [Int]) throws -> [Int]

    func pause(_ queue: String) throws -> Bool
    func pauseClass(_ className: String) throws -> Bool
    func resumeClass(_ className: String) throws -> Bool
    func pausedClasses() throws -> [PausedClass]
    func resume(_ queue: String) throws -> Bool
    func clear(_ queue: String, batchSize: Int) throws -> (ready: Int, scheduled: Int)
    func listQueues() throws -> [QueueInfo]
    func metrics() throws -> MetricsSnapshot
    @discardableResult func foldMetricEvents() throws -> Int
    func countsByMinute(last minutes: Int) throws -> [MinuteCounts]
    func findJobs(_ filter: JobFilter, before: Int?, limit: Int) throws -> JobPage
    func countJobs(_ filter: JobFilter) throws -> Int
    func countJobs(_ filter: JobFilter, upTo cap: Int) throws -> Int
    func jobWindow(count: Int, from maxID: Int?) throws -> ClosedRange<Int>?
    func jobDetail(_ id: Int) throws -> JobDetail?
    func enqueueTaskNow(_ key: String) throws -> Int
    func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int) throws -> BulkOutcome
    func retryFailed(_ ids: [Int]) throws -> [Int]
    func discardFailed(_ ids: [Int]) throws -> [Int]
    func retryAllFailed(batchSize: Int) throws -> Int
    func discardAllFailed(batchSize: Int) throws -> Int

    func clearFinished(olderThan age: Duration, batchSize: Int) throws -> Int
    func clearRecurringRuns(olderThan age: Duration, batchSize: Int) throws -> Int
    func syncStaticTasks(_ tasks: [RecurringTask]) throws
    func addTask(_ task: RecurringTask) throws
    func removeTask(_ key: String) throws
    func hasTasks() throws -> Bool
    func tasks() throws -> [RecurringTask]
    func listTasks() throws -> [RecurringTaskInfo]
    func lastRun(of key: String) throws -> Date?
    func enqueueRun(of task: RecurringTask, at runAt: Date) throws -> Int?

    func syncConcurrencyRules(_ rules: [ConcurrencyRule]) throws
    func syncFailureHooks(_ hooks: [FailureHook]) throws
    func failureHooks() throws -> [FailureHook]
    func concurrencyRules() throws -> [ConcurrencyRule]
    func concurrencyKeys() throws -> [ConcurrencyKeyInfo]
    func expireConcurrency(batchSize: Int) throws -> Int
    func syncRateLimitRules(_ rules: [RateLimitRule]) throws
    func rateLimitRules() throws -> [RateLimitRule]
    func rateLimitKeys() throws -> [RateLimitKeyInfo]
    func pruneRateLimits() throws -> Int
    func secondsUntilNextDue() throws -> Double?
    func rateLimitWait(of jobID: Int) throws -> (key: String, until: Date)?

    /// the data model's invariant over every job and every semaphore (see ``expectInvariant(sourceLocation:)``).
    func invariantViolations() throws -> [String]
}

extension TestStore {
    func enqueue(_ job: NewJob) throws -> Int { try enqueue([job])[0] }
    func claim(_ processID: Int = 1, _ queues: QueueSelection = ["*"], limit: Int = 100) throws -> [ClaimedJob] {
        try claim(processID: processID, queues: queues, limit: limit)
    }
    @discardableResult func finish(_ ids: [Int], by processID: Int = 1) throws -> FinishOutcome { try finish(ids, processID: processID) }
    @discardableResult func fail(
        _ id: Int, by processID: Int = 1, error: JobFailure = JobFailure(errorClass: "E", message: "m"), permanent: Bool = false,
        maxAttempts: Int? = nil, retryPolicy: RetryPolicy? = nil
    ) throws -> FailOutcome {
        try fail(id, processID: processID, error: error, permanent: permanent, maxAttempts: maxAttempts, retryPolicy: retryPolicy)
    }
    @discardableResult func snooze(
        _ id: Int, by processID: Int = 1, for delay: Duration, maxSnoozes: Int = SnoozeRules.defaultMaxSnoozes,
        retryPolicy: RetryPolicy? = nil
    ) throws -> SnoozeOutcome {
        try snooze(id, processID: processID, for: delay, maxSnoozes: maxSnoozes, retryPolicy: retryPolicy)
    }
    @discardableResult func release(_ processID: Int = 1, jobs: [Int]? = nil, reason: ReleaseReason = .graceful) throws -> ReleaseOutcome {
        try release(processID: processID, jobIDs: jobs, reason: reason)
    }
    @discardableResult func dispatchDue() throws -> Int { try dispatchDue(batchSize: 500) }
    func state(_ id: Int) throws -> JobState? { try job(id)?.state }
    func list(queue: String? = nil, state: JobState? = nil, className: String? = nil, limit: Int = 50) throws -> [JobInfo] {
        try listJobs(queue: queue, state: state, className: className, limit: limit)
    }
    func register(_ name: String, kind: ProcessKind = .worker, supervisorID: Int? = nil, metadata: JSON = .emptyObject) throws -> Record {
        try register(kind: kind, name: name, supervisorID: supervisorID, metadata: metadata)
    }
    @discardableResult func clear(_ queue: String) throws -> (ready: Int, scheduled: Int) { try clear(queue, batchSize: 1000) }
    func count(_ table: String, where condition: SQL = "1 = 1") throws -> Int {
        try sql("SELECT count(*) AS n FROM \(self.table(table)) WHERE \(condition)")[0].decode("n", as: Int.self)
    }

    /// Checks the data model's invariant over every job: a live job has exactly one execution row, a
    /// finished job none; `failed_at` is set exactly when the job is in failed_executions; every
    /// key's free slots are its limit less the jobs holding one (ready or claimed).
    func expectInvariant(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let violations = try invariantViolations()
        #expect(violations.isEmpty, "the store broke its invariant on \(backend): \(violations)", sourceLocation: sourceLocation)
    }

    func invariantViolations() throws -> [String] {
        var violations: [String] = []
        for row in try sql("""
            SELECT j.id, j.finished_at IS NOT NULL AS finished, j.failed_at IS NOT NULL AS marked_failed,
                   (SELECT count(*) FROM \(table("ready_executions")) x WHERE x.job_id = j.id)
                 + (SELECT count(*) FROM \(table("claimed_executions")) x WHERE x.job_id = j.id)
                 + (SELECT count(*) FROM \(table("scheduled_executions")) x WHERE x.job_id = j.id)
                 + (SELECT count(*) FROM \(table("blocked_executions")) x WHERE x.job_id = j.id)
                 + (SELECT count(*) FROM \(table("waiting_executions")) x WHERE x.job_id = j.id)
                 + (SELECT count(*) FROM \(table("failed_executions")) x WHERE x.job_id = j.id) AS executions,
                   (SELECT count(*) FROM \(table("failed_executions")) x WHERE x.job_id = j.id) AS in_failed
            FROM \(table("jobs")) j ORDER BY j.id
            """) {
            let id = try row.decode("id", as: Int.self)
            let finished = try row.decode("finished", as: Bool.self)
            let executions = try row.decode("executions", as: Int.self)
            if finished ? executions != 0 : executions != 1 {
                violations.append("job \(id) has \(executions) execution rows\(finished ? " and is finished" : "")")
            }
            if try row.decode("marked_failed", as: Bool.self) != (row.decode("in_failed", as: Int.self) == 1) {
                violations.append("job \(id): failed_at and failed_executions disagree")
            }
        }
        let keys = try concurrencyKeys()
        for row in try sql("SELECT key, value FROM \(table("semaphores")) ORDER BY key") {
            let key = try row.decode("key", as: String.self)
            let value = try row.decode("value", as: Int.self)
            guard let info = keys.first(where: { $0.key == key }) else { continue }
            if info.holding > info.maxRunning || value != info.maxRunning - info.holding {
                violations.append("semaphore \(key): \(value) free, \(info.holding) of \(info.maxRunning) holding")
            }
        }
        // A blocked job waits only while its key has no free slot.
        for row in try sql("""
            SELECT DISTINCT b.concurrency_key AS key FROM \(table("blocked_executions")) b
            JOIN \(table("semaphores")) s ON s.key = b.concurrency_key WHERE s.value > 0
            """) {
            violations.append("jobs of \(try row.decode("key", as: String.self)) are blocked while it has free slots")
        }
        // A batch's pending count is its live jobs; its counts add up.
        for row in try sql("""
            SELECT b.id, b.pending, b.total, b.finished, b.failed,
                   (SELECT count(*) FROM \(table("jobs")) j WHERE j.batch_id = b.id AND j.finished_at IS NULL AND j.failed_at IS NULL) AS live
            FROM \(table("batches")) b ORDER BY b.id
            """) {
            let id = try row.decode("id", as: Int.self)
            let pending = try row.decode("pending", as: Int.self)
            let live = try row.decode("live", as: Int.self)
            if pending != live { violations.append("batch \(id): \(pending) pending, \(live) live jobs") }
        }
        // A waiting job waits for a job that has not ended, and for none that failed (unless it runs after failures).
        for row in try sql("""
            SELECT w.job_id,
                   (SELECT count(*) FROM \(table("job_dependencies")) d WHERE d.job_id = w.job_id AND d.outcome IS NULL) AS open,
                   (SELECT count(*) FROM \(table("job_dependencies")) d
                    WHERE d.job_id = w.job_id AND d.outcome = 'failed' AND NOT d.run_after_failure) AS failed
            FROM \(table("waiting_executions")) w ORDER BY w.job_id
            """) {
            let id = try row.decode("job_id", as: Int.self)
            if try row.decode("open", as: Int.self) == 0 { violations.append("job \(id) waits, but every job it waits for has ended") }
            if try row.decode("failed", as: Int.self) > 0 { violations.append("job \(id) waits for a job that failed") }
        }
        // A dependency's recorded outcome is its job's, while that job is kept.
        for row in try sql("""
            SELECT d.job_id, d.depends_on, d.outcome,
                   CASE WHEN p.failed_at IS NOT NULL THEN 'failed' WHEN p.finished_at IS NOT NULL THEN 'ended' END AS actual
            FROM \(table("job_dependencies")) d JOIN \(table("jobs")) p ON p.id = d.depends_on
            JOIN \(table("waiting_executions")) w ON w.job_id = d.job_id
            """) {
            let outcome = try row.decode("outcome", as: String?.self)
            let actual = try row.decode("actual", as: String?.self)
            // A job that ended finished may have been discarded by its concurrency rule: failed, for its dependants.
            if (outcome == nil) != (actual == nil) || (outcome == "finished" && actual == "failed") {
                violations.append("job \(try row.decode("job_id", as: Int.self)) records \(outcome ?? "nothing") for job "
                                  + "\(try row.decode("depends_on", as: Int.self)), which is \(actual ?? "live")")
            }
        }
        return violations
    }
}

/// ``TestStore`` over a store and a connection of one backend.
final class BoundTestStore<Driver: StoreDriver>: TestStore {
    let store: JobStore<Driver>
    let database: Driver.Database
    let backend: Backend
    private let reconnect: () throws -> Driver.Database

    init(store: JobStore<Driver>, database: Driver.Database, backend: Backend, reconnect: @escaping () throws -> Driver.Database) {
        self.store = store
        self.database = database
        self.backend = backend
        self.reconnect = reconnect
    }

    var schema: SQLIdentifier { store.schema }
    func connectAgain() throws -> any TestStore {
        BoundTestStore(store: store, database: try reconnect(), backend: backend, reconnect: reconnect)
    }
    func sql(_ sql: SQL) throws -> QueryResult { try database.fetch(sql) }
    func withTransaction<R>(_ body: () throws -> R) throws -> R { try database.inWriteTransaction(body) }
    func table(_ name: String) -> SQLIdentifier { store.table(name) }
    func currentTime() -> Date { store.now().date ?? Date() }

    func enqueue(_ jobs: [NewJob]) throws -> [Int] { try store.enqueue(jobs, on: database) }
    func claim(processID: Int, queues: QueueSelection, limit: Int) throws -> [ClaimedJob] {
        try store.claim(processID: processID, queues: queues, limit: limit, on: database)
    }
    func finish(_ ids: [Int], processID: Int) throws -> FinishOutcome { try store.finish(ids, processID: processID, on: database) }
    func finish(_ ids: [Int], processID: Int, results: [Int: JSON]) throws -> FinishOutcome {
        try store.finish(ids, processID: processID, results: results, on: database)
    }
    func enqueueBatch(_ batch: NewBatch, jobs: [NewJob]) throws -> (batchID: Int, jobIDs: [Int]) {
        try store.enqueueBatch(batch, jobs: jobs, on: database)
    }
    func batch(_ id: Int) throws -> BatchInfo? { try store.batch(id, on: database) }
    func batchStates(_ id: Int) throws -> [JobState: Int] { try store.batchStates(id, on: database) }
    func batchJobs(_ id: Int) throws -> [BatchJob] { try store.batchJobs(id, on: database) }
    func dependencies(of jobID: Int) throws -> [Dependency] { try store.dependencies(of: jobID, on: database) }
    func fail(_ id: Int, processID: Int, error: JobFailure, permanent: Bool, maxAttempts: Int?, retryPolicy: RetryPolicy?) throws -> FailOutcome {
        try store.fail(id, processID: processID, error: error, permanent: permanent, maxAttempts: maxAttempts, retryPolicy: retryPolicy,
                       on: database)
    }
    func snooze(_ id: Int, processID: Int, for delay: Duration, maxSnoozes: Int, retryPolicy: RetryPolicy?) throws -> SnoozeOutcome {
        try store.snooze(id, processID: processID, for: delay, maxSnoozes: maxSnoozes, retryPolicy: retryPolicy, on: database)
    }
    func release(processID: Int, jobIDs: [Int]?, reason: ReleaseReason) throws -> ReleaseOutcome {
        try store.release(processID: processID, jobIDs: jobIDs, reason: reason, on: database)
    }
    func release(processID: Int, jobIDs: [Int]?, onlyEarlierClaims: Bool, reason: ReleaseReason) throws -> ReleaseOutcome {
        try store.release(processID: processID, jobIDs: jobIDs, onlyEarlierClaims: onlyEarlierClaims, reason: reason, on: database)
    }
    func dispatchDue(batchSize: Int) throws -> Int { try store.dispatchDue(batchSize: batchSize, on: database) }
    func job(_ id: Int) throws -> JobInfo? { try store.job(id, on: database) }
    func listJobs(queue: String?, state: JobState?, className: String?, limit: Int) throws -> [JobInfo] {
        try store.listJobs(queue: queue, state: state, className: className, limit: limit, on: database)
    }

    func register(kind: ProcessKind, name: String, supervisorID: Int?, metadata: JSON) throws -> Record {
        try store.register(kind: kind, name: name, pid: 4242, hostname: "test-host", supervisorID: supervisorID, metadata: metadata,
                           on: database)
    }
    func heartbeat(_ record: Record, at time: Date) throws {
        try record.withLock(on: database) { $0.set("last_heartbeat_at", to: time) }
    }
    func deregister(processID: Int, reason: ReleaseReason) throws -> ReleaseOutcome {
        try store.deregister(processID: processID, reason: reason, on: database)
    }
    func prune(olderThan threshold: Duration, sparing: [String], maxCrashes: Int) throws -> [PrunedProcess] {
        try store.pruneDeadProcesses(olderThan: threshold, sparing: sparing, maxCrashes: maxCrashes, on: database)
    }
    func recoverOrphanedClaims(maxCrashes: Int) throws -> ReleaseOutcome { try store.recoverOrphanedClaims(maxCrashes: maxCrashes, on: database) }
    func claimedJobIDs(processID: Int) throws -> [Int] { try store.claimedJobIDs(processID: processID, on: database) }
    func processID(named name: String) throws -> Int? { try store.processID(named: name, on: database) }
    func processNames(supervisorID: Int) throws -> Set<String> { try store.processNames(supervisorID: supervisorID, on: database) }
    func processTotals(supervisorID: Int) throws -> ProcessTotals { try store.processTotals(supervisorID: supervisorID, on: database) }
    func listProcesses() throws -> [ProcessSummary] { try store.listProcesses(on: database) }

    func cancel(_ id: Int) throws -> CancelOutcome { try store.cancel(id, on: database) }
    func cancelWaiting(_ ids: [Int]) throws -> [Int] { try store.cancelWaiting(ids, on: database) }
    func cancelRequests(processID: Int) throws -> [Int] { try store.cancelRequests(processID: processID, on: database) }

    func pause(_ queue: String) throws -> Bool { try store.pause(queue, on: database) }
    func pauseClass(_ className: String) throws -> Bool { try store.pauseClass(className, on: database) }
    func resumeClass(_ className: String) throws -> Bool { try store.resumeClass(className, on: database) }
    func pausedClasses() throws -> [PausedClass] { try store.pausedClasses(on: database) }
    func resume(_ queue: String) throws -> Bool { try store.resume(queue, on: database) }
    func clear(_ queue: String, batchSize: Int) throws -> (ready: Int, scheduled: Int) {
        try store.clear(queue, batchSize: batchSize, on: database)
    }
    func listQueues() throws -> [QueueInfo] { try store.listQueues(on: database) }
    func metrics() throws -> MetricsSnapshot { try store.metrics(on: database) }
    func foldMetricEvents() throws -> Int { try store.foldMetricEvents(on: database) }
    func countsByMinute(last minutes: Int) throws -> [MinuteCounts] { try store.countsByMinute(last: minutes, on: database) }
    func findJobs(_ filter: JobFilter, before: Int?, limit: Int) throws -> JobPage {
        try store.findJobs(filter, before: before, limit: limit, on: database)
    }
    func countJobs(_ filter: JobFilter) throws -> Int { try store.countJobs(filter, on: database) }
    func jobWindow(count: Int, from maxID: Int?) throws -> ClosedRange<Int>? { try store.jobWindow(count: count, from: maxID, on: database) }
    func countJobs(_ filter: JobFilter, upTo cap: Int) throws -> Int { try store.countJobs(filter, upTo: cap, on: database) }
    func jobDetail(_ id: Int) throws -> JobDetail? { try store.jobDetail(id, on: database) }
    func enqueueTaskNow(_ key: String) throws -> Int { try store.enqueueTaskNow(key, on: database) }
    func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int) throws -> BulkOutcome {
        try store.apply(action, to: filter, batchSize: batchSize, on: database)
    }
    func retryFailed(_ ids: [Int]) throws -> [Int] { try store.retryFailed(ids, on: database) }
    func discardFailed(_ ids: [Int]) throws -> [Int] { try store.discardFailed(ids, on: database) }
    func retryAllFailed(batchSize: Int) throws -> Int { try store.retryAllFailed(batchSize: batchSize, on: database) }
    func discardAllFailed(batchSize: Int) throws -> Int { try store.discardAllFailed(batchSize: batchSize, on: database) }

    func clearFinished(olderThan age: Duration, batchSize: Int) throws -> Int {
        try store.clearFinished(olderThan: age, batchSize: batchSize, on: database)
    }
    func clearRecurringRuns(olderThan age: Duration, batchSize: Int) throws -> Int {
        try store.clearRecurringRuns(olderThan: age, batchSize: batchSize, on: database)
    }
    func syncStaticTasks(_ tasks: [RecurringTask]) throws { try store.syncStaticTasks(tasks, on: database) }
    func addTask(_ task: RecurringTask) throws { try store.addTask(task, on: database) }
    func removeTask(_ key: String) throws { try store.removeTask(key, on: database) }
    func hasTasks() throws -> Bool { try store.hasTasks(on: database) }
    func tasks() throws -> [RecurringTask] { try store.tasks(on: database) }
    func listTasks() throws -> [RecurringTaskInfo] { try store.listTasks(on: database) }
    func lastRun(of key: String) throws -> Date? { try store.lastRun(of: key, on: database) }
    func enqueueRun(of task: RecurringTask, at runAt: Date) throws -> Int? { try store.enqueueRun(of: task, at: runAt, on: database) }

    func syncConcurrencyRules(_ rules: [ConcurrencyRule]) throws { try store.syncConcurrencyRules(rules, on: database) }
    func syncFailureHooks(_ hooks: [FailureHook]) throws { try store.syncFailureHooks(hooks, on: database) }
    func failureHooks() throws -> [FailureHook] { try store.failureHooks(on: database) }
    func concurrencyRules() throws -> [ConcurrencyRule] { try store.concurrencyRules(on: database) }
    func concurrencyKeys() throws -> [ConcurrencyKeyInfo] { try store.concurrencyKeys(on: database) }
    func expireConcurrency(batchSize: Int) throws -> Int { try store.expireConcurrency(batchSize: batchSize, on: database) }
    func syncRateLimitRules(_ rules: [RateLimitRule]) throws { try store.syncRateLimitRules(rules, on: database) }
    func rateLimitRules() throws -> [RateLimitRule] { try store.rateLimitRules(on: database) }
    func rateLimitKeys() throws -> [RateLimitKeyInfo] { try store.rateLimitKeys(on: database) }
    func pruneRateLimits() throws -> Int { try store.pruneRateLimits(on: database) }
    func secondsUntilNextDue() throws -> Double? { try store.secondsUntilNextDue(on: database) }
    func rateLimitWait(of jobID: Int) throws -> (key: String, until: Date)? { try store.rateLimitWait(of: jobID, on: database) }
}

extension JSON {
    static func object(_ text: String) -> JSON { try! JSON(validating: text) }
}
