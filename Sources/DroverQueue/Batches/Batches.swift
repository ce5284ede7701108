import DroverPersistence
import Foundation

/// A batch to enqueue with its jobs (``JobStore/enqueueBatch(_:jobs:on:)``): a group of jobs
/// whose end enqueues callback jobs, each exactly once, in the transaction of the state change
/// that makes it due.
///
/// ```swift
/// let batch = NewBatch(description: "thumbnails of album 7", onComplete: "ZipAlbum")
/// let (batchID, ids) = try store.enqueueBatch(batch, jobs: photos.map { NewJob("Thumbnail", arguments: $0) }, on: db)
/// ```
public struct NewBatch: Sendable, Equatable {
    /// Handed to the callbacks; at most ``maxDescriptionBytes``.
    public var description: String?
    /// Enqueued once every job of the batch finished (none failed for good).
    public var onSuccess: String?
    /// Enqueued once every job of the batch finished or failed for good.
    public var onComplete: String?
    /// Enqueued when the first job of the batch fails for good (is cancelled or discarded).
    public var onFailure: String?
    /// The queue of the callback jobs.
    public var callbackQueue: String

    public static let maxDescriptionBytes = 4096

    public init(
        description: String? = nil, onSuccess: String? = nil, onComplete: String? = nil, onFailure: String? = nil,
        callbackQueue: String = JobRules.defaultQueue
    ) {
        self.description = description
        self.onSuccess = onSuccess
        self.onComplete = onComplete
        self.onFailure = onFailure
        self.callbackQueue = callbackQueue
    }

    func check() throws(QueueError) {
        for (field, className) in [("on_success", onSuccess), ("on_complete", onComplete), ("on_failure", onFailure)] {
            guard let className else { continue }
            do {
                try JobRules.checkClassName(className)
            } catch {
                throw QueueError(.invalidRequest, "\(field): \(error.message)", field: field)
            }
        }
        do {
            try JobRules.checkQueueName(callbackQueue, field: "callback_queue", code: .invalidRequest)
        }
        if let description, description.utf8.count > Self.maxDescriptionBytes {
            throw QueueError(
                .invalidRequest, "the description is \(description.utf8.count) bytes; the limit is \(Self.maxDescriptionBytes): "
                    + "keep it short and put the details in the jobs' arguments", field: "description")
        }
    }
}

/// A batch as `drover batches` shows it.
public struct BatchInfo: Sendable, Equatable {
    public let id: Int
    public let description: String?
    public let onSuccess: String?
    public let onComplete: String?
    public let onFailure: String?
    public let callbackQueue: String
    public let total: Int
    /// Jobs not yet finished or failed for good.
    public let pending: Int
    public let finished: Int
    /// Failed for good, cancelled or discarded.
    public let failed: Int
    /// The callback jobs, once enqueued.
    public let successJobID: Int?
    public let completeJobID: Int?
    public let failureJobID: Int?
    /// When its last pending job finished or failed for good.
    public let completedAt: Date?
    public let createdAt: Date

    init(row: Row) throws {
        id = try row.decode("id")
        description = try row.decode("description")
        onSuccess = try row.decode("on_success")
        onComplete = try row.decode("on_complete")
        onFailure = try row.decode("on_failure")
        callbackQueue = try row.decode("callback_queue")
        total = try row.decode("total")
        pending = try row.decode("pending")
        finished = try row.decode("finished")
        failed = try row.decode("failed")
        successJobID = try row.decode("success_job_id")
        completeJobID = try row.decode("complete_job_id")
        failureJobID = try row.decode("failure_job_id")
        completedAt = try row.decode("completed_at")
        createdAt = try row.decode("created_at")
    }
}

/// The arguments of a batch's callback job.
public struct BatchCallbackArguments: Codable, Sendable, Equatable {
    public var batchID: Int
    /// `success`, `complete` or `failure`.
    public var event: String
    public var description: String?
    public var total: Int
    public var finished: Int
    public var failed: Int
    public var pending: Int
    /// For `failure`: the job whose failure enqueued it.
    public var failedJobID: Int?

