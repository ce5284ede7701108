import Foundation

/// Applies numbered migrations to one schema: each in its own transaction, under an advisory lock
/// so that several hosts migrating at once apply each migration once, and idempotently.
///
/// ```swift
/// let migrator = try Migrator(schema: "drover", migrations: DroverSchema.migrations)
/// let report = try migrator.migrate(on: db)
/// print(report.applied.map(\.name))
/// ```
public struct Migrator: Sendable {
    public let schema: SQLIdentifier
    public let migrations: [Migration]

    public struct Report: Sendable {
        /// Migrations applied by this run, in order.
        public let applied: [Migration]
        /// The highest version in the database after the run.
        public let currentVersion: Int
        /// The highest version this program knows.
        public let latestKnownVersion: Int
        /// Versions present in the database that this program does not know (a newer Drover migrated it).
        public let unknownVersions: [Int]
    }

    public struct Status: Sendable {
        public let appliedVersions: [Int]
        public let pending: [Migration]
        public let unknownVersions: [Int]
    }

    /// - Parameter schema: validated as a plain lowercase identifier (see ``SQLIdentifier/validated(_:what:)``).
    public init(schema: String, migrations: [Migration]) throws(DatabaseError) {
        self.schema = try SQLIdentifier.validated(schema, what: "schema name")
        let versions = migrations.map(\.version)
        precondition(versions == versions.sorted() && Set(versions).count == versions.count && versions.allSatisfy { $0 > 0 },
                     "migration versions must be positive, unique and ascending")
        self.migrations = migrations
    }

    private var table: SQLIdentifier { schema.qualifying("schema_migrations") }

    /// Applies the migrations the database lacks. Safe to run from several processes at once.
    @discardableResult
    public func migrate(on connection: Connection, progress: (Migration) -> Void = { _ in }) throws -> Report {
        try withMigrationLock(on: connection) {
            // Under the lock, so no other migrator is creating them at the same time.
            if try !bookkeepingTableExists(on: connection) {
                try connection.withTransaction { connection in
                    try connection.execute("CREATE SCHEMA IF NOT EXISTS \(schema)")
                    try connection.execute("""
                        CREATE TABLE \(table) (
                            version    integer PRIMARY KEY,
                            name       text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now()
                        )
                        """)
                    try connection.execute("COMMENT ON TABLE \(table) IS 'Migrations applied to this schema, by version.'")
                }
            }
            let status = try readStatus(on: connection)
            var applied: [Migration] = []
            for migration in status.pending {
                do {
                    try connection.withTransaction { connection in
                        try connection.execute("SELECT set_config('search_path', \(schema.quoted), true)")
                        try connection.execute(unsafeRawScript: migration.sql)
                        try connection.execute(
                            "INSERT INTO \(table) (version, name) VALUES (\(migration.version), \(migration.name))")
                    }
                } catch let error as DatabaseError {
                    var failed = error
                    failed.message = "migration \(migration.version) (\(migration.name)) on schema \(schema) failed "
                        + "and was rolled back: \(error.message)"
                    if error.code != .connectionLost { failed.code = .migrationFailed }
                    throw failed
                }
                applied.append(migration)
                progress(migration)
            }
            let current = (status.appliedVersions + applied.map(\.version)).max() ?? 0
            return Report(
                applied: applied, currentVersion: current,
                latestKnownVersion: migrations.last?.version ?? 0, unknownVersions: status.unknownVersions)
        }
    }

    /// What is applied and what is pending, without changing anything.
    public func status(on connection: Connection) throws(DatabaseError) -> Status {
        guard try bookkeepingTableExists(on: connection) else {
            return Status(appliedVersions: [], pending: migrations, unknownVersions: [])
        }
        return try readStatus(on: connection)
    }

    private func bookkeepingTableExists(on connection: Connection) throws(DatabaseError) -> Bool {
        try connection.query("SELECT to_regclass(\(table.quoted)) IS NOT NULL AS present")[0]
            .decode("present", as: Bool.self)
    }

    /// What is applied and what is pending in a SQLite database, without changing anything.
    public func status(on connection: SQLiteConnection) throws(DatabaseError) -> Status {
        let present = try !connection.query("""
            SELECT 1 FROM \(SQLIdentifier(schema.parts[0])).sqlite_master WHERE type = 'table' AND name = \(table.parts.last!)
            """).isEmpty
        guard present else { return Status(appliedVersions: [], pending: migrations, unknownVersions: []) }
        return try readStatus(on: connection)
    }

    private func readStatus(on connection: some SQLDatabase) throws(DatabaseError) -> Status {
        var applied: [Int] = []
        for row in try connection.fetch("SELECT version FROM \(table) ORDER BY version") {
            applied.append(try row.decode("version", as: Int.self))
        }
        let appliedSet = Set(applied)
        let known = Set(migrations.map(\.version))
        return Status(
            appliedVersions: applied,
            pending: migrations.filter { !appliedSet.contains($0.version) },
            unknownVersions: applied.filter { !known.contains($0) })
    }

    /// Holds a session-level advisory lock keyed by the schema name while `body` runs; another
    /// migrator of the same schema waits. The lock goes with the session if the connection dies.
    private func withMigrationLock<R>(on connection: Connection, _ body: () throws -> R) throws -> R {
        let key = "drover.migrate:\(schema.parts[0])"
        try connection.execute("SELECT pg_advisory_lock(hashtextextended(\(key), 0))")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(hashtextextended(\(key), 0))") }
        return try body()
    }
}

extension Migrator {
    /// Applies the pending migrations to a SQLite database, each in its own `BEGIN IMMEDIATE`
    /// transaction (SQLite's write lock keeps a second migrator out); `{schema}` in their SQL is the
    /// schema's quoted name. Running it again changes nothing.
    @discardableResult
    public func migrate(on connection: SQLiteConnection, progress: (Migration) -> Void = { _ in }) throws -> Report {
        try connection.execute(unsafeRawScript: """
            CREATE TABLE IF NOT EXISTS \(table.quoted) (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now') || '000+00')
            )
            """)
        var applied: [Migration] = []
        var known: [Int] = []
        for migration in migrations {
            let done: Bool = try connection.withTransaction { connection in
                // Read under the write lock: another migrator may just have applied it.
                let present = try !connection.query("SELECT 1 FROM \(table) WHERE version = \(migration.version)").isEmpty
                if present { return false }
                do {
                    try connection.execute(unsafeRawScript: migration.sql.replacingOccurrences(of: "{schema}", with: schema.quoted))
                } catch let error as DatabaseError {
                    var failed = error
                    failed.code = .migrationFailed
                    failed.message = "migration \(migration.version) (\(migration.name)) on \(connection.path) failed "
                        + "and was rolled back: \(error.message)"
                    throw failed
                }
                try connection.execute("INSERT INTO \(table) (version, name) VALUES (\(migration.version), \(migration.name))")
                return true
            }
            if done {
                applied.append(migration)
                progress(migration)
            }
        }
        for row in try connection.query("SELECT version FROM \(table) ORDER BY version") {
            known.append(try row.decode("version", as: Int.self))
        }
        let knownVersions = Set(migrations.map(\.version))
        return Report(
            applied: applied, currentVersion: known.max() ?? 0, latestKnownVersion: migrations.last?.version ?? 0,
            unknownVersions: known.filter { !knownVersions.contains($0) })
    }
}
