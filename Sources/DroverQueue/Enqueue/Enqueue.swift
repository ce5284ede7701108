import DroverPersistence

extension JobStore {
    /// Enqueues `job` on `connection` and returns its id. Inside the caller's transaction it commits
    /// or rolls back with it. A due job is ready at once; a future one is scheduled.
    ///
    /// - Throws: ``QueueError`` (`invalidJob`, naming the field) before anything is sent, so a bad job
    ///   never aborts the caller's transaction; ``DatabaseError`` when the database fails.
    @discardableResult
    public func enqueue(_ job: NewJob, on connection: Connection) throws -> Int {
        try enqueue([job], on: connection)[0]
    }

    /// Enqueues `jobs` in one statement and returns their ids in the same order. Waiting workers are
    /// notified once per queue, not once per job. Nothing is written if any job is invalid.
    @discardableResult
    public func enqueue(_ jobs: [NewJob], on connection: Connection) throws -> [Int] {
        guard !jobs.isEmpty else { return [] }
        var document = "["
        document.reserveCapacity(jobs.count * 96)
        for (i, job) in jobs.enumerated() {
            do {
                try JobRules.check(job)
            } catch {
                let message = jobs.count > 1 ? "job \(i + 1): \(error.message)" : error.message
                throw QueueError(error.code, message, field: error.field)
            }
            if i > 0 { document += "," }
            document += job.jsonElement
        }
        document += "]"
        let rows: QueryResult
        do {
            rows = try connection.query(
                "SELECT id FROM \(schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: document))) AS id")
        } catch {
            guard error.code == .invalidParameterValue else { throw error }
            throw QueueError(.invalidJob, error.message.replacingPrefix("drover: ", with: ""), field: error.column)
        }
        var ids: [Int] = []
        ids.reserveCapacity(jobs.count)
        for row in rows { ids.append(try row.decode(at: 0, as: Int.self)) }
        return ids
    }
}

extension String {
    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
