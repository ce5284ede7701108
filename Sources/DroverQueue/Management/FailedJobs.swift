import DroverPersistence

extension JobStore {
    /// Puts failed jobs back in ready with fresh attempts and crash counts, and wakes workers.
    /// Every id must be a failed job; otherwise nothing changes and the error names the others.
    @discardableResult
    public func retryFailed(_ ids: [Int], on connection: Connection) throws -> [Int] {
        try connection.withTransaction { connection in
            try lockFailed(ids, doing: "retried", on: connection)
            return try revive("SELECT job_id FROM \(failed) WHERE job_id = ANY(\(ids))", on: connection)
        }
    }

    /// Retries every failed job, `batchSize` per transaction. Returns how many.
    @discardableResult
    public func retryAllFailed(batchSize: Int = 1000, on connection: Connection) throws -> Int {
        var total = 0
        while true {
            let batch = try revive(
                "SELECT job_id FROM \(failed) ORDER BY job_id LIMIT \(batchSize) FOR UPDATE SKIP LOCKED", on: connection)
            total += batch.count
            if batch.count < batchSize { return total }
        }
    }

    /// Deletes failed jobs. Every id must be a failed job; otherwise nothing changes.
    @discardableResult
    public func discardFailed(_ ids: [Int], on connection: Connection) throws -> [Int] {
        try connection.withTransaction { connection in
            try lockFailed(ids, doing: "discarded", on: connection)
            return try connection.query("DELETE FROM \(jobs) WHERE id = ANY(\(ids)) RETURNING id")
                .map { try $0.decode("id", as: Int.self) }.sorted()
        }
    }

    /// Deletes every failed job, `batchSize` per transaction. Returns how many.
    @discardableResult
    public func discardAllFailed(batchSize: Int = 1000, on connection: Connection) throws -> Int {
        var total = 0
        while true {
            let deleted = try connection.execute("""
                DELETE FROM \(jobs) WHERE id IN (
                    SELECT job_id FROM \(failed) ORDER BY job_id LIMIT \(batchSize) FOR UPDATE SKIP LOCKED)
                """)
            total += deleted
            if deleted < batchSize { return total }
        }
    }

    /// Locks the failed rows of `ids`; throws when any id is missing or not failed.
    private func lockFailed(_ ids: [Int], doing verb: String, on connection: Connection) throws {
        let wanted = Set(ids)
        let locked = Set(try connection.query("SELECT job_id FROM \(failed) WHERE job_id = ANY(\(ids)) FOR UPDATE")
            .map { try $0.decode("job_id", as: Int.self) })
        guard locked != wanted else { return }
        let others = wanted.subtracting(locked).sorted()
        let states = try self.states(of: others, on: connection)
        let missing = others.filter { states[$0] == nil }
        if !missing.isEmpty {
            throw QueueError(
                .jobNotFound, "no job with id \(missing.map(String.init).joined(separator: ", ")); nothing was \(verb)",
                jobIDs: missing)
        }
        let described = others.map { "job \($0) is \(states[$0]!.rawValue)" }.joined(separator: ", ")
        throw QueueError(
            .wrongState, "only failed jobs can be \(verb): \(described); nothing was \(verb)", jobIDs: others)
    }

    /// Moves the failed jobs `selection` picks back to ready; returns their ids.
    private func revive(_ selection: SQL, on connection: Connection) throws -> [Int] {
        do {
            return try connection.query("""
                WITH revived AS (
                    DELETE FROM \(failed) WHERE job_id IN (\(selection)) RETURNING job_id
                ), reset AS (
                    UPDATE \(jobs) j SET attempts = 0, crashes = 0, failed_at = NULL, updated_at = now()
                    FROM revived WHERE j.id = revived.job_id
                    RETURNING j.id, j.queue_name, j.priority, j.concurrency_key
                ), back AS (
                    INSERT INTO \(ready) (job_id, queue_name, priority) SELECT id, queue_name, priority FROM reset
                    WHERE concurrency_key IS NULL
                    RETURNING job_id, queue_name
                ), woken AS (
                    \(notifyingQueues(of: "back"))
                ), admitted AS (
                    -- A job with a concurrency key takes a free slot or waits in blocked.
                    SELECT \(schema).concurrency_admit(array_agg(id)) AS n FROM reset WHERE concurrency_key IS NOT NULL
                )
                SELECT r.id AS job_id FROM reset r, woken, admitted ORDER BY r.id
                """).map { try $0.decode("job_id", as: Int.self) }
        } catch let error as DatabaseError where error.code == .uniqueViolation {
            throw QueueError(
                .wrongState,
                "a failed job cannot be retried while another live job has its unique key; finish or discard that one first",
                jobIDs: [])
        }
    }
}
