import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation

/// The database a chaos run audits, whichever engine: a PostgreSQL schema of its own (dropped
/// afterwards), or a SQLite file in the run's directory.
final class ChaosDatabase {
    enum Engine: String { case postgresql = "PostgreSQL", sqlite = "SQLite" }

    let engine: Engine
    /// How `drover start` reaches it (a supervisor in a network namespace may be given another).
    let url: String
    /// The schema (PostgreSQL) or attached database (SQLite) of Drover's tables.
    let schemaName: String
    let schema: SQLIdentifier
    let admin: any QueueAdmin
    let db: any SQLDatabase
    private let cleanup: () -> Void

    private init(engine: Engine, url: String, schemaName: String, opened: (any QueueAdmin, any SQLDatabase, SQLIdentifier),
                 cleanup: @escaping () -> Void) {
        self.engine = engine
        self.url = url
        self.schemaName = schemaName
        (admin, db, schema) = opened
        self.cleanup = cleanup
    }

    deinit { cleanup() }

    /// A migrated schema of its own on `url` (else the test server).
    static func postgresql(url: String? = nil) throws -> ChaosDatabase {
        let url = try url ?? TestDatabase.url()
        let schemaName = TestDatabase.uniqueSchemaName()
        let opened = try open(PostgresDriver.self, url: url, schema: schemaName, lockTimeout: nil)
        let db = opened.1
        return ChaosDatabase(engine: .postgresql, url: url, schemaName: schemaName, opened: opened) {
            _ = try? db.fetch("DROP SCHEMA IF EXISTS \(SQLIdentifier(schemaName)) CASCADE")
        }
    }

    /// A migrated SQLite file in `directory`. The test's own connection waits up to 10 s for the
    /// write lock; it reads while Drover writes (WAL).
    static func sqlite(in directory: TemporaryDirectory) throws -> ChaosDatabase {
        let path = directory.url.appendingPathComponent("drover.sqlite3").path
        let url = "sqlite://" + path
        let opened = try open(SQLiteDriver.self, url: url, schema: DroverSchema.defaultName, lockTimeout: .seconds(10))
        return ChaosDatabase(engine: .sqlite, url: url, schemaName: DroverSchema.defaultName, opened: opened) {}
    }

    private static func open<Driver: StoreDriver>(
        _: Driver.Type, url: String, schema: String, lockTimeout: Duration?
    ) throws -> (any QueueAdmin, any SQLDatabase, SQLIdentifier) {
        let (store, db) = try Driver.open(url: url, options: StoreOptions(
            schema: schema, applicationName: "drover-chaos", lockTimeout: lockTimeout, migrating: .always))
        return (BoundQueue(store: store, database: db), db, store.schema)
    }

    /// The file of a SQLite database.
    var sqlitePath: String? { StoreFactory.sqlitePath(url) }

    func table(_ name: String) -> SQLIdentifier { schema.qualifying(name) }

    func query(_ sql: SQL) throws -> QueryResult { try db.fetch(sql) }

    func count(_ sql: SQL) throws -> Int { try db.fetch(sql)[0].decode("n", as: Int.self) }

    /// `drover start`'s options for this database, reached at `url` (else ``url``).
    func startArguments(url: String? = nil) -> [String] {
        ["--database-url", url ?? self.url] + (engine == .postgresql ? ["--schema", schemaName] : [])
    }
}

/// One `drover start` of a chaos run: its configuration file, a fake systemd notification socket,
/// Drover's test handlers, and optionally a wrapper (`ip netns exec …` for a host of its own) and
/// an environment of its own (libfaketime for a clock of its own).
final class ChaosSupervisor {
    /// The run's name for it ("A"), for messages.
    let label: String
    let listener: NotifyListener
    let configPath: String
    private let executable: String
    private let arguments: [String]
    private let environment: [String: String]
    private(set) var process: RunningProcess
    private var earlierLogs = ""

    /// `wrapper` is an argv prefix that ends by exec'ing the rest (so that the pid is drover's), or
    /// with `wrapperForks`, that runs it as its child (`faketime`): then ``pid`` is that child's.
    init(_ label: String, database: ChaosDatabase, url: String? = nil, config: String, directory: TemporaryDirectory,
         wrapper: [String] = [], wrapperForks: Bool = false, environment extra: [String: String?] = [:]) throws {
        self.label = label
        self.wrapperForks = wrapperForks
        listener = try NotifyListener()
        configPath = try directory.file(config, named: "drover-\(label).yml")
        var environment = ProcessInfo.processInfo.environment
        for key in ["DROVER_DATABASE_URL", "DROVER_CONFIG", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER",
                    "PGPASSWORD", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "STATE_DIRECTORY"] {
            environment[key] = nil
        }
        environment["DROVER_TEST_HANDLERS"] = "1"
        environment["NOTIFY_SOCKET"] = listener.path
        for (key, value) in extra { environment[key] = value }
        self.environment = environment
        let drover = DroverBinary.path
        guard FileManager.default.isExecutableFile(atPath: drover) else {
            throw ChaosFailure(description: "the drover binary is not at \(drover); build it (swift build) or set DROVER_BIN")
        }
        executable = wrapper.first ?? drover
        arguments = Array(wrapper.dropFirst()) + (wrapper.isEmpty ? [] : [drover])
            + ["start", "--config", configPath] + database.startArguments(url: url)
        process = try RunningProcess(executable: executable, arguments: arguments, environment: environment,
                                     in: directory.url.path)
        try findDrover()
    }

