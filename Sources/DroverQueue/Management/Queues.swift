import DroverPersistence

/// A queue as `drover queues list` shows it.
public struct QueueInfo: Sendable, Equatable {
    public let name: String
    public var ready = 0
    public var scheduled = 0
    public var claimed = 0
    public var blocked = 0
    public var failed = 0
    /// How long the oldest ready job has been waiting, in seconds.
    public var oldestReadyAge: Double?
    public var paused = false

    public init(name: String) { self.name = name }

    /// The queues in rows of (queue_name, kind, n, oldest), one row per queue and kind.
    static func collect(_ rows: QueryResult) throws -> [QueueInfo] {
        var queues: [String: QueueInfo] = [:]
        for row in rows {
            let name = try row.decode("queue_name", as: String.self)
            let count = try row.decode("n", as: Int.self)
            var info = queues[name] ?? QueueInfo(name: name)
            switch try row.decode("kind", as: String.self) {
            case "ready":
                info.ready = count
                info.oldestReadyAge = try row.decode("oldest", as: Double?.self)
            case "scheduled": info.scheduled = count
            case "blocked": info.blocked = count
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
    /// Every queue that has jobs (not finished) or is paused, by name.
    public func listQueues(on connection: Connection) throws -> [QueueInfo] {
        let rows = try connection.query("""
            SELECT queue_name, 'ready' AS kind, count(*) AS n,
                   extract(epoch FROM now() - min(created_at))::float8 AS oldest
            FROM \(ready) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'scheduled', count(*), NULL FROM \(scheduled) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'blocked', count(*), NULL FROM \(blocked) GROUP BY queue_name
            UNION ALL SELECT j.queue_name, 'claimed', count(*), NULL
                      FROM \(claimed) c JOIN \(jobs) j ON j.id = c.job_id GROUP BY j.queue_name
            UNION ALL SELECT j.queue_name, 'failed', count(*), NULL
                      FROM \(failed) f JOIN \(jobs) j ON j.id = f.job_id GROUP BY j.queue_name
            UNION ALL SELECT queue_name, 'paused', 0, NULL FROM \(pauses)
            """)
        return try QueueInfo.collect(rows)
    }

    /// Stops workers from claiming from `queue` (jobs can still be enqueued). Returns false when it
    /// was paused already.
    @discardableResult
    public func pause(_ queue: String, on connection: Connection) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        return try connection.execute("INSERT INTO \(pauses) (queue_name) VALUES (\(queue)) ON CONFLICT DO NOTHING") == 1
    }

    /// Lets workers claim from `queue` again and wakes them. Returns false when it was not paused.
    @discardableResult
    public func resume(_ queue: String, on connection: Connection) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        let resumed = try connection.execute("DELETE FROM \(pauses) WHERE queue_name = \(queue)") == 1
        if resumed { try connection.notify(wakeChannel, payload: queue) }
        return resumed
    }

    /// Deletes the ready and scheduled jobs of `queue`, in batches; claimed jobs run on, failed ones
    /// stay (see ``discardFailed(_:on:)``). Returns how many of each were deleted.
    public func clear(_ queue: String, batchSize: Int = 1000, on connection: Connection) throws -> (ready: Int, scheduled: Int) {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        func deleteAll(in table: SQLIdentifier) throws -> Int {
            var total = 0
            while true {
                let deleted = try connection.withTransaction { connection in
                    let keys = try connection.query("""
                        DELETE FROM \(jobs) WHERE id IN (
                            SELECT job_id FROM \(table) WHERE queue_name = \(queue) LIMIT \(batchSize) FOR UPDATE SKIP LOCKED)
                        RETURNING concurrency_key
                        """).map { try $0.decode("concurrency_key", as: String?.self) }
                    // Ready jobs held slots of their concurrency keys.
                    if table == ready { try signal(keys.compactMap { $0 }, on: connection) }
                    return keys.count
                }
                total += deleted
                if deleted < batchSize { return total }
            }
        }
        return (try deleteAll(in: ready), try deleteAll(in: scheduled))
    }
}
