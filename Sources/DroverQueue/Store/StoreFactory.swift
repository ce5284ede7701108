import DroverPersistence
import Foundation

/// How to open Drover's store: the schema, the store's policies, and what the connection is for.
public struct StoreOptions: Sendable {
    /// Whether opening creates or completes Drover's tables.
    public enum Migrating: Sendable, Equatable {
        /// A SQLite file is migrated (it belongs to the host that opens it); a PostgreSQL schema
        /// is the operator's, migrated by `drover migrate`.
        case sqliteOnly
        /// Every backend (`drover migrate`, the tests).
        case always
        /// None (a supervisor's children: their supervisor did it).
        case never
    }

    public var schema: String
    public var preserveFinishedJobs: Bool
    public var retryPolicy: RetryPolicy
    public var clock: StoreClock
    /// How the connection names itself (PostgreSQL's `application_name`).
    public var applicationName: String
    /// A statement that waits longer than this for a lock fails (PostgreSQL's `lock_timeout`,
    /// SQLite's busy timeout); nil: no limit on PostgreSQL, 5 s on SQLite.
    public var lockTimeout: Duration?
    /// The connection of a runtime process: PostgreSQL keeps to the claim indexes and to one
    /// generic plan per statement (``PostgresDriver/plannerSettings``).
    public var tunedForRuntime: Bool
    public var migrating: Migrating
    /// PostgreSQL: how long a dead network path may go unnoticed (TCP keepalives and
    /// `tcp_user_timeout`, unless the URL sets them); nil: the system's (hours).
    public var networkTimeout: Duration?
    /// PostgreSQL's `statement_timeout` for the session; nil: none.
    public var statementTimeout: Duration?
    /// PostgreSQL: the longest one attempt to connect or reconnect may take, to the millisecond;
    /// nil: libpq's `connect_timeout` (whole seconds).
    public var connectAttemptTimeout: Duration?
    /// PostgreSQL: the password when the URL gives none, as `PGPASSWORD` would give it (a
    /// supervisor's children get its `PGPASSWORD` this way, not in their environment). Unlike
    /// `PGPASSWORD`, it also wins over a password in a service file. Never in a message.
    public var password: String?

    public init(
        schema: String = DroverSchema.defaultName, preserveFinishedJobs: Bool = true, retryPolicy: RetryPolicy = RetryPolicy(),
        clock: StoreClock = .database, applicationName: String = "drover", lockTimeout: Duration? = nil,
        tunedForRuntime: Bool = false, migrating: Migrating = .sqliteOnly
    ) {
        self.schema = schema
        self.preserveFinishedJobs = preserveFinishedJobs
        self.retryPolicy = retryPolicy
        self.clock = clock
        self.applicationName = applicationName
        self.lockTimeout = lockTimeout
        self.tunedForRuntime = tunedForRuntime
        self.migrating = migrating
    }
}

/// The one way Drover opens a store from a database URL: the runtime's processes, every command,
/// the Swift API, `drover bench` and the tests all come here.
///
/// A URL is SQLite's when it starts with `sqlite:` (`sqlite:///var/lib/drover/drover.sqlite3`, or
/// `sqlite:relative/path` from the working directory), PostgreSQL's otherwise (`postgresql://…`,
/// libpq `key=value` pairs, or empty for libpq's defaults).
///
/// ```swift
/// let driver = StoreFactory.driver(for: url)           // any StoreDriver.Type
/// func run<D: StoreDriver>(_: D.Type) throws {
///     let (store, db) = try D.open(url: url, options: StoreOptions())
///     _ = try store.enqueue([NewJob("Ping")], on: db)
/// }
/// try run(driver)
/// ```
public enum StoreFactory {
    /// The driver for `url`'s engine.
    public static func driver(for url: String) -> any StoreDriver.Type {
        sqlitePath(url) == nil ? PostgresDriver.self : SQLiteDriver.self
    }