    public init(
        batchID: Int, event: String, description: String?, total: Int, finished: Int, failed: Int, pending: Int, failedJobID: Int? = nil
    ) {
        self.batchID = batchID
        self.event = event
        self.description = description
        self.total = total
        self.finished = finished
        self.failed = failed
        self.pending = pending
        self.failedJobID = failedJobID
    }

    enum CodingKeys: String, CodingKey {
        case batchID = "batch_id", event, description, total, finished, failed, pending, failedJobID = "failed_job_id"
    }
}

/// A job of a batch with its state and result (``JobStore/batchJobs(_:after:limit:on:)``).
public struct BatchJob: Sendable, Equatable {
    public let id: Int
    public let className: String
    public let state: JobState
    public let result: JSON?
}

extension JobStore {
    var batches: SQLIdentifier { table("batches") }

    /// Creates a batch and enqueues `jobs` into it, all or nothing; returns the batch's id and
    /// the jobs' ids in order. Jobs may wait for other jobs (``NewJob/after``), of the batch
    /// (enqueued earlier) or not.
    ///
    /// - Throws: ``QueueError`` (`invalidRequest` for the batch, `invalidJob` naming the job and
    ///   field) before anything is written.
    ///
    /// `afterPlaces[i]`, when given, lists jobs of this call that job `i` waits for, by their
    /// places (from 0, each before `i`): a workflow written before any id is known.
    public func enqueueBatch(
        _ batch: NewBatch, jobs: [NewJob], afterPlaces: [[Int]] = [], on database: Driver.Database
    ) throws -> (batchID: Int, jobIDs: [Int]) {
        try batch.check()
        guard !jobs.isEmpty else {
            throw QueueError(.invalidRequest, "a batch needs at least one job", field: "jobs")
        }
        for (i, job) in jobs.enumerated() where job.batchID != nil {
            throw QueueError(.invalidJob, "a job of a new batch names batch \(job.batchID!): leave it out", field: "batch")
                .about(job: i, of: jobs.count)
        }
        return try database.atomically {
            let batchID = try openBatch(batch, on: database)
            let jobs = jobs.map { var job = $0; job.batchID = batchID; return job }
            guard afterPlaces.contains(where: { !$0.isEmpty }) else { return (batchID, try enqueue(jobs, on: database)) }
            for (i, places) in afterPlaces.enumerated() where i < jobs.count {
                if let bad = places.first(where: { $0 < 0 || $0 >= i }) {
                    throw QueueError(.invalidJob, "it waits for job \(bad + 1) of the batch, which does not come before it: a job can wait "
                                     + "only for jobs listed before it", field: "after").about(job: i, of: jobs.count)
                }
            }
            // Runs of jobs that wait for none of this call go in one enqueue; one that does, alone,
            // once the ids of those it waits for are known.
            var ids: [Int] = []
            var start = 0
            while start < jobs.count {
                let places = start < afterPlaces.count ? afterPlaces[start] : []
                if !places.isEmpty {
                    var job = jobs[start]
                    job.after += places.map { ids[$0] }
                    do {
                        ids += try enqueue([job], on: database)
                    } catch let error as QueueError {
                        throw error.about(job: start, of: jobs.count)
                    }
                    start += 1
                    continue
                }
                let end = (start..<jobs.count).first { $0 < afterPlaces.count && !afterPlaces[$0].isEmpty } ?? jobs.count
                do {
                    ids += try enqueue(Array(jobs[start..<end]), on: database)
                } catch var error as QueueError {
                    if let index = error.jobIndex {
                        error.message = error.message.replacingOccurrences(of: "job \(index + 1): ", with: "")
                        error = error.about(job: start + index, of: jobs.count)
                    }
                    throw error
                }
                start = end
            }
            return (batchID, ids)
        }
    }

