import DroverPersistence

extension JobStore {
    /// Deletes jobs that finished more than `age` ago, `batchSize` at a time, each batch its own short
    /// transaction (rows another transaction holds are skipped, not waited for). Returns how many.
    @discardableResult
    public func clearFinished(olderThan age: Duration, batchSize: Int = 1000, on connection: Connection) throws(DatabaseError) -> Int {
        precondition(batchSize > 0)
        var total = 0
        while true {
            let deleted = try connection.execute("""
                DELETE FROM \(jobs) WHERE id IN (
                    SELECT id FROM \(jobs)
                    WHERE finished_at < now() - make_interval(secs => \(age.seconds))
                    ORDER BY finished_at
                    LIMIT \(batchSize)
                    FOR UPDATE SKIP LOCKED
                )
                """)
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}

extension JobStore {
    /// Deletes records of recurring runs older than `age`, except each task's latest (which says
    /// where its schedule stands), `batchSize` at a time. Returns how many.
    @discardableResult
    public func clearRecurringRuns(olderThan age: Duration, batchSize: Int = 1000, on connection: Connection) throws(DatabaseError) -> Int {
        precondition(batchSize > 0)
        var total = 0
        while true {
            let deleted = try connection.execute("""
                DELETE FROM \(recurringExecutions) WHERE id IN (
                    SELECT e.id FROM \(recurringExecutions) e
                    WHERE e.run_at < now() - make_interval(secs => \(age.seconds))
                      AND e.run_at < (SELECT max(l.run_at) FROM \(recurringExecutions) l WHERE l.task_key = e.task_key)
                    ORDER BY e.run_at
                    LIMIT \(batchSize)
                    FOR UPDATE SKIP LOCKED
                )
                """)
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}
