import DroverPersistence
import DroverQueue
import Foundation

/// A `drover start` under test: its own migrated schema, a configuration file, a fake systemd
/// notification socket, Drover's test handlers enabled, and the database to look at.
public final class SupervisorHarness {
    public let schema: String
    public let store: PostgresJobStore
    public let db: Connection
    public let listener: NotifyListener
    public let configPath: String
    public let directory: TemporaryDirectory
    /// The `database:` section written before the configuration, if the database is given there.
    private let databaseSection: String
    public private(set) var process: RunningProcess
    /// How `drover start` was started, to start it again.
    private let startArguments: [String]
    private let startEnvironment: [String: String?]

    /// Timings small enough for tests: heartbeats every 200 ms, dead after 1 s.
    public static let fastSupervisor = """
        supervisor:
          heartbeat_interval: 200ms
          alive_threshold: 1s
          shutdown_timeout: 2s
        """

    /// With `databaseInConfig`, the database URL and schema are written into the configuration file
    /// (as `database:`) instead of given on the command line.
    /// One worker on every queue with two threads, no dispatcher, fast timings.
    public static let oneWorker = """
        workers:
          - queues: ["*"]
            threads: 2
            polling_interval: 200ms
        dispatchers: []
        \(fastSupervisor)
        """

    ///
    /// `supervisorDatabaseURL` is the URL `drover start` gets when it is not the harness's own (another
    /// role's, say); `prepare` runs on the harness's connection once the schema exists, before the
    /// supervisor starts (to grant that role what it needs).
    public init(
        config: String, environment: [String: String?] = [:], migrate: Bool = true, databaseURL: String? = nil,
        databaseInConfig: Bool = false, launcher: [String] = [], supervisorDatabaseURL: String? = nil,
        prepare: (_ schema: String, _ db: Connection) throws -> Void = { _, _ in }
    ) throws {
        schema = TestDatabase.uniqueSchemaName()
        let harnessURL = try databaseURL ?? TestDatabase.url()
        (store, db) = try PostgresDriver.open(
            url: harnessURL, options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: migrate ? .always : .never))
        try prepare(schema, db)
        let url = supervisorDatabaseURL ?? harnessURL
        listener = try NotifyListener()
        directory = try TemporaryDirectory("drover-sup")
        databaseSection = databaseInConfig ? "database:\n  url: \"\(url)\"\n  schema: \(schema)\n" : ""
        configPath = try directory.file(databaseSection + config)
        var env: [String: String?] = ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": listener.path]
        for (key, value) in environment { env[key] = value }
        let databaseFlags = databaseInConfig ? [] : ["--database-url", url, "--schema", schema]
        startArguments = ["start", "--config", configPath] + databaseFlags
        startEnvironment = env
        self.launcher = launcher
        process = try DroverBinary.start(startArguments, environment: env, launcher: launcher)
    }

    /// Starts another `drover start` like the first (after the last one was killed, say); it becomes
    /// `process`.
    public func startAgain() throws {
        earlierLogs += process.stderrSoFar
        process = try DroverBinary.start(startArguments, environment: startEnvironment, launcher: launcher)
    }

    /// What `drover start` runs under (see ``DroverBinary/start(_:environment:clearDatabaseEnvironment:in:launcher:)``).
    private let launcher: [String]

    /// The logs of the supervisors `startAgain` replaced.
    private var earlierLogs = ""

    deinit {
        // Whatever a test left running goes, children first (they have process groups of their own).
        for child in ProcessTable.children(of: process.pid) { kill(child.pid, SIGKILL) }
        kill(process.pid, SIGKILL)
        _ = try? process.wait(timeout: .seconds(10))
        // Bounded: a backend a test left frozen or locked must not hold up the whole run.
        _ = try? db.execute("SET lock_timeout = '20s'")
        _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE")
    }

    public var pid: pid_t { process.pid }
    /// The log of every supervisor started so far.
    public var log: String { earlierLogs + process.stderrSoFar }

    /// Replaces the configuration file (for SIGHUP).
    public func rewriteConfig(_ config: String) throws { try directory.file(databaseSection + config) }

    /// Replaces the whole configuration file, database section included.
    public func rewriteWholeConfig(_ config: String) throws { try directory.file(config) }

    /// Waits for READY=1 from the supervisor and returns it.
    @discardableResult
    public func waitForReady(after: Int = 0, timeout: Duration = .seconds(30)) throws -> NotifyListener.Message {
        // Counted over every message received, each time: the listener's predicate sees them all
        // again on every look, so a counter kept across looks would run ahead.
        var found: NotifyListener.Message?
        try waitUntil("READY=1 (number \(after + 1))", timeout: timeout) {
            let ready = listener.messages.filter { $0.fields["READY"] == "1" }
            found = ready.count > after ? ready[after] : nil
            return found != nil
        }
        return found!
    }

    /// The supervisor's children as the database has them.
    public func registeredChildren() throws -> [ProcessSummary] {
        let supervisorID = try db.query("""
            SELECT id FROM \(store.schema.qualifying("processes")) WHERE kind = 'supervisor' AND pid = \(Int(pid))
            """).first?.decode("id", as: Int.self)
        return try store.listProcesses(on: db).filter { $0.supervisorID == supervisorID && supervisorID != nil }
    }

    /// The supervisor's live children as /proc has them.
    public func childPIDs() -> [pid_t] { ProcessTable.children(of: pid).map(\.pid).sorted() }

    /// Enqueues `count` jobs of `className` with `arguments`.
    @discardableResult
    public func enqueue(_ className: String, arguments: String = "{}", count: Int = 1, maxAttempts: Int = 5) throws -> [Int] {
        try store.enqueue((0..<count).map { _ in
            NewJob(className, arguments: try! JSON(validating: arguments), maxAttempts: maxAttempts)
        }, on: db)
    }

    public func state(_ id: Int) throws -> JobInfo? { try store.job(id, on: db) }

    /// Waits until every job of `ids` is finished.
    public func waitUntilFinished(_ ids: [Int], timeout: Duration = .seconds(60)) throws {
        try waitUntil("\(ids.count) jobs finished", timeout: timeout) {
            try db.query("""
                SELECT count(*) AS n FROM \(store.schema.qualifying("jobs")) WHERE id = ANY(\(ids)) AND finished_at IS NOT NULL
                """)[0].decode("n", as: Int.self) == ids.count
        }
    }

    /// Sends `signal` to the supervisor and waits for it to exit.
    public func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) throws -> DroverBinary.Outcome {
        kill(pid, signal)
        return try process.wait(timeout: timeout)
    }
}
