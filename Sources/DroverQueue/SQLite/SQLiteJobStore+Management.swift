import DroverPersistence
import Foundation

/// Managing queues and failed jobs on SQLite, with the same rules and words as PostgreSQL's store.
extension SQLiteJobStore {
    private var pausesTable: SQLIdentifier { schema.qualifying("pauses") }

    @discardableResult
    public func pause(_ queue: String, on database: SQLiteConnection) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        return try database.execute("INSERT INTO \(pausesTable) (queue_name) VALUES (\(queue)) ON CONFLICT DO NOTHING") == 1
    }

    @discardableResult
    public func resume(_ queue: String, on database: SQLiteConnection) throws -> Bool {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        let resumed = try database.execute("DELETE FROM \(pausesTable) WHERE queue_name = \(queue)") == 1
        if resumed { database.wakeWorkers() }
        return resumed
    }

    public func clear(_ queue: String, batchSize: Int = 1000, on database: SQLiteConnection) throws -> (ready: Int, scheduled: Int) {
        try JobRules.checkQueueName(queue, code: .invalidQueue)
        return try database.withTransaction { db in
            func delete(_ table: String) throws -> Int {
                let keys = try db.query("""
                    DELETE FROM \(schema.qualifying("jobs")) WHERE id IN (
                        SELECT job_id FROM \(schema.qualifying(table)) WHERE queue_name = \(queue))
                    RETURNING concurrency_key
                    """).map { try $0.decode("concurrency_key", as: String?.self) }
                // Ready jobs held slots of their concurrency keys.
                if table == "ready_executions" { try signal(keys.compactMap { $0 }, on: db) }
                return keys.count
            }
            return (try delete("ready_executions"), try delete("scheduled_executions"))
        }
    }

    @discardableResult
    public func retryFailed(_ ids: [Int], on database: SQLiteConnection) throws -> [Int] {
        try database.withTransaction { db in
            try requireFailed(ids, doing: "retried", on: db)
            let now = Self.timestamp(Date())
            for id in ids {
                try db.execute("DELETE FROM \(schema.qualifying("failed_executions")) WHERE job_id = \(id)")
                do {
                    try db.execute("UPDATE \(schema.qualifying("jobs")) SET attempts = 0, crashes = 0, failed_at = NULL, updated_at = \(now) WHERE id = \(id)")
                } catch let error as DatabaseError where error.code == .uniqueViolation {
                    throw QueueError(
                        .wrongState,
                        "a failed job cannot be retried while another live job has its unique key; finish or discard that one first")
                }
                if try db.query("SELECT concurrency_key FROM \(schema.qualifying("jobs")) WHERE id = \(id)")[0]
                    .decode("concurrency_key", as: String?.self) != nil {
                    // A job with a concurrency key takes a free slot or waits in blocked.
                    try admit([id], on: db)
                    continue
                }
                try db.execute("""
                    INSERT INTO \(schema.qualifying("ready_executions")) (job_id, queue_name, priority)
                    SELECT id, queue_name, priority FROM \(schema.qualifying("jobs")) WHERE id = \(id)
                    """)
            }
            db.wakeWorkers()
            return ids.sorted()
        }
    }

    @discardableResult
    public func discardFailed(_ ids: [Int], on database: SQLiteConnection) throws -> [Int] {
        try database.withTransaction { db in
            try requireFailed(ids, doing: "discarded", on: db)
            for id in ids { try db.execute("DELETE FROM \(schema.qualifying("jobs")) WHERE id = \(id)") }
            return ids.sorted()
        }
    }

    /// Throws, naming them, when any of `ids` is missing or not failed (the same words as PostgreSQL's store).
    private func requireFailed(_ ids: [Int], doing verb: String, on db: SQLiteConnection) throws {
        var missing: [Int] = []
        var others: [(Int, JobState)] = []
        for id in Set(ids).sorted() {
            guard let state = try job(id, on: db)?.state else {
                missing.append(id)
                continue
            }
            if state != .failed { others.append((id, state)) }
        }
        if !missing.isEmpty {
            throw QueueError(
                .jobNotFound, "no job with id \(missing.map(String.init).joined(separator: ", ")); nothing was \(verb)", jobIDs: missing)
        }
        if !others.isEmpty {
            let described = others.map { "job \($0.0) is \($0.1.rawValue)" }.joined(separator: ", ")
            throw QueueError(.wrongState, "only failed jobs can be \(verb): \(described); nothing was \(verb)", jobIDs: others.map(\.0))
        }
    }
}
