import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// SQLite migration 2 on a file that migration 1 made and an earlier Drover used: every row comes
/// through, times in the one fixed-width format (migration 1's fractions of any length made
/// `drover processes` fail at random), and ids are never used twice from then on.
@Suite("SQLite migration 2: a file in use keeps its rows, gets fixed-width times and ids never reused")
struct SQLiteMigrationTests {
    @Test("rows written by an earlier Drover come through migration 2 intact and readable")
    func upgradeAFileInUse() throws {
        let directory = try TemporaryDirectory("drover-sqlite-upgrade")
        let path = directory.url.appendingPathComponent("drover.sqlite3").path
        let db = try SQLiteConnection(path: path, schema: "drover")
        try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(1))).migrate(on: db)
        // As an earlier Drover left them: PostgreSQL's variable fractions, milliseconds, none.
        try db.execute(unsafeRawScript: """
            INSERT INTO drover.jobs (id, queue_name, class_name, scheduled_at, created_at, updated_at)
                VALUES (1, 'default', 'A', '2026-11-27 03:00:00.5+00', '2026-11-27 03:00:00.123+00', '2026-11-27 03:00:00+00'),
                       (2, 'default', 'B', '2026-11-27 04:00:00+00', '2026-11-27 03:00:00.25+00', '2026-11-27 03:00:00.25+00'),
                       (3, 'mail', 'C', '2026-11-27 03:00:00.000001+00', '2026-11-27 03:00:00+00', '2026-11-27 03:00:00+00');
            INSERT INTO drover.ready_executions (job_id, queue_name, created_at) VALUES (1, 'default', '2026-11-27 03:00:00.5+00');
            INSERT INTO drover.scheduled_executions (job_id, queue_name, scheduled_at) VALUES (2, 'default', '2026-11-27 04:00:00+00');
            INSERT INTO drover.claimed_executions (job_id, process_id, created_at) VALUES (3, 7, '2026-11-27 03:00:01.1+00');
            INSERT INTO drover.processes (id, kind, name, pid, hostname, last_heartbeat_at, created_at)
                VALUES (7, 'worker', 'w', 10, 'h', '2026-11-27 03:00:02.5+00', '2026-11-27 03:00:00+00');
            INSERT INTO drover.recurring_tasks (key, schedule, class_name) VALUES ('nightly', '@daily', 'R');
            INSERT INTO drover.recurring_executions (id, task_key, run_at, job_id) VALUES (5, 'nightly', '2026-11-27 00:00:00+00', 2);
            """)
        // Migration 2 and every later one: today's store reads the columns they add.
        let report = try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db)
        #expect(report.applied.map(\.version) == Array(2...DroverSchema.sqliteMigrations.count))

        let store = try SQLiteJobStore(clock: .fixed { Date(timeIntervalSince1970: 1_795_748_410) })  // 2026-11-27 03:00:10
        #expect(try (1...3).map { try store.job($0, on: db)?.state } == [.ready, .scheduled, .claimed])
        let processes = try store.listProcesses(on: db)
        #expect(processes.map(\.heartbeatAge) == [7.5], "the heartbeat of 03:00:02.5, 7.5 s before the clock")
        let times = try db.query("SELECT scheduled_at, created_at FROM drover.jobs ORDER BY id").map {
            [try $0.decode("scheduled_at", as: String.self), try $0.decode("created_at", as: String.self)]
        }
        #expect(times == [
            ["2026-11-27 03:00:00.500000+00", "2026-11-27 03:00:00.123000+00"],
            ["2026-11-27 04:00:00.000000+00", "2026-11-27 03:00:00.250000+00"],
            ["2026-11-27 03:00:00.000001+00", "2026-11-27 03:00:00.000000+00"],
        ])
        #expect(try store.lastRun(of: "nightly", on: db) == Date(timeIntervalSince1970: 1_795_737_600))
        // The references follow the renamed tables: deleting a job deletes its execution row and
        // clears the run's reference to it.
        try db.execute("DELETE FROM drover.jobs WHERE id = 2")
        #expect(try db.query("SELECT count(*) AS n FROM drover.scheduled_executions")[0].decode("n", as: Int.self) == 0)
        #expect(try db.query("SELECT job_id FROM drover.recurring_executions")[0].decode("job_id", as: Int?.self) == nil)
        // Ids are never used twice: the newest job deleted, the next one gets a new id (enqueued
        // by today's store, which writes the columns of the later migrations too).
        try db.execute("DELETE FROM drover.jobs WHERE id = 3")
        try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db)
        #expect(try store.enqueue([NewJob("D")], on: db) == [4])
        let next = try store.register(kind: .worker, name: "w2", pid: 11, hostname: "h", supervisorID: nil, on: db)
        #expect(try next.get("id", as: Int.self) == 8)
        // The invariant holds on what came through.
        #expect(try store.concurrencyKeys(on: db).isEmpty)
    }

    @Test("migration 4 adds the trace context: a file's jobs are kept and claimed, with none")
    func migrationFourAddsTraceContext() throws {
        let directory = try TemporaryDirectory("drover-sqlite-upgrade-4")
        let path = directory.url.appendingPathComponent("drover.sqlite3").path
        let db = try SQLiteConnection(path: path, schema: "drover")
        try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(3))).migrate(on: db)
        try db.execute("INSERT INTO drover.jobs (id, queue_name, class_name) VALUES (1, 'default', 'A')")
        try db.execute("INSERT INTO drover.ready_executions (job_id, queue_name) VALUES (1, 'default')")
        #expect(try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(4))).migrate(on: db).applied.map(\.version) == [4])
        // Today's store claims: the later migrations first.
        try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db)
        let store = try SQLiteJobStore()
        let claimed = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
        #expect(claimed.map(\.id) == [1] && claimed[0].traceContext == nil)
        _ = try store.enqueue(NewJob("B", traceContext: ["traceparent": "t"]), on: db)
        #expect(try store.claim(processID: 1, queues: ["*"], limit: 10, on: db).map(\.traceContext) == [["traceparent": "t"]])
    }

    @Test("migration 3 lets processes be web, keeps every process row and never reuses a deleted process's id")
    func webProcesses() throws {
        let directory = try TemporaryDirectory("drover-sqlite-upgrade")
        let path = directory.url.appendingPathComponent("drover.sqlite3").path
        let db = try SQLiteConnection(path: path, schema: "drover")
        try Migrator(schema: "drover", migrations: Array(DroverSchema.sqliteMigrations.prefix(2))).migrate(on: db)
        let store = try SQLiteJobStore()
        for name in ["s", "w1", "w2"] {
            _ = try store.register(kind: name == "s" ? .supervisor : .worker, name: name, pid: 10, hostname: "h", supervisorID: nil, on: db)
        }
        // The newest process is gone (deregistered); a claim of it could still be recovered.
        try db.execute("DELETE FROM drover.processes WHERE name = 'w2'")
        #expect(throws: DatabaseError.self, "migration 2's table refuses a web process") {
            try store.register(kind: .web, name: "web-early", pid: 11, hostname: "h", supervisorID: nil, on: db)
        }
        let report = try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db)
        #expect(report.applied.map(\.version) == DroverSchema.sqliteMigrations.map(\.version).filter { $0 >= 3 })
        #expect(try store.listProcesses(on: db).map(\.name).sorted() == ["s", "w1"])
        let web = try store.register(kind: .web, name: "web-1", pid: 12, hostname: "h", supervisorID: 1, on: db)
        #expect(try web.get("id", as: Int.self) == 4, "ids go on after the deleted process 3")
        #expect(try store.listProcesses(on: db).first { $0.name == "web-1" }?.kind == .web)
        let indexes = try db.query("SELECT name FROM drover.sqlite_master WHERE tbl_name = 'processes' AND type = 'index'")
            .map { try $0.decode("name", as: String.self) }
        #expect(Set(indexes).isSuperset(of: ["processes_heartbeat", "processes_by_supervisor"]), "\(indexes)")
        // And jobs are counted from then on (metric_totals and its triggers).
        _ = try store.enqueue([NewJob("A"), NewJob("A")], on: db)
        #expect(try store.metrics(on: db).count(.enqueued, queue: "default", className: "A") == 2)
    }
}