    /// Creates an open batch with no jobs yet and returns its id: jobs enqueued with its id join it,
    /// in the same transaction (see ``requireJobs(inBatch:on:)``).
    public func openBatch(_ batch: NewBatch, on database: Driver.Database) throws -> Int {
        try batch.check()
        let now = self.now()
        return try database.fetch("""
            INSERT INTO \(batches) (description, on_success, on_complete, on_failure, callback_queue, created_at, updated_at)
            VALUES (\(batch.description), \(batch.onSuccess), \(batch.onComplete), \(batch.onFailure), \(batch.callbackQueue),
                    \(now.sql), \(now.sql))
            RETURNING id
            """)[0].decode("id", as: Int.self)
    }

    /// Throws unless batch `id` has a job (a batch without any would never complete).
    public func requireJobs(inBatch id: Int, on database: Driver.Database) throws {
        guard let batch = try batch(id, on: database), batch.total > 0 else {
            throw QueueError(.invalidRequest, "batch \(id) has no jobs: enqueue at least one with its id; nothing was written", field: "jobs")
        }
    }

    /// Adds `count` jobs to each open batch of `counts`, in id order (the lock order of batch rows).
    func joinBatches(_ counts: [Int: Int], now: Moment, on database: Driver.Database) throws {
        for (id, count) in counts.sorted(by: { $0.key < $1.key }) {
            let changed = try database.change("""
                UPDATE \(batches) SET total = total + \(count), pending = pending + \(count), updated_at = \(now.sql)
                WHERE id = \(id) AND completed_at IS NULL
                """)
            guard changed == 0 else { continue }
            if try database.fetch("SELECT id FROM \(batches) WHERE id = \(id)").isEmpty {
                throw QueueError(.invalidJob, "no batch with id \(id)", field: "batch")
            }
            throw QueueError(
                .invalidJob, "batch \(id) is complete (its callbacks were enqueued): add jobs to a batch from one of its own jobs, "
                    + "while it runs, or start a new batch", field: "batch")
        }
    }

    /// Counts jobs of batches that have just ended (in this transaction), and enqueues the callbacks
    /// that became due: `on_failure` with the first failure, `on_success` and `on_complete` when
    /// none is pending. Batches in id order, after every job row (the lock order).
    func countEnded(_ ended: [EndedJob], now: Moment, on database: Driver.Database) throws {
        var byBatch: [Int: (finished: Int, failed: Int, firstFailed: Int?)] = [:]
        for job in ended {
            guard let batch = job.batchID else { continue }
            var counts = byBatch[batch] ?? (0, 0, nil)
            if job.finished {
                counts.finished += 1
            } else {
                counts.failed += 1
                counts.firstFailed = min(counts.firstFailed ?? job.id, job.id)
            }
            byBatch[batch] = counts
        }
        for (id, counts) in byBatch.sorted(by: { $0.key < $1.key }) {
            guard let row = try database.fetch("""
                UPDATE \(batches) SET pending = pending - \(counts.finished + counts.failed), finished = finished + \(counts.finished),
                    failed = failed + \(counts.failed), updated_at = \(now.sql)
                WHERE id = \(id)
                RETURNING id, description, on_success, on_complete, on_failure, callback_queue, total, pending, finished, failed,
                    success_job_id, complete_job_id, failure_job_id, completed_at, created_at
                """).first else { continue }
            let batch = try BatchInfo(row: row)
            func callback(_ className: String, _ event: String, failedJob: Int? = nil) throws -> Int {
                let arguments = BatchCallbackArguments(
                    batchID: id, event: event, description: batch.description, total: batch.total, finished: batch.finished,
                    failed: batch.failed, pending: batch.pending, failedJobID: failedJob)
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                return try enqueue(NewJob(className, arguments: try JSON(encoding: arguments, encoder: encoder), queue: batch.callbackQueue),
                                   on: database)
            }
            var failure = batch.failureJobID
            if counts.failed > 0, failure == nil, let onFailure = batch.onFailure {
                failure = try callback(onFailure, "failure", failedJob: counts.firstFailed)
            }
            var success = batch.successJobID
            var complete = batch.completeJobID
            var completedAt: SQL = "completed_at"
            if batch.pending == 0 && batch.completedAt == nil {
                completedAt = now.sql
                if batch.failed == 0, let onSuccess = batch.onSuccess { success = try callback(onSuccess, "success") }
                if let onComplete = batch.onComplete { complete = try callback(onComplete, "complete") }
            }
            // Only when a callback was enqueued or the batch completed: most ends change nothing more.
            guard failure != batch.failureJobID || batch.pending == 0 && batch.completedAt == nil else { continue }
            try database.change("""
                UPDATE \(batches) SET success_job_id = \(success), complete_job_id = \(complete), failure_job_id = \(failure),
                    completed_at = \(completedAt)
                WHERE id = \(id)
                """)
        }
    }