    private let wrapperForks: Bool
    private var droverPID: pid_t?

    /// With a wrapper that forks: waits for the drover it started.
    private func findDrover() throws {
        droverPID = nil
        guard wrapperForks else { return }
        try waitUntil("supervisor \(label): the wrapper started drover", timeout: .seconds(10)) {
            droverPID = ProcessTable.children(of: process.pid).first?.pid
            return droverPID != nil || !process.isRunning
        }
    }

    deinit {
        if process.isRunning { killAll(first: SIGKILL) }
        _ = try? process.wait(timeout: .seconds(10))
        if process.isRunning { kill(process.pid, SIGKILL) }
    }

    /// The `drover start` process.
    var pid: pid_t { droverPID ?? process.pid }

    /// The log of every `drover start` of this supervisor so far.
    var log: String { earlierLogs + process.stderrSoFar }

    /// Starts it again (after it was killed) with the same options.
    func startAgain() throws {
        earlierLogs += process.stderrSoFar
        process = try RunningProcess(executable: executable, arguments: arguments, environment: environment)
        try findDrover()
    }

    func rewriteConfig(_ config: String) throws {
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Waits for READY=1 number `after + 1` from the running `drover start` (a supervisor says it
    /// again whenever a replaced child has registered).
    @discardableResult
    func waitForReady(after: Int = 0, timeout: Duration = .seconds(60)) throws -> NotifyListener.Message {
        var found: NotifyListener.Message?
        try waitUntil("supervisor \(label): READY=1 (number \(after + 1))", timeout: timeout) {
            let readies = readyMessages
            found = readies.count > after ? readies[after] : nil
            return found != nil
        }
        return found!
    }

    private var readyMessages: [NotifyListener.Message] {
        let current = pid
        return listener.messages.filter { $0.pid == current && $0.fields["READY"] == "1" }
    }

    /// How many times the running `drover start` said READY=1 so far.
    var readyCount: Int { readyMessages.count }

    /// Whether it is running and had last told systemd READY=1.
    var isReady: Bool {
        let current = pid
        let last = listener.messages.last { message in
            message.pid == current && ["READY", "RELOADING", "STOPPING"].contains { message.fields[$0] == "1" }
        }
        return process.isRunning && last?.fields["READY"] == "1"
    }

    /// Its live worker processes (`drover _child worker`).
    func workerPIDs() -> [pid_t] {
        ProcessTable.children(of: pid).map(\.pid).filter { pid in
            FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map { $0.split(separator: 0).map(Array.init).suffix(2) }
                == [Array("_child".utf8), Array("worker".utf8)]
        }
    }

    /// Its children as the database has them.
    func registeredChildren(in database: ChaosDatabase) throws -> [ProcessSummary] {
        let processes = try database.admin.listProcesses()
        guard let me = processes.first(where: { $0.kind == .supervisor && $0.pid == Int(pid) }) else { return [] }
        return processes.filter { $0.supervisorID == me.id }
    }

    /// Every process it started, down to the commands of its workers' jobs.
    func descendants() -> [pid_t] {
        let all = ProcessTable.all()
        var found: [pid_t] = []
        var parents: Set<pid_t> = [pid]
        while true {
            let next = all.filter { parents.contains($0.parent) && !found.contains($0.pid) }.map(\.pid)
            if next.isEmpty { return found }
            found += next
            parents = Set(next)
        }
    }

    /// Stops the whole tree at once (SIGSTOP first, so that nobody notices the others die and
    /// cleans up after them), then sends `first` to all of it: a host that loses power.
    func killAll(first signal: Int32) {
        // A wrapper that forks (faketime) is left to notice its child's death and clean up after itself.
        let tree = [pid] + descendants()
        for member in tree { kill(member, SIGSTOP) }
        for member in tree.reversed() { kill(member, signal) }
        if signal != SIGKILL && signal != SIGSTOP { for member in tree { kill(member, SIGCONT) } }
    }

    /// Sends `signal` and waits for it to exit.
    func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(60)) throws -> DroverBinary.Outcome {
        kill(pid, signal)
        return try process.wait(timeout: timeout)
    }

    /// The log lines that contain every one of `words`.
    func logLines(containing words: String...) -> [Substring] {
        log.split(separator: "\n").filter { line in words.allSatisfy { line.contains($0) } }
    }
}

/// Something a chaos run needs is missing.
struct ChaosFailure: Error, CustomStringConvertible {
    let description: String
}

/// Wall-clock time as the audit files have it: CLOCK_REALTIME in nanoseconds.
func realtimeNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

extension Duration {
    var milliseconds: Double { seconds * 1000 }
}
