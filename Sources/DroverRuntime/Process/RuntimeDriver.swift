import DroverPersistence
import DroverQueue
import Foundation

/// A store driver the runtime's processes can run on: how they make its schema ready and learn
/// that jobs are waiting. ``PostgresDriver`` and ``SQLiteDriver``; the stores themselves come from
/// ``StoreFactory``.
protocol RuntimeDriver: StoreDriver {
    /// Whether a supervisor that cannot reach the database at its start waits for it (a server
    /// that is restarting) rather than stopping (a SQLite file that cannot be opened will not heal).
    static var waitsForDatabase: Bool { get }

    /// Makes the schema ready at a supervisor's start, and returns the migrations still pending.
    /// PostgreSQL's is only checked (the operator runs `drover migrate`); SQLite's file is
    /// migrated in place, since nothing else shares it.
    func prepareSchema(of store: JobStore<Self>, on database: Database, log: Log) throws -> [Int]

    /// How a worker taking jobs from `queues` learns that some may be waiting.
    func wakeSource(
        of store: JobStore<Self>, session: DatabaseSession<Database>, url: String, queues: QueueSelection
    ) throws -> any WakeSource
}

extension RuntimeDriver {
    /// Opens the database of `url` for a runtime process called `applicationName`; a statement
    /// that waits for a lock longer than `lockTimeout` fails (and is tried again by its caller),
    /// and `timeouts` bound how long a dead path or a hung statement can hold the process.
    static func openForRuntime(
        url: String, password: String? = nil, schema: String, applicationName: String, lockTimeout: Duration,
        timeouts: RuntimeTimeouts
    ) throws -> Database {
        var options = StoreOptions(schema: schema, applicationName: applicationName, lockTimeout: lockTimeout, tunedForRuntime: true)
        options.password = password
        options.networkTimeout = timeouts.network
        options.statementTimeout = timeouts.statement
        options.connectAttemptTimeout = timeouts.connectAttempt
        return try connect(url: url, options: options)
    }
}

extension PostgresDriver: RuntimeDriver {
    static var waitsForDatabase: Bool { true }

    func prepareSchema(of store: JobStore<Self>, on database: Connection, log: Log) throws -> [Int] {
        try store.migrationStatus(on: database).pending.map(\.version)
    }

    func wakeSource(
        of store: JobStore<Self>, session: DatabaseSession<Connection>, url: String, queues: QueueSelection
    ) throws -> any WakeSource {
        NotificationWakeSource(session: session, channel: store.wakeChannel, queues: queues)
    }
}

extension SQLiteDriver: RuntimeDriver {
    static var waitsForDatabase: Bool { false }

    func prepareSchema(of store: JobStore<Self>, on database: SQLiteConnection, log: Log) throws -> [Int] {
        let deadline = ContinuousClock.now + .seconds(120)
        while true {
            do {
                try store.migrate(on: database) { migration in
                    log.info("migrated the SQLite database", [("version", String(migration.version)), ("file", database.path)])
                }
                return []
            } catch let error as DatabaseError where error.code == .lockNotAvailable && ContinuousClock.now < deadline {
                // Another supervisor is migrating the same file: its lock is about to be released.
                continue
            }
        }
    }

    func wakeSource(
        of store: JobStore<Self>, session: DatabaseSession<SQLiteConnection>, url: String, queues: QueueSelection
    ) throws -> any WakeSource {
        guard let path = StoreFactory.sqlitePath(url) else { throw ValidationFailure("\(url) is not a sqlite: URL") }
        return try WakeFileSource(path: path + "-wake")
    }
}

/// How long a runtime connection waits on a dead network path, and on a statement.
struct RuntimeTimeouts {
    var network: Duration
    var statement: Duration
    /// One attempt to connect: at most `network`, and at most half a heartbeat interval (at least
    /// 250 ms), so that a process trying to reach a database that went away still fences, gives
    /// signs of life, and notices at once when the path is back.
    var connectAttempt: Duration

    init(network: Duration, statement: Duration, heartbeatInterval: Duration) {
        self.network = network
        self.statement = statement
        connectAttempt = min(network, max(.milliseconds(250), heartbeatInterval / 2))
    }

    /// How long a runtime statement waits for a lock (PostgreSQL's `lock_timeout`, SQLite's busy
    /// timeout): half a heartbeat interval, at least 1 s, so that a lock held for a moment never
    /// fails a heartbeat; but at most half of what the lease leaves before fencing, so that a
    /// process waiting for a lock still fences (and gives signs of life) in time.
    static func lockTimeout(heartbeatInterval: Duration, aliveThreshold: Duration) -> Duration {
        min(max(.seconds(1), heartbeatInterval / 2), max(.milliseconds(100), (aliveThreshold - heartbeatInterval) / 2))
    }
}
