import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("The data model and its migrations")
struct SchemaTests {
    static let tables: Set<String> = [
        "jobs", "ready_executions", "claimed_executions", "scheduled_executions", "blocked_executions",
        "failed_executions", "processes", "pauses", "semaphores", "recurring_tasks", "recurring_executions",
        "schema_migrations", "concurrency_rules", "metric_events", "metric_totals", "metric_minutes", "failure_hooks",
        "class_pauses", "rate_limit_rules", "rate_limit_keys", "rate_limit_slots", "batches", "job_dependencies",
        "waiting_executions",
    ]

    private func names(_ sql: SQL, column: String, on db: Connection) throws -> Set<String> {
        Set(try db.query(sql).map { try $0.decode(column, as: String.self) })
    }

    @Test("migrate creates every table of the design, with its indexes, in the configured schema only")
    func createsDataModel() throws {
        let db = try TestDatabase.connect()
        let schema = TestDatabase.uniqueSchemaName()
        defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let publicBefore = try names("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", column: "tablename", on: db)

        let report = try DroverSchema.migrator(schema: schema).migrate(on: db)
        #expect(report.applied.map(\.version) == DroverSchema.migrations.map(\.version))
        #expect(report.currentVersion == DroverSchema.latestVersion)

        let tables = try names("SELECT tablename FROM pg_tables WHERE schemaname = \(schema)", column: "tablename", on: db)
        #expect(tables == Self.tables)
        let publicAfter = try names("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", column: "tablename", on: db)
        #expect(publicAfter == publicBefore, "nothing lands in public")

        let indexes = try names("SELECT indexname FROM pg_indexes WHERE schemaname = \(schema)", column: "indexname", on: db)
        for index in ["ready_executions_claim_by_queue", "ready_executions_claim_all", "jobs_unique_key_live",
                      "claimed_executions_by_process", "scheduled_executions_due", "blocked_executions_release",
                      "blocked_executions_expiry", "processes_heartbeat", "recurring_executions_once",
                      "semaphores_expiry", "jobs_finished_at"] {
            #expect(indexes.contains(index), "index \(index)")
        }
    }

