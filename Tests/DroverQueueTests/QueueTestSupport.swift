import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// A migrated schema of its own and a store over it.
func withStore<R>(
    retryPolicy: RetryPolicy = RetryPolicy(), preserveFinishedJobs: Bool = true,
    _ body: (PostgresJobStore, Connection) throws -> R
) throws -> R {
    try TestDatabase.withSchema { schema, db in
        let store = try PostgresJobStore(schema: schema, retryPolicy: retryPolicy, preserveFinishedJobs: preserveFinishedJobs)
        return try body(store, db)
    }
}

/// Checks DESIGN.md §3's invariant over every job: a live job has exactly one execution row, a
/// finished job none; `failed_at` is set exactly when the job is in failed_executions.
func expectInvariant(_ store: PostgresJobStore, _ db: Connection, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let schema = store.schema.parts[0]
    func t(_ name: String) -> SQLIdentifier { SQLIdentifier(schema, name) }
    let violations = try db.query("""
        SELECT j.id, j.finished_at IS NOT NULL AS finished, j.failed_at IS NOT NULL AS marked_failed,
               (SELECT count(*) FROM \(t("ready_executions")) x WHERE x.job_id = j.id)
             + (SELECT count(*) FROM \(t("claimed_executions")) x WHERE x.job_id = j.id)
             + (SELECT count(*) FROM \(t("scheduled_executions")) x WHERE x.job_id = j.id)
             + (SELECT count(*) FROM \(t("blocked_executions")) x WHERE x.job_id = j.id)
             + (SELECT count(*) FROM \(t("failed_executions")) x WHERE x.job_id = j.id) AS executions,
               EXISTS (SELECT 1 FROM \(t("failed_executions")) x WHERE x.job_id = j.id) AS in_failed
        FROM \(t("jobs")) j
        """).filter { row in
            let finished = try row.decode("finished", as: Bool.self)
            let executions = try row.decode("executions", as: Int.self)
            let consistentFailure = try row.decode("marked_failed", as: Bool.self) == row.decode("in_failed", as: Bool.self)
            return (finished ? executions != 0 : executions != 1) || !consistentFailure
        }
    let ids = try violations.map { try $0.decode("id", as: Int.self) }
    #expect(ids.isEmpty, "jobs breaking the one-execution-row invariant: \(ids)", sourceLocation: sourceLocation)
    // Concurrency: every key's free slots are its limit less the jobs holding one (ready or claimed).
    let keys = try store.concurrencyKeys(on: db)
    let miscounted = try db.query("SELECT key, value FROM \(t("semaphores"))").compactMap { row -> String? in
        let key = try row.decode("key", as: String.self)
        let value = try row.decode("value", as: Int.self)
        guard let info = keys.first(where: { $0.key == key }) else { return nil }
        return info.holding > info.maxRunning || value != info.maxRunning - info.holding ? "\(key): \(value) free, \(info.holding) holding" : nil
    }
    #expect(miscounted.isEmpty, "semaphores out of step with their jobs: \(miscounted)", sourceLocation: sourceLocation)
}

/// How many rows `table` of the store's schema has.
func count(_ store: PostgresJobStore, _ table: String, _ db: Connection, where condition: SQL = "true") throws -> Int {
    try db.query("SELECT count(*) AS n FROM \(store.schema.qualifying(table)) WHERE \(condition)")[0].decode("n", as: Int.self)
}

/// The state of job `id`.
func state(_ store: PostgresJobStore, _ id: Int, _ db: Connection) throws -> JobState? {
    try store.job(id, on: db)?.state
}

extension JSON {
    static func object(_ text: String) -> JSON { try! JSON(validating: text) }
}
