import DroverPersistence

extension JobStore {
    /// Moves up to `batchSize` scheduled jobs (and retries) that are due to ready, earliest first,
    /// in one statement, and wakes workers on their queues; a job with a concurrency key is admitted
    /// (ready if its key has a free slot, else blocked). Returns how many moved; a full batch means
    /// there may be more.
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
            ), keyed AS (
                SELECT m.job_id, j.concurrency_key FROM moved m JOIN \(jobs) j ON j.id = m.job_id
            ), back AS (
                INSERT INTO \(ready) (job_id, queue_name, priority)
                SELECT m.job_id, m.queue_name, m.priority FROM moved m JOIN keyed k ON k.job_id = m.job_id
                WHERE k.concurrency_key IS NULL
                RETURNING queue_name
            ), woken AS (
                \(notifyingQueues(of: "back"))
            ), admitted AS (
                -- A job with a concurrency key takes a free slot or waits in blocked.
                SELECT \(schema).concurrency_admit(array_agg(job_id)) AS n FROM keyed WHERE concurrency_key IS NOT NULL
            )
            SELECT (SELECT count(*) FROM moved) AS moved FROM woken, admitted
            """)
        return try rows[0].decode("moved", as: Int.self)
    }
}
