import DroverPersistence
import Foundation

/// A queue store bound to an open database, for the management commands, whichever backend it is:
/// `drover jobs`, `queues`, `failed`, `recurring` and `enqueue` work on one of these.
public protocol QueueAdmin {
    /// "PostgreSQL" or "SQLite".
    var backendName: String { get }
    func enqueue(_ jobs: [NewJob]) throws -> [Int]
    func job(_ id: Int) throws -> JobInfo?
    func listJobs(queue: String?, state: JobState?, className: String?, limit: Int) throws -> [JobInfo]
    func cancel(_ id: Int) throws -> CancelOutcome
    func pause(_ queue: String) throws -> Bool
    func resume(_ queue: String) throws -> Bool
    func pauseClass(_ className: String) throws -> Bool
    func resumeClass(_ className: String) throws -> Bool
    func pausedClasses() throws -> [PausedClass]
    func clear(_ queue: String) throws -> (ready: Int, scheduled: Int)
    func retryFailed(_ ids: [Int]) throws -> [Int]
    func retryAllFailed() throws -> Int
    func discardFailed(_ ids: [Int]) throws -> [Int]
    func discardAllFailed() throws -> Int
    func listQueues() throws -> [QueueInfo]
    func listProcesses() throws -> [ProcessSummary]
    func listTasks() throws -> [RecurringTaskInfo]
    func addTask(_ task: RecurringTask) throws
    func removeTask(_ key: String) throws
    func concurrencyRules() throws -> [ConcurrencyRule]
    func concurrencyKeys() throws -> [ConcurrencyKeyInfo]
    func rateLimitRules() throws -> [RateLimitRule]
    func rateLimitKeys() throws -> [RateLimitKeyInfo]
    func rateLimitWait(of jobID: Int) throws -> (key: String, until: Date)?
    // The dashboard's.
    func metrics() throws -> MetricsSnapshot
    func countsByMinute(last minutes: Int) throws -> [MinuteCounts]
    func findJobs(_ filter: JobFilter, before: Int?, limit: Int) throws -> JobPage
    func countJobs(_ filter: JobFilter) throws -> Int
    func countJobs(_ filter: JobFilter, upTo cap: Int) throws -> Int
    func jobWindow(count: Int, from maxID: Int?) throws -> ClosedRange<Int>?
    func apply(_ action: BulkAction, to filter: JobFilter) throws -> BulkOutcome
    func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int) throws -> BulkOutcome
    func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int, progress: (BulkOutcome) -> Bool) throws -> BulkOutcome
    func jobDetail(_ id: Int) throws -> JobDetail?
    func enqueueTaskNow(_ key: String) throws -> Int
    func enqueueBatch(_ batch: NewBatch, jobs: [NewJob], afterPlaces: [[Int]]) throws -> (batchID: Int, jobIDs: [Int])
    func batch(_ id: Int) throws -> BatchInfo?
    func listBatches(before: Int?, limit: Int) throws -> [BatchInfo]
    func batchStates(_ id: Int) throws -> [JobState: Int]
    func batchJobs(_ id: Int, after: Int, limit: Int) throws -> [BatchJob]
    func dependencies(of jobID: Int) throws -> [Dependency]
    func dependants(of jobID: Int) throws -> [Int]
}

/// `store` on `database`: every ``QueueAdmin`` operation is the store's, on that database.
public struct BoundQueue<Driver: StoreDriver>: QueueAdmin {
    public let store: JobStore<Driver>
    public let database: Driver.Database

    public init(store: JobStore<Driver>, database: Driver.Database) {
        self.store = store
        self.database = database
    }