    @Test("the schema enforces what the design promises")
    func constraintsHold() throws {
        try TestDatabase.withSchema { schema, db in
            let jobs = SQLIdentifier(schema, "jobs")
            let ready = SQLIdentifier(schema, "ready_executions")
            let recurring = SQLIdentifier(schema, "recurring_executions")
            func insertJob(unique: String? = nil, args: String = "{}") throws -> Int {
                try db.query("""
                    INSERT INTO \(jobs) (queue_name, class_name, arguments, unique_key)
                    VALUES ('default', 'SendReport', \(args)::jsonb, \(unique)) RETURNING id
                    """)[0].decode("id", as: Int.self)
            }
            let first = try insertJob(unique: "report:1")
            // A live job's unique key is taken; a finished job's is free again.
            let duplicate = #expect(throws: DatabaseError.self) { try insertJob(unique: "report:1") }
            #expect(duplicate?.code == .uniqueViolation)
            try db.execute("UPDATE \(jobs) SET finished_at = now() WHERE id = \(first)")
            _ = try insertJob(unique: "report:1")
            // Arguments are an object or an array.
            #expect(throws: DatabaseError.self) { try insertJob(args: "42") }
            _ = try insertJob(args: "[1, 2]")
            // An execution row belongs to a job and goes with it.
            let fk = #expect(throws: DatabaseError.self) {
                try db.execute("INSERT INTO \(ready) (job_id, queue_name) VALUES (999999, 'default')")
            }
            #expect(fk?.code == .foreignKeyViolation)
            let job = try insertJob()
            try db.execute("INSERT INTO \(ready) (job_id, queue_name) VALUES (\(job), 'default')")
            try db.execute("DELETE FROM \(jobs) WHERE id = \(job)")
            #expect(try db.query("SELECT count(*) AS n FROM \(ready)")[0].decode("n", as: Int.self) == 0)
            // A recurring run time is recorded once.
            try db.execute("INSERT INTO \(recurring) (task_key, run_at) VALUES ('nightly', '2026-11-27 03:00+01')")
            let twice = #expect(throws: DatabaseError.self) {
                try db.execute("INSERT INTO \(recurring) (task_key, run_at) VALUES ('nightly', '2026-11-27 02:00+00')")
            }
            #expect(twice?.code == .uniqueViolation)
        }
    }

    @Test("running migrate again applies nothing and changes nothing")
    func idempotent() throws {
        try TestDatabase.withSchema { schema, db in
            let migrator = try DroverSchema.migrator(schema: schema)
            let again = try migrator.migrate(on: db)
            #expect(again.applied.isEmpty)
            #expect(again.currentVersion == DroverSchema.latestVersion)
            let rows = try db.query("SELECT count(*) AS n FROM \(SQLIdentifier(schema, "schema_migrations"))")[0]
            #expect(try rows.decode("n", as: Int.self) == DroverSchema.migrations.count)
            #expect(try migrator.status(on: db).pending.isEmpty)
        }
    }

    @Test("migrators started at once on several connections all succeed and apply each migration once")
    func concurrentMigrators() throws {
        let schema = TestDatabase.uniqueSchemaName()
        defer { _ = try? TestDatabase.connect().execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let start = Gate()
        let runs = (0..<4).map { i in
            BackgroundWork("migrator \(i)") { () -> [Int] in
                let db = try TestDatabase.connect()
                start.wait()
                return try DroverSchema.migrator(schema: schema).migrate(on: db).applied.map(\.version)
            }
        }
        start.open()
        let applied = try runs.map { try $0.value(timeout: .seconds(60)) }
        #expect(applied.flatMap { $0 }.sorted() == DroverSchema.migrations.map(\.version), "each applied once, by one of them")
        let db = try TestDatabase.connect()
        let versions = try db.query("SELECT version FROM \(SQLIdentifier(schema, "schema_migrations")) ORDER BY version")
            .map { try $0.decode("version", as: Int.self) }
        #expect(versions == DroverSchema.migrations.map(\.version))
    }

    @Test("a failing migration is rolled back whole and reported; the ones before it stay")
    func failingMigrationRollsBack() throws {
        let db = try TestDatabase.connect()
        let schema = TestDatabase.uniqueSchemaName()
        defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        let migrations = [
            Migration(version: 1, name: "first", sql: "CREATE TABLE kept (id int);"),
            Migration(version: 2, name: "broken", sql: "CREATE TABLE half_done (id int); SELECT no_such_function();"),
        ]
        let migrator = try Migrator(schema: schema, migrations: migrations)
        let error = #expect(throws: DatabaseError.self) { try migrator.migrate(on: db) }
        #expect(error?.code == .migrationFailed)
        #expect(error?.message.contains("migration 2 (broken)") == true)
        let tables = try names("SELECT tablename FROM pg_tables WHERE schemaname = \(schema)", column: "tablename", on: db)
        #expect(tables == ["kept", "schema_migrations"])
        #expect(try migrator.status(on: db).pending.map(\.version) == [2])
    }

    @Test("versions the program does not know are reported, not touched")
    func unknownVersionsReported() throws {
        try TestDatabase.withSchema { schema, db in
            try db.execute("INSERT INTO \(SQLIdentifier(schema, "schema_migrations")) (version, name) VALUES (999, 'from the future')")
            let report = try DroverSchema.migrator(schema: schema).migrate(on: db)
            #expect(report.unknownVersions == [999])
            #expect(report.applied.isEmpty)
        }
    }

    @Test("a schema name that is not a plain identifier is refused before anything runs")
    func schemaNameValidated() {
        for bad in ["", "Drover", "drover; DROP SCHEMA public", "1drover", String(repeating: "a", count: 64), "dröver"] {
            let error = #expect(throws: DatabaseError.self) { try DroverSchema.migrator(schema: bad) }
            #expect(error?.code == .invalidIdentifier)
        }
    }
}


