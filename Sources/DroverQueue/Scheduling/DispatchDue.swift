import DroverPersistence

extension JobStore {
    /// Moves up to `batchSize` scheduled jobs (and retries) that are due to ready, earliest first,
    /// in one statement, and wakes workers on their queues. Returns how many moved; a full batch
    /// means there may be more.
    @discardableResult
    public func dispatchDue(batchSize: Int = 500, on connection: Connection) throws(DatabaseError) -> Int {
        let rows = try connection.query(prepared: true, """
            WITH due AS (
                SELECT job_id FROM \(scheduled)
                WHERE scheduled_at <= now()
                ORDER BY scheduled_at, priority, job_id
                LIMIT \(batchSize)
                FOR UPDATE SKIP LOCKED
            ), moved AS (
                DELETE FROM \(scheduled) s USING due WHERE s.job_id = due.job_id
                RETURNING s.job_id, s.queue_name, s.priority
            ), back AS (
                INSERT INTO \(ready) (job_id, queue_name, priority) SELECT job_id, queue_name, priority FROM moved
                RETURNING queue_name
            ), woken AS (
                \(notifyingQueues(of: "back"))
            )
            SELECT (SELECT count(*) FROM back) AS moved FROM woken
            """)
        return try rows[0].decode("moved", as: Int.self)
    }
}