    public var backendName: String { Driver.backendName }
    public func enqueue(_ jobs: [NewJob]) throws -> [Int] { try store.enqueue(jobs, on: database) }
    public func job(_ id: Int) throws -> JobInfo? { try store.job(id, on: database) }
    public func listJobs(queue: String?, state: JobState?, className: String?, limit: Int) throws -> [JobInfo] {
        try store.listJobs(queue: queue, state: state, className: className, limit: limit, on: database)
    }
    public func cancel(_ id: Int) throws -> CancelOutcome { try store.cancel(id, on: database) }
    public func pause(_ queue: String) throws -> Bool { try store.pause(queue, on: database) }
    public func resume(_ queue: String) throws -> Bool { try store.resume(queue, on: database) }
    public func pauseClass(_ className: String) throws -> Bool { try store.pauseClass(className, on: database) }
    public func resumeClass(_ className: String) throws -> Bool { try store.resumeClass(className, on: database) }
    public func pausedClasses() throws -> [PausedClass] { try store.pausedClasses(on: database) }
    public func clear(_ queue: String) throws -> (ready: Int, scheduled: Int) { try store.clear(queue, batchSize: 1000, on: database) }
    public func retryFailed(_ ids: [Int]) throws -> [Int] { try store.retryFailed(ids, on: database) }
    public func retryAllFailed() throws -> Int { try store.retryAllFailed(batchSize: 1000, on: database) }
    public func discardFailed(_ ids: [Int]) throws -> [Int] { try store.discardFailed(ids, on: database) }
    public func discardAllFailed() throws -> Int { try store.discardAllFailed(batchSize: 1000, on: database) }
    public func listQueues() throws -> [QueueInfo] { try store.listQueues(on: database) }
    public func listProcesses() throws -> [ProcessSummary] { try store.listProcesses(on: database) }
    public func listTasks() throws -> [RecurringTaskInfo] { try store.listTasks(on: database) }
    public func addTask(_ task: RecurringTask) throws { try store.addTask(task, on: database) }
    public func removeTask(_ key: String) throws { try store.removeTask(key, on: database) }
    public func concurrencyRules() throws -> [ConcurrencyRule] { try store.concurrencyRules(on: database) }
    public func concurrencyKeys() throws -> [ConcurrencyKeyInfo] { try store.concurrencyKeys(on: database) }
    public func rateLimitRules() throws -> [RateLimitRule] { try store.rateLimitRules(on: database) }
    public func rateLimitKeys() throws -> [RateLimitKeyInfo] { try store.rateLimitKeys(on: database) }
    public func rateLimitWait(of jobID: Int) throws -> (key: String, until: Date)? { try store.rateLimitWait(of: jobID, on: database) }
    public func metrics() throws -> MetricsSnapshot { try store.metrics(on: database) }
    public func countsByMinute(last minutes: Int) throws -> [MinuteCounts] { try store.countsByMinute(last: minutes, on: database) }
    public func findJobs(_ filter: JobFilter, before: Int?, limit: Int) throws -> JobPage {
        try store.findJobs(filter, before: before, limit: limit, on: database)
    }
    public func countJobs(_ filter: JobFilter) throws -> Int { try store.countJobs(filter, on: database) }
    public func countJobs(_ filter: JobFilter, upTo cap: Int) throws -> Int { try store.countJobs(filter, upTo: cap, on: database) }
    public func jobWindow(count: Int, from maxID: Int?) throws -> ClosedRange<Int>? {
        try store.jobWindow(count: count, from: maxID, on: database)
    }
    public func apply(_ action: BulkAction, to filter: JobFilter) throws -> BulkOutcome {
        try store.apply(action, to: filter, batchSize: 500, on: database)
    }
    public func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int) throws -> BulkOutcome {
        try store.apply(action, to: filter, batchSize: batchSize, on: database)
    }
    public func apply(_ action: BulkAction, to filter: JobFilter, batchSize: Int, progress: (BulkOutcome) -> Bool) throws -> BulkOutcome {
        try store.apply(action, to: filter, batchSize: batchSize, on: database, progress: progress)
    }
    public func jobDetail(_ id: Int) throws -> JobDetail? { try store.jobDetail(id, on: database) }
    public func enqueueTaskNow(_ key: String) throws -> Int { try store.enqueueTaskNow(key, on: database) }
    public func enqueueBatch(_ batch: NewBatch, jobs: [NewJob], afterPlaces: [[Int]]) throws -> (batchID: Int, jobIDs: [Int]) {
        try store.enqueueBatch(batch, jobs: jobs, afterPlaces: afterPlaces, on: database)
    }
    public func batch(_ id: Int) throws -> BatchInfo? { try store.batch(id, on: database) }
    public func listBatches(before: Int?, limit: Int) throws -> [BatchInfo] { try store.listBatches(before: before, limit: limit, on: database) }
    public func batchStates(_ id: Int) throws -> [JobState: Int] { try store.batchStates(id, on: database) }
    public func batchJobs(_ id: Int, after: Int, limit: Int) throws -> [BatchJob] {
        try store.batchJobs(id, after: after, limit: limit, on: database)
    }
    public func dependencies(of jobID: Int) throws -> [Dependency] { try store.dependencies(of: jobID, on: database) }
    public func dependants(of jobID: Int) throws -> [Int] { try store.dependants(of: jobID, on: database) }
}