@Suite("PostgreSQL migration 7: the trace context")
struct TraceContextMigrationTests {
    @Test("a schema at version 6 keeps its jobs through migration 7; they are claimed with no trace context, and the SQL functions leave it NULL")
    func keepsJobs() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            try Migrator(schema: schema, migrations: Array(DroverSchema.migrations.prefix(6))).migrate(on: db)
            let before = try db.query("SELECT \(SQLIdentifier(schema, "enqueue"))('Old') AS id")[0].decode("id", as: Int.self)
            let report = try Migrator(schema: schema, migrations: Array(DroverSchema.migrations.prefix(7))).migrate(on: db)
            #expect(report.applied.map(\.version) == [7] && report.currentVersion == 7)
            let many = SQLIdentifier(schema, "enqueue_many")
            let after = try db.query(#"SELECT * FROM \#(many)('[{"class": "New"}]')"#)[0].decode(at: 0, as: Int.self)
            // Today's store claims: the later migrations first.
            try DroverSchema.migrator(schema: schema).migrate(on: db)
            let store = try PostgresJobStore(schema: schema)
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            #expect(claimed.map(\.id) == [before, after] && claimed.allSatisfy { $0.traceContext == nil })
            let nulls = try db.query("SELECT count(*) AS n FROM \(SQLIdentifier(schema, "jobs")) WHERE trace_context IS NULL")[0]
            #expect(try nulls.decode("n", as: Int.self) == 2)
        }
    }
}

@Suite("PostgreSQL migration 8: the SQL functions take the trace context")
struct TraceContextFunctionsMigrationTests {
    @Test("a schema at version 7 keeps its jobs through migration 8; the functions then store a trace context, and calls that worked before work the same")
    func functionsTakeTraceContext() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            try Migrator(schema: schema, migrations: Array(DroverSchema.migrations.prefix(7))).migrate(on: db)
            let enqueue = SQLIdentifier(schema, "enqueue")
            let many = SQLIdentifier(schema, "enqueue_many")
            let before = try db.query("SELECT \(enqueue)('Old', queue_name => 'mail', unique_key => 'old:1') AS id")[0].decode("id", as: Int.self)
            let report = try Migrator(schema: schema, migrations: DroverSchema.migrations.filter { $0.version <= 8 }).migrate(on: db)
            #expect(report.applied.map(\.version) == [8] && report.currentVersion == 8)

