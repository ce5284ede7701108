import DroverPersistence

extension JobStore {
    /// Deletes jobs that finished more than `age` ago, `batchSize` at a time, each batch its own short
    /// transaction (rows another transaction holds are passed over, not waited for). Returns how many.
    @discardableResult
    public func clearFinished(olderThan age: Duration, batchSize: Int = 1000, on database: Driver.Database) throws -> Int {
        try inBatches(of: batchSize, on: database) { now in
            """
            WITH batch AS MATERIALIZED (
                SELECT id FROM \(jobs) WHERE finished_at < \(now.after(-age.seconds))
                ORDER BY finished_at LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked))
            DELETE FROM \(jobs) WHERE id IN (SELECT id FROM batch)
            """
        }
    }

    /// Deletes records of recurring runs older than `age`, except each task's latest (which says
    /// where its schedule stands), `batchSize` at a time. Returns how many.
    @discardableResult
    public func clearRecurringRuns(olderThan age: Duration, batchSize: Int = 1000, on database: Driver.Database) throws -> Int {
        try inBatches(of: batchSize, on: database) { now in
            """
            WITH batch AS MATERIALIZED (
                SELECT e.id FROM \(recurringExecutions) e
                WHERE e.run_at < \(now.after(-age.seconds))
                  AND e.run_at < (SELECT max(l.run_at) FROM \(recurringExecutions) l WHERE l.task_key = e.task_key)
                ORDER BY e.run_at LIMIT \(batchSize)\(driver.lockingRowsSkippingLocked))
            DELETE FROM \(recurringExecutions) WHERE id IN (SELECT id FROM batch)
            """
        }
    }

    /// Runs the deletion `statement` makes, each run its own transaction, until one deletes fewer
    /// than `batchSize` rows; returns how many it deleted in all.
    func inBatches(of batchSize: Int, on database: Driver.Database, _ statement: (Moment) -> SQL) throws -> Int {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        var total = 0
        while true {
            let now = self.now()
            let deleted = try database.inWriteTransaction { try database.change(statement(now)) }
            total += deleted
            if deleted < batchSize { return total }
        }
    }
}
