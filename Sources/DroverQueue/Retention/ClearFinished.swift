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
