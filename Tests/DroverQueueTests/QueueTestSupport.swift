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

/// Checks the data model's invariant (see ``TestStore/invariantViolations()``).
func expectInvariant(_ store: PostgresJobStore, _ db: Connection, sourceLocation: SourceLocation = #_sourceLocation) throws {
    try BoundTestStore(store: store, database: db, backend: .postgresql) { try TestDatabase.connect() }
        .expectInvariant(sourceLocation: sourceLocation)
}

/// How many rows `table` of the store's schema has.
func count(_ store: PostgresJobStore, _ table: String, _ db: Connection, where condition: SQL = "true") throws -> Int {
    try db.query("SELECT count(*) AS n FROM \(store.schema.qualifying(table)) WHERE \(condition)")[0].decode("n", as: Int.self)
}

/// The state of job `id`.
func state(_ store: PostgresJobStore, _ id: Int, _ db: Connection) throws -> JobState? {
    try store.job(id, on: db)?.state
}