    /// The file of a `sqlite:` URL, made absolute so that every process finds the same file
    /// whatever its working directory; nil for any other URL.
    public static func sqlitePath(_ url: String) -> String? {
        guard url.hasPrefix("sqlite:") else { return nil }
        var path = String(url.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path.removeFirst(2) }
        guard !path.isEmpty else { return nil }
        if !path.hasPrefix("/") { path = FileManager.default.currentDirectoryPath + "/" + path }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// `queue` bound to the store of `url`, whichever engine it is: what the management commands use.
    public static func openAdmin(url: String, options: StoreOptions) throws -> any QueueAdmin {
        try openAdmin(driver(for: url), url: url, options: options)
    }

    private static func openAdmin<D: StoreDriver>(_: D.Type, url: String, options: StoreOptions) throws -> any QueueAdmin {
        let (store, database) = try D.open(url: url, options: options)
        return BoundQueue(store: store, database: database)
    }
}

/// How long opening a store waits for another process's migration of the same database.
let migrationWait = Duration.seconds(120)

extension StoreDriver {
    /// Connects to `url` and returns the store on it, migrated as `options` ask.
    public static func open(url: String, options: StoreOptions) throws -> (store: JobStore<Self>, database: Database) {
        let database = try connect(url: url, options: options)
        let store = try JobStore<Self>(
            schema: options.schema, retryPolicy: options.retryPolicy, preserveFinishedJobs: options.preserveFinishedJobs,
            clock: options.clock)
        switch options.migrating {
        case .always, .sqliteOnly where Database.self == SQLiteConnection.self:
            // Another process may be migrating the same file (two supervisors started together):
            // its lock is about to be released, so wait for it, as for any other write.
            let deadline = ContinuousClock.now + migrationWait
            while true {
                do {
                    try store.migrate(on: database)
                    break
                } catch let error as DatabaseError where error.code == .lockNotAvailable && ContinuousClock.now < deadline {
                    continue
                }
            }
        default:
            break
        }
        return (store, database)
    }
}

extension PostgresDriver {
    /// libpq settings that notice a dead path within about `timeout`: a request unacknowledged
    /// for `timeout` fails (`tcp_user_timeout`), and an idle connection is probed after half of
    /// it (keepalives, whole seconds, at least 1). Connecting gives up after it too. A URL that
    /// sets any of them wins.
    public static func keepaliveSettings(_ timeout: Duration) -> [(String, String)] {
        let seconds = max(1, Int(timeout.seconds / 2))
        return [
            ("keepalives", "1"), ("keepalives_idle", String(seconds)), ("keepalives_interval", String(max(1, seconds / 2))),
            ("keepalives_count", "3"), ("tcp_user_timeout", String(max(1, timeout.wholeMilliseconds))),
            ("connect_timeout", String(max(2, Int(timeout.seconds.rounded(.up))))),
        ]
    }

    public static func connect(url: String, options: StoreOptions) throws -> Connection {
        var defaults = options.networkTimeout.map(keepaliveSettings) ?? []
        if let password = options.password, !password.isEmpty { defaults.append(("password", password)) }
        let connection = try Connection(url, applicationName: options.applicationName, defaults: defaults,
                                        attemptTimeout: options.connectAttemptTimeout)
        // Kept across reconnects: without it a heartbeat behind a held row lock would wait forever.
        if let lockTimeout = options.lockTimeout {
            try connection.setSessionSetting("lock_timeout", to: "\(max(1, lockTimeout.wholeMilliseconds))ms")
        }
        if let statementTimeout = options.statementTimeout {
            try connection.setSessionSetting("statement_timeout", to: "\(max(1, statementTimeout.wholeMilliseconds))ms")
        }
        if options.tunedForRuntime {
            for (name, value) in plannerSettings { try connection.setSessionSetting(name, to: value) }
        } else {
            // Drover's statements are short: compiling one costs more than it saves. A statement
            // whose estimate passes jit_above_cost (counting failed jobs by queue at a million jobs,
            // say) spent 30 to 40 ms of each /metrics scrape compiling itself.
            try connection.setSessionSetting("jit", to: "off")
        }
        return connection
    }
}

extension SQLiteDriver {
    public static func connect(url: String, options: StoreOptions) throws -> SQLiteConnection {
        guard let path = StoreFactory.sqlitePath(url) else {
            throw DatabaseError(.invalidConnectionString,
                                "\(Connection.redacted(url)) is not a sqlite: URL; write sqlite:///absolute/path/drover.sqlite3")
        }
        return try SQLiteConnection(path: path, schema: options.schema, busyTimeout: options.lockTimeout ?? .seconds(5))
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var wholeMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
