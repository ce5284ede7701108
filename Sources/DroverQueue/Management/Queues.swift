import Foundation
import DroverPersistence

/// A queue as `drover queues list` shows it.
public struct QueueInfo: Sendable, Equatable {
    public let name: String
    public var ready = 0
    public var scheduled = 0
    public var claimed = 0
    public var blocked = 0
    /// Waiting for the jobs they depend on.
    public var waiting = 0
    public var failed = 0
    /// How long the oldest ready job has been waiting, in seconds.
    public var oldestReadyAge: Double?
    public var paused = false

    public init(name: String) { self.name = name }

    /// The queues in rows of (queue_name, kind, n, oldest), one row per queue and kind; `oldest`
    /// is the oldest ready job's time, its age taken at `now`.
    static func collect(_ rows: QueryResult, now: Date) throws -> [QueueInfo] {
        var queues: [String: QueueInfo] = [:]
        for row in rows {
            let name = try row.decode("queue_name", as: String.self)
            let count = try row.decode("n", as: Int.self)
            var info = queues[name] ?? QueueInfo(name: name)
            switch try row.decode("kind", as: String.self) {
            case "ready":
                info.ready = count
                info.oldestReadyAge = try row.decode("oldest", as: Date?.self).map { max(0, now.timeIntervalSince($0)) }
            case "scheduled": info.scheduled = count
            case "blocked": info.blocked = count
            case "waiting": info.waiting = count
            case "claimed": info.claimed = count
            case "failed": info.failed = count
            default: info.paused = true
            }
            queues[name] = info
        }
        return queues.values.sorted { $0.name < $1.name }
    }
}

extension JobStore {
    /// Every queue that has jobs (not finished) or is paused, by name. A claimed job's queue is
    /// looked up job by job (its primary key: a join would read all of `jobs`, a million finished
    /// rows included); failed jobs are counted from the index of failed jobs by queue (migration 9,
    /// SQLite's 5), since a job has `failed_at` exactly while it is failed.
    public func listQueues(on database: Driver.Database) throws -> [QueueInfo] {
        let now = self.now()
        let rows = try database.fetch("""
            SELECT queue_name, 'ready' AS kind, count(*) AS n, min(created_at) AS oldest FROM \(ready) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'scheduled', count(*), NULL FROM \(scheduled) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'blocked', count(*), NULL FROM \(blocked) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'waiting', count(*), NULL FROM \(waiting) GROUP BY queue_name
            UNION ALL SELECT q, 'claimed', count(*), NULL
                      FROM (SELECT (SELECT j.queue_name FROM \(jobs) j WHERE j.id = c.job_id) AS q FROM \(claimed) c) c GROUP BY q
            UNION ALL SELECT queue_name, 'failed', count(*), NULL FROM \(jobs) WHERE failed_at IS NOT NULL GROUP BY queue_name
            UNION ALL SELECT queue_name, 'paused', 0, NULL FROM \(pauses)
            """)
        return try QueueInfo.collect(rows, now: try time(now, on: database))
    }

    /// Stops workers from claiming from `queue` (jobs can still be enqueued). Returns false when it
    /// was paused already.
    @discardableResult
    public func pause(_ queue: String, on database: Driver.Database) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        return try database.change("""
            INSERT INTO \(pauses) (queue_name, created_at) VALUES (\(queue), \(now().sql)) ON CONFLICT (queue_name) DO NOTHING
            """) == 1
    }

    /// Lets workers claim from `queue` again and wakes them. Returns false when it was not paused.
    @discardableResult
    public func resume(_ queue: String, on database: Driver.Database) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        return try database.atomically {
            let resumed = try database.change("DELETE FROM \(pauses) WHERE queue_name = \(queue)") == 1
            if resumed { try driver.wakeWorkers(queues: [queue], in: self, on: database) }
            return resumed
        }
    }

    /// Deletes the ready and scheduled jobs of `queue`, `batchSize` per transaction; claimed jobs
    /// run on, failed ones stay (see ``discardFailed(_:on:)``). They count as discarded
    /// (``JobMetric``). Returns how many of each were deleted.
    public func clear(_ queue: String, batchSize: Int = 1000, on database: Driver.Database) throws -> (ready: Int, scheduled: Int) {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        try QueueError.require("batch size", batchSize, atLeast: 1)
        func deleteAll(in table: SQLIdentifier) throws -> Int {
            var total = 0
            while true {
                let now = self.now()
                let deleted = try database.inWriteTransaction {
                    let batch = try database.ids("""
                        SELECT job_id FROM \(table) WHERE queue_name = \(queue) ORDER BY job_id LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked)
                        """, column: "job_id")
                    guard !batch.isEmpty else { return 0 }
                    try count(.discarded, jobs: batch, on: database)
                    let rows = try database.fetch("""
                        DELETE FROM \(jobs) WHERE \(driver.contains("id", ids: batch)) RETURNING id, concurrency_key, batch_id, has_dependants
                        """)
                    let keys = try rows.map { try $0.decode("concurrency_key", as: String?.self) }
                    // Ready jobs held slots of their concurrency keys.
                    if table == ready { try signal(keys.compactMap { $0 }, now: now, on: database) }
                    // For their batches and the jobs waiting for them, they did not finish.
                    try settle(try rows.map { try EndedJob(row: $0, finished: false) }.sorted { $0.id < $1.id }, now: now, on: database)
                    return keys.count
                }
                total += deleted
                if deleted < batchSize { return total }
            }
        }
        return (try deleteAll(in: ready), try deleteAll(in: scheduled))
    }
}
