import DroverPersistence
import DroverQueue
import Foundation

/// A queue store the runtime's processes can run on: how they open its database, make its schema
/// ready and learn that jobs are waiting. ``JobStore`` (PostgreSQL) and ``SQLiteJobStore``.
protocol RuntimeStore: QueueStore {
    init(schema: String, preserveFinishedJobs: Bool) throws

    /// Opens a connection for the process `applicationName`; a statement that waits for a lock
    /// longer than `lockTimeout` fails (and is tried again by its caller).
    static func openDatabase(url: String, schema: String, applicationName: String, lockTimeout: Duration) throws -> Database

    /// Whether a supervisor that cannot reach the database at its start waits for it (a server
    /// that is restarting) rather than stopping (a SQLite file that cannot be opened will not heal).
    static var waitsForDatabase: Bool { get }

    /// Makes the schema ready at a supervisor's start, and returns the migrations still pending.
    /// PostgreSQL's is only checked (the operator runs `drover migrate`); SQLite's file is
    /// migrated in place, since nothing else shares it.
    func prepareSchema(on database: Database, log: Log) throws -> [Int]

    /// How a worker taking jobs from `queues` learns that some may be waiting.
    func wakeSource(session: DatabaseSession<Database>, url: String, queues: QueueSelection) throws -> any WakeSource

    /// Vacuums the tables claims walk when their dead rows reach `minimumDeadRows`; returns the
    /// tables vacuumed. (SQLite reuses freed pages; it has nothing to do.)
    func vacuumHotTables(minimumDeadRows: Int, on database: Database) throws -> [VacuumedTable]
}

extension JobStore: RuntimeStore {
    init(schema: String, preserveFinishedJobs: Bool) throws {
        try self.init(schema: schema, retryPolicy: RetryPolicy(), preserveFinishedJobs: preserveFinishedJobs)
    }

    static func openDatabase(url: String, schema: String, applicationName: String, lockTimeout: Duration) throws -> Connection {
        let connection = try Connection(url, applicationName: applicationName)
        // Kept across reconnects: without it a heartbeat behind a held row lock would wait forever.
        try connection.setSessionSetting("lock_timeout", to: "\(lockTimeout.wholeMilliseconds)ms")
        for (name, value) in JobStore.plannerSettings { try connection.setSessionSetting(name, to: value) }
        return connection
    }

    static var waitsForDatabase: Bool { true }

    func prepareSchema(on database: Connection, log: Log) throws -> [Int] {
        try DroverSchema.migrator(schema: schema.parts[0]).status(on: database).pending.map(\.version)
    }

    func wakeSource(session: DatabaseSession<Connection>, url: String, queues: QueueSelection) throws -> any WakeSource {
        NotificationWakeSource(session: session, channel: wakeChannel, queues: queues)
    }
}

extension SQLiteJobStore: RuntimeStore {
    init(schema: String, preserveFinishedJobs: Bool) throws {
        try self.init(schema: schema, retryPolicy: RetryPolicy(), preserveFinishedJobs: preserveFinishedJobs)
    }

    static func openDatabase(url: String, schema: String, applicationName: String, lockTimeout: Duration) throws -> SQLiteConnection {
        guard let path = DatabaseLocation.sqlitePath(url) else {
            throw DatabaseError(.invalidConnectionString, "\(url) is not a sqlite:// URL; write sqlite:///absolute/path/drover.sqlite3")
        }
        return try SQLiteConnection(path: path, schema: schema, busyTimeout: lockTimeout)
    }

    static var waitsForDatabase: Bool { false }

    func prepareSchema(on database: SQLiteConnection, log: Log) throws -> [Int] {
        try Migrator(schema: schema.parts[0], migrations: DroverSchema.sqliteMigrations).migrate(on: database) { migration in
            log.info("migrated the SQLite database", [("version", String(migration.version)), ("file", database.path)])
        }
        return []
    }

    func wakeSource(session: DatabaseSession<SQLiteConnection>, url: String, queues: QueueSelection) throws -> any WakeSource {
        guard let path = DatabaseLocation.sqlitePath(url) else { throw ValidationFailure("\(url) is not a sqlite:// URL") }
        return try WakeFileSource(path: path + "-wake")
    }

    func vacuumHotTables(minimumDeadRows: Int, on database: SQLiteConnection) throws -> [VacuumedTable] { [] }
}
