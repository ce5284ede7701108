import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover migrate` and `drover version`, run as real processes against the test PostgreSQL.
@Suite("drover migrate")
struct MigrateCommandTests {
    private func appliedVersions(_ schema: String) throws -> [Int] {
        try TestDatabase.connect()
            .query("SELECT version FROM \(SQLIdentifier(schema, "schema_migrations")) ORDER BY version")
            .map { try $0.decode("version", as: Int.self) }
    }

    private func dropping<R>(_ schema: String, _ body: () throws -> R) throws -> R {
        defer { _ = try? TestDatabase.connect().execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        return try body()
    }

    @Test("migrate creates the schema; the second run is a no-op")
    func migrateTwice() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let url = try TestDatabase.url()
        try dropping(schema) {
            let first = try DroverBinary.run(["migrate", "--database-url", url, "--schema", schema])
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout.contains("applied migration 1 (data_model)"))
            #expect(first.stdout.contains("schema \"\(schema)\" is now at version \(DroverSchema.latestVersion)"))

            let second = try DroverBinary.run(["migrate", "--database-url", url, "--schema", schema])
            #expect(second.status == 0, "\(second)")
            #expect(!second.stdout.contains("applied migration"))
            #expect(second.stdout.contains("is up to date at version \(DroverSchema.latestVersion)"))
            #expect(try appliedVersions(schema) == DroverSchema.migrations.map(\.version))

            let status = try DroverBinary.run(["migrate", "--status", "--database-url", url, "--schema", schema])
            #expect(status.status == 0)
            #expect(status.stdout.contains("1\tdata_model\tapplied"))
        }
    }

    @Test("two drover migrate started at once both succeed and apply each migration once")
    func twoAtOnce() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let url = try TestDatabase.url()
        try dropping(schema) {
            let a = try DroverBinary.start(["migrate", "--database-url", url, "--schema", schema])
            let b = try DroverBinary.start(["migrate", "--database-url", url, "--schema", schema])
            let outcomes = [try a.wait(), try b.wait()]
            for outcome in outcomes { #expect(outcome.status == 0, "\(outcome)") }
            let applyCount = outcomes.map { $0.stdout.components(separatedBy: "applied migration 1 ").count - 1 }.reduce(0, +)
            #expect(applyCount == 1, "exactly one of them applied migration 1")
            #expect(try appliedVersions(schema) == DroverSchema.migrations.map(\.version))
        }
    }

    @Test("bad arguments exit 64 and say what to type instead", arguments: [
        (["migarte"], "unknown command 'migarte'. Did you mean 'drover migrate'?"),
        (["frobnicate"], "unknown command 'frobnicate'. The commands are: start, check, migrate, enqueue, jobs, failed, queues, classes, recurring, concurrency, rate-limits, batches, processes, status, web, version, bench."),
        (["migrate", "--bogus"], "Unknown option '--bogus'"),
        (["migrate", "--schema", "Bad-Name"], "lowercase letters"),
        (["migrate", "--database-url", ""], "--database-url is empty"),
        (["migrate", "--database-url"], "Missing value for '--database-url <url>'"),
        (["version", "extra"], "Unexpected argument 'extra'"),
    ])
    func badArguments(_ arguments: [String], _ expected: String) throws {
        let outcome = try DroverBinary.run(arguments)
        #expect(outcome.status == 64, "\(outcome)")
        #expect(outcome.stderr.contains(expected), "\(outcome)")
        #expect(outcome.stderr.contains("--help") || outcome.stderr.contains("Usage:"), "\(outcome)")
    }

    @Test("an unreachable database exits 69 with a distinct message for each cause, never the password")
    func unavailableDatabase() throws {
        let probe = try TestDatabase.connect()
        let (host, port, database) = (probe.target.host, probe.target.port, probe.target.database)
        try TestDatabase.ensurePasswordRole()
        let secret = "Wr0ng-Pa55word"
        let cases: [(url: String, says: String)] = [
            ("postgresql://drover_password_test:\(secret)@/\(database)?host=\(host)&port=\(port)", "refused the credentials"),
            ("postgresql://nobody:\(secret)@127.0.0.1:1/\(database)", "check that PostgreSQL is running"),
            ("postgresql://root:\(secret)@/drover_missing_db?host=\(host)&port=\(port)", "the database does not exist"),
        ]
        var messages: Set<String> = []
        for (url, says) in cases {
            let outcome = try DroverBinary.run(["migrate", "--database-url", url])
            #expect(outcome.status == 69, "\(outcome)")
            #expect(outcome.stderr.contains(says), "\(outcome)")
            #expect(outcome.stderr.contains("(the database came from --database-url)"))
            #expect(!outcome.stderr.contains(secret) && !outcome.stdout.contains(secret), "the password leaked: \(outcome)")
            messages.insert(outcome.stderr)
        }
        #expect(messages.count == cases.count)
    }

    @Test("a malformed URL is a usage error on the command line and a configuration error in the environment")
    func malformedURL() throws {
        let url = "postgresql://user:Sup3r-Secret-pw@host:port/db"
        let flag = try DroverBinary.run(["migrate", "--database-url", url])
        #expect(flag.status == 64, "\(flag)")
        #expect(flag.stderr.contains("not valid"))
        #expect(!flag.stderr.contains("Sup3r-Secret-pw"))
        let env = try DroverBinary.run(["migrate"], environment: ["DROVER_DATABASE_URL": url])
        #expect(env.status == 78, "\(env)")
        #expect(env.stderr.contains("(the database came from DROVER_DATABASE_URL)"))
    }

    @Test("version prints the release and the schema version, as text or JSON")
    func version() throws {
        let text = try DroverBinary.run(["version"])
        #expect(text.status == 0)
        #expect(text.stdout == "drover 0.1.0 (schema version \(DroverSchema.latestVersion))\n")
        let json = try DroverBinary.run(["version", "--json"])
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(decoded?["version"] as? String == "0.1.0")
        #expect(decoded?["schema_version"] as? Int == DroverSchema.latestVersion)
        let flag = try DroverBinary.run(["--version"])
        #expect(flag.stdout == "0.1.0\n")
        let help = try DroverBinary.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("migrate") && help.stdout.contains("version"))
    }

    @Test("on a SQLite file: migrate creates and migrates it, --status lists its migrations, and a second run changes nothing")
    func sqliteFile() throws {
        let directory = try TemporaryDirectory("drover-migrate")
        let url = "sqlite://" + directory.url.appendingPathComponent("q.sqlite3").path
        let first = try DroverBinary.run(["migrate", "--database-url", url])
        #expect(first.status == 0 && first.stdout.contains("applied migration 1 (data_model)"), "\(first)")
        let second = try DroverBinary.run(["migrate", "--database-url", url])
        #expect(second.status == 0 && second.stdout.contains("is up to date at version"), "\(second)")
        let status = try DroverBinary.run(["migrate", "--status", "--database-url", url])
        #expect(status.status == 0 && status.stdout.contains("1\tdata_model\tapplied"), "\(status)")
    }

    @Test("migrate --to moves a SQLite file's live jobs and run-time tasks to PostgreSQL, not while Drover runs on it, nothing lost")
    func moveToPostgres() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let pgURL = try TestDatabase.url()
        let directory = try TemporaryDirectory("drover-move")
        let path = directory.url.appendingPathComponent("q.sqlite3").path
        try dropping(schema) {
            let (source, sqlite) = try SQLiteDriver.open(url: "sqlite://" + path, options: StoreOptions(schema: schema))
            let ids = try source.enqueue([NewJob("Ready"), NewJob("Later", runIn: .seconds(3600)), NewJob("Done")], on: sqlite)
            _ = try source.claim(processID: 1, queues: ["*"], limit: 1, on: sqlite)
            _ = try source.finish([ids[0]], processID: 1, on: sqlite)  // finished: stays behind
            try source.addTask(RecurringTask(key: "hourly", schedule: "@hourly", className: "Ping"), on: sqlite)
            let live = try source.register(kind: .worker, name: "w", pid: 1, hostname: "h", supervisorID: nil, metadata: .emptyObject, on: sqlite)
            let move = ["migrate", "--database-url", "sqlite://" + path, "--schema", schema, "--to", pgURL]

            let refused = try DroverBinary.run(move)
            #expect(refused.status == 69 && refused.stderr.contains("Drover is running on \(path)"), "\(refused)")
            #expect(try source.listJobs(queue: nil, state: nil, className: nil, limit: 10, on: sqlite).count == 3)

            _ = try source.deregister(processID: try live.get("id", as: Int.self), reason: .graceful, on: sqlite)
            let moved = try DroverBinary.run(move)
            #expect(moved.status == 0, "\(moved)")
            #expect(moved.stdout.contains("moved 2 jobs (1 ready, 1 scheduled) and 1 recurring tasks"), "\(moved)")
            let pg = try TestDatabase.connect()
            let destination = try PostgresJobStore(schema: schema)
            let arrived = try destination.listJobs(on: pg).map { "\($0.className):\($0.state.rawValue)" }.sorted()
            #expect(arrived == ["Done:ready", "Later:scheduled"])
            #expect(try destination.tasks(on: pg).map(\.key) == ["hourly"])
            let left = try source.listJobs(queue: nil, state: nil, className: nil, limit: 10, on: sqlite)
            #expect(left.map(\.className) == ["Ready"], "only the finished job stays in the file")

            let fromPostgres = try DroverBinary.run(["migrate", "--database-url", pgURL, "--schema", schema, "--to", pgURL])
            #expect(fromPostgres.status == 64 && fromPostgres.stderr.contains("is PostgreSQL"), "\(fromPostgres)")
            let toSQLite = try DroverBinary.run(["migrate", "--to", "sqlite:///tmp/x.sqlite3"])
            #expect(toSQLite.status == 64 && toSQLite.stderr.contains("--to needs a PostgreSQL database"), "\(toSQLite)")
        }
    }

    @Test("Ctrl-C during migrate --to rolls PostgreSQL's copy back: exit 130, nothing moved, the SQLite file as it was; run again, all move")
    func moveInterrupted() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let pgURL = try TestDatabase.url()
        let directory = try TemporaryDirectory("drover-move-int")
        let path = directory.url.appendingPathComponent("q.sqlite3").path
        try dropping(schema) {
            let (source, sqlite) = try SQLiteDriver.open(url: "sqlite://" + path, options: StoreOptions(schema: schema))
            let total = 30_000
            for start in stride(from: 0, to: total, by: 5_000) {
                _ = try source.enqueue((start..<start + 5_000).map { NewJob("Move", arguments: try JSON(encoding: ["n": $0])) }, on: sqlite)
            }
            let move = ["migrate", "--database-url", "sqlite://" + path, "--schema", schema, "--to", pgURL]
            let running = try DroverBinary.start(move)
            // Interrupted while it copies: its transaction open, rows inserted, nothing committed.
            let pg = try TestDatabase.connect()
            try waitUntil("the copy is under way", timeout: .seconds(60)) {
                try pg.query("""
                    SELECT count(*) AS n FROM pg_stat_activity
                    WHERE application_name = 'drover migrate' AND xact_start IS NOT NULL AND query LIKE '%jobs" (queue_name, class_name, arguments, priority, scheduled_at, attempts%'
                    """)[0].decode("n", as: Int.self) > 0
            }
            kill(running.pid, SIGINT)
            let stopped = try running.wait(timeout: .seconds(30))
            #expect(stopped.status == 130, "\(stopped)")
            #expect(stopped.stderr.contains("interrupted before PostgreSQL committed: nothing was moved"), "\(stopped.stderr)")
            let destination = try PostgresJobStore(schema: schema)
            #expect(try destination.countJobs(JobFilter(), on: pg) == 0)
            #expect(try source.countJobs(JobFilter(), on: sqlite) == total)
            let moved = try DroverBinary.run(move, timeout: .seconds(120))
            #expect(moved.status == 0 && moved.stdout.contains("moved \(total) jobs (\(total) ready)"), "\(moved)")
            #expect(try source.countJobs(JobFilter(), on: sqlite) == 0 && destination.countJobs(JobFilter(), on: pg) == total)
        }
    }
}