            // The calls of before: positional and named, unique keys as they were.
            let again = try db.query("SELECT \(enqueue)('Old', queue_name => 'mail', unique_key => 'old:1') AS id")[0].decode("id", as: Int.self)
            #expect(again == before)
            let positional = try db.query("SELECT \(enqueue)('Pos', '{}', 'default', 0, NULL, 5, interval '5 seconds', NULL) AS id")[0]
                .decode("id", as: Int.self)
            // And the trace context, through both functions.
            let traced = try db.query(#"SELECT \#(enqueue)('Traced', trace_context => '{"traceparent": "00-abc-def-01"}') AS id"#)[0]
                .decode("id", as: Int.self)
            let batch = try db.query(#"""
                SELECT id FROM \#(many)('[{"class": "A", "trace_context": {"x-request-id": "r1"}}, {"class": "B", "trace_context": {}},
                                          {"class": "C", "unique_key": "c", "trace_context": {"x-request-id": "r2"}}]') AS id
                """#).map { try $0.decode("id", as: Int.self) }
            let stored = try Dictionary(uniqueKeysWithValues: db.query("""
                SELECT id, coalesce(trace_context::text, 'none') AS t FROM \(SQLIdentifier(schema, "jobs"))
                """).map { (try $0.decode("id", as: Int.self), try $0.decode("t", as: String.self)) })
            #expect(stored[before] == "none" && stored[positional] == "none")
            #expect(stored[traced] == #"{"traceparent": "00-abc-def-01"}"#)
            #expect(batch.map { stored[$0] } == [#"{"x-request-id": "r1"}"#, "none", #"{"x-request-id": "r2"}"#], "an empty object stores none")
            // Today's store claims: the later migrations first.
            try DroverSchema.migrator(schema: schema).migrate(on: db)
            let claimed = try PostgresJobStore(schema: schema).claim(processID: 1, queues: ["*"], limit: 10, on: db)
            #expect(claimed.first { $0.id == traced }?.traceContext == ["traceparent": "00-abc-def-01"])

            // A refusal names the field, as every other does.
            let refused = #expect(throws: DatabaseError.self) {
                try db.query(#"SELECT \#(enqueue)('T', trace_context => '{"n": 1}')"#)
            }
            #expect(refused?.sqlState == "22023" && refused?.column == "trace_context")
            #expect(refused?.message.contains("job 1: trace_context must be a JSON object of strings; the value of n is not a string") == true,
                    "\(refused?.message ?? "")")
        }
    }
}

@Suite("Migration 9 (SQLite 5): failed jobs counted by queue from an index")
struct FailedByQueueMigrationTests {
    /// Three failed jobs on two queues and a ready one, in a store at the version before.
    static func scene<Driver: StoreDriver>(_ store: JobStore<Driver>, on db: Driver.Database) throws {
        let ids = try store.enqueue([NewJob("A", queue: "mail"), NewJob("A", queue: "mail"), NewJob("A", queue: "sms"), NewJob("A", queue: "sms")],
                                    on: db)
        // Failed as the store of that version did (today's claim and fail read tables of later
        // migrations): out of ready, into failed, failed_at set.
        let failed = try JSON(encoding: JobFailure(errorClass: "E", message: "m"))
        for id in ids.prefix(3) {
            _ = try db.fetch("DELETE FROM \(store.table("ready_executions")) WHERE job_id = \(id)", prepared: false)
            _ = try db.fetch("UPDATE \(store.table("jobs")) SET failed_at = \(Date()), last_error = \(failed) WHERE id = \(id)", prepared: false)
            _ = try db.fetch("INSERT INTO \(store.table("failed_executions")) (job_id, error, created_at) VALUES (\(id), \(failed), \(Date()))",
                             prepared: false)
        }
    }

    static func expectCounts(_ queues: [QueueInfo]) {
        #expect(queues.map(\.name) == ["mail", "sms"])
        #expect(queues.map(\.failed) == [2, 1] && queues.map(\.ready) == [0, 1], "\(queues)")
    }

    @Test("PostgreSQL: a schema before migration 9 gets the index over its failed jobs, and queues list counts them")
    func postgres() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            try Migrator(schema: schema, migrations: DroverSchema.migrations.filter { $0.version < 9 }).migrate(on: db)
            let store = try PostgresJobStore(schema: schema)
            try Self.scene(store, on: db)
            #expect(try DroverSchema.migrator(schema: schema).migrate(on: db).applied.map(\.version) == Array(9...DroverSchema.migrations.count))
            let index = try db.query("SELECT indexdef FROM pg_indexes WHERE schemaname = \(schema) AND indexname = 'jobs_failed_by_queue'")
            #expect(try index.first?.decode("indexdef", as: String.self).hasSuffix("(queue_name) WHERE (failed_at IS NOT NULL)") == true)
            Self.expectCounts(try store.listQueues(on: db))
            // A retried job leaves the count, a new failure joins it.
            _ = try store.retryFailed([1], on: db)
            #expect(try store.listQueues(on: db).map(\.failed) == [1, 1])
        }
    }

    @Test("SQLite: a file before migration 5 gets the same index, and queues list counts its failed jobs")
    func sqlite() throws {
        let directory = try TemporaryDirectory("drover-sqlite-upgrade-5")
        let db = try SQLiteConnection(path: directory.url.appendingPathComponent("drover.sqlite3").path, schema: "drover")
        try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(4))).migrate(on: db)
        let store = try SQLiteJobStore()
        try Self.scene(store, on: db)
        #expect(try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db).applied.map(\.version) == Array(5...DroverSchema.sqliteMigrations.count))
        let index = try db.query("SELECT sql FROM drover.sqlite_master WHERE type = 'index' AND name = 'jobs_failed_by_queue'")
        #expect(try index.first?.decode("sql", as: String.self).hasSuffix("(queue_name) WHERE failed_at IS NOT NULL") == true)
        Self.expectCounts(try store.listQueues(on: db))
        _ = try store.retryFailed([1], on: db)
        #expect(try store.listQueues(on: db).map(\.failed) == [1, 1])
    }
}

@Suite("The data model on SQLite")
struct SQLiteSchemaTests {
    @Test("migrating a SQLite file creates the same tables as on PostgreSQL, once, with the same constraints")
    func sameTables() throws {
        let directory = try TemporaryDirectory("drover-sqlite-schema")
        let path = directory.url.appendingPathComponent("drover.sqlite3").path
        let db = try SQLiteConnection(path: path, schema: "drover")
        let migrator = try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations)
        let report = try migrator.migrate(on: db)
        #expect(report.applied.map(\.version) == DroverSchema.sqliteMigrations.map(\.version)
                && report.currentVersion == DroverSchema.sqliteMigrations.last?.version)
        #expect(try migrator.migrate(on: SQLiteConnection(path: path, schema: "drover")).applied.isEmpty, "again: nothing to do")
        let tables = Set(try db.query("SELECT name FROM drover.sqlite_master WHERE type = 'table'").map { try $0.decode("name", as: String.self) })
        #expect(tables == SchemaTests.tables.union(["sqlite_sequence"]).subtracting(["metric_events"]),
                "sqlite_sequence keeps AUTOINCREMENT's ids; one writer at a time adds to metric_totals directly, with no event log")

        // The rules hold: a live unique key once, JSON checked, a claim without its job refused.
        try db.execute("INSERT INTO drover.jobs (queue_name, class_name, unique_key) VALUES ('default', 'A', 'k')")
        let duplicate = #expect(throws: DatabaseError.self) {
            try db.execute("INSERT INTO drover.jobs (queue_name, class_name, unique_key) VALUES ('default', 'A', 'k')")
        }
        #expect(duplicate?.code == .uniqueViolation)
        try db.execute("UPDATE drover.jobs SET finished_at = \(Date()) WHERE unique_key = 'k'")
        try db.execute("INSERT INTO drover.jobs (queue_name, class_name, unique_key) VALUES ('default', 'A', 'k')")
        let badJSON = #expect(throws: DatabaseError.self) {
            try db.execute("INSERT INTO drover.jobs (queue_name, class_name, arguments) VALUES ('default', 'A', '{not json')")
        }
        #expect(badJSON?.code == .checkViolation)
        let orphan = #expect(throws: DatabaseError.self) {
            try db.execute("INSERT INTO drover.claimed_executions (job_id, process_id) VALUES (999, 1)")
        }
        #expect(orphan?.code == .foreignKeyViolation)
        // Timestamps are text in PostgreSQL's format: they decode as dates.
        let created = try db.query("SELECT created_at FROM drover.jobs LIMIT 1")[0].decode("created_at", as: Date.self)
        #expect(abs(created.timeIntervalSinceNow) < 60)
    }
}

@Suite("Migration 10 (SQLite 6): each job's snoozes")
struct SnoozesMigrationTests {
    /// A job enqueued before the migration snoozes after it: its count starts at 0.
    static func expectSnoozes<Driver: StoreDriver>(_ store: JobStore<Driver>, job id: Int, on db: Driver.Database) throws {
        #expect(try store.job(id, on: db)?.snoozes == 0)
        #expect(try store.snooze(id, processID: 1, for: .seconds(5), on: db) != .dropped)
        let job = try #require(try store.job(id, on: db))
        #expect(job.snoozes == 1 && job.attempts == 0 && job.state == .scheduled)
        let refused = #expect(throws: DatabaseError.self) {
            _ = try db.fetch("UPDATE \(store.table("jobs")) SET snoozes = -1 WHERE id = \(id)", prepared: false)
        }
        #expect(refused?.code == .checkViolation)
    }

    @Test("PostgreSQL: a schema before migration 10 keeps its jobs, which start with no snoozes")
    func postgres() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            try Migrator(schema: schema, migrations: DroverSchema.migrations.filter { $0.version < 10 }).migrate(on: db)
            let store = try PostgresJobStore(schema: schema)
            let id = try store.enqueue(NewJob("Poll"), on: db)
            #expect(try DroverSchema.migrator(schema: schema).migrate(on: db).applied.map(\.version).first == 10)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            try Self.expectSnoozes(store, job: id, on: db)
        }
    }

    @Test("SQLite: a file before migration 6 keeps its jobs, which start with no snoozes")
    func sqlite() throws {
        let directory = try TemporaryDirectory("drover-sqlite-upgrade-6")
        let db = try SQLiteConnection(path: directory.url.appendingPathComponent("drover.sqlite3").path, schema: "drover")
        try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(5))).migrate(on: db)
        let store = try SQLiteJobStore()
        let id = try store.enqueue(NewJob("Poll"), on: db)
        #expect(try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db).applied.map(\.version).first == 6)
        _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
        try Self.expectSnoozes(store, job: id, on: db)
    }
}