    /// Jobs of batches that failed and are retried: pending again (a batch already complete
    /// stays complete: its callbacks were enqueued once and are not enqueued again).
    func reopenInBatches(_ jobIDs: [Int], now: Moment, on database: Driver.Database) throws {
        guard !jobIDs.isEmpty else { return }
        var counts: [Int: Int] = [:]
        for row in try database.fetch("""
            SELECT batch_id FROM \(jobs) WHERE \(driver.contains("id", ids: jobIDs)) AND batch_id IS NOT NULL
            """) {
            counts[try row.decode("batch_id", as: Int.self), default: 0] += 1
        }
        for (id, count) in counts.sorted(by: { $0.key < $1.key }) {
            try database.change("""
                UPDATE \(batches) SET failed = failed - \(count), pending = pending + \(count), updated_at = \(now.sql) WHERE id = \(id)
                """)
        }
    }

    /// One batch, or nil.
    public func batch(_ id: Int, on database: Driver.Database) throws -> BatchInfo? {
        try database.fetch("SELECT * FROM \(batches) WHERE id = \(id)").first.map(BatchInfo.init(row:))
    }

    /// Batches, newest first; `before` an id for the next page.
    public func listBatches(before: Int? = nil, limit: Int = 50, on database: Driver.Database) throws -> [BatchInfo] {
        try QueueError.require("limit", limit, atLeast: 0)
        return try database.fetch("""
            SELECT * FROM \(batches) WHERE id < \(before ?? Int.max) ORDER BY id DESC LIMIT \(limit)
            """).map(BatchInfo.init(row:))
    }

    /// How many of a batch's jobs are in each state (finished jobs that retention cleared are
    /// no longer counted here; the batch's own counts keep them).
    public func batchStates(_ id: Int, on database: Driver.Database) throws -> [JobState: Int] {
        var states: [JobState: Int] = [:]
        for row in try database.fetch("""
            SELECT state, count(*) AS n FROM (SELECT \(stateExpression) AS state FROM \(jobs) j WHERE j.batch_id = \(id)) s GROUP BY state
            """) {
            if let state = JobState(rawValue: try row.decode("state", as: String.self)) { states[state] = try row.decode("n", as: Int.self) }
        }
        return states
    }

    /// A batch's jobs in id order with their states and results, `limit` at a time after `after`.
    public func batchJobs(_ id: Int, after: Int = 0, limit: Int = 1000, on database: Driver.Database) throws -> [BatchJob] {
        try QueueError.require("limit", limit, atLeast: 0)
        return try database.fetch("""
            SELECT j.id, j.class_name, j.result, \(stateExpression) AS state FROM \(jobs) j
            WHERE j.batch_id = \(id) AND j.id > \(after) ORDER BY j.id LIMIT \(limit)
            """).map { row in
            BatchJob(id: try row.decode("id"), className: try row.decode("class_name"),
                     state: JobState(rawValue: try row.decode("state", as: String.self)) ?? .failed, result: try row.decode("result"))
        }
    }
}
