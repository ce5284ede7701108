import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover start` on a SQLite file: no database server, several processes on one file.
@Suite("SQLite: drover start with no database server")
struct SQLiteRuntimeTests {
    /// A supervisor on `sqlite:///<directory>/<file>` (or, with no file, on nothing configured),
    /// started in `directory` with Drover's test handlers.
    final class Run {
        let directory: TemporaryDirectory
        let listener: NotifyListener
        let process: RunningProcess
        let path: String

        init(config: String?, file: String? = "queue.sqlite3", arguments: [String] = [], environment: [String: String?] = [:]) throws {
            directory = try TemporaryDirectory("drover-sqlite")
            listener = try NotifyListener()
            path = directory.url.appendingPathComponent(file ?? "drover.sqlite3").path
            var configuration = config ?? ""
            if let file {
                configuration = "database:\n  url: \"sqlite://\(directory.url.appendingPathComponent(file).path)\"\n" + configuration
            }
            let flags = config == nil ? [] : ["--config", try directory.file(configuration)]
            var env: [String: String?] = ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": listener.path, "STATE_DIRECTORY": nil]
            env.merge(environment) { _, given in given }
            process = try DroverBinary.start(["start"] + flags + arguments, environment: env, in: directory.url.path)
        }

        deinit {
            for child in ProcessTable.children(of: process.pid) { kill(child.pid, SIGKILL) }
            kill(process.pid, SIGKILL)
            _ = try? process.wait(timeout: .seconds(10))
        }

        func waitForReady() throws {
            _ = try listener.waitFor("READY=1", timeout: .seconds(30)) { $0.fields["READY"] == "1" }
        }

        /// The test's own connection to the file (WAL: it reads while Drover writes).
        func open() throws -> (SQLiteJobStore, SQLiteConnection) {
            (try SQLiteJobStore(), try SQLiteConnection(path: path, schema: "drover", busyTimeout: .seconds(10)))
        }

        func count(_ sql: SQL, on db: SQLiteConnection) throws -> Int {
            try db.query(sql)[0].decode("n", as: Int.self)
        }

        func workers(on db: SQLiteConnection) throws -> [ProcessSummary] {
            try SQLiteJobStore().listProcesses(on: db).filter { $0.kind == .worker }
        }

        func stop() throws -> DroverBinary.Outcome {
            kill(process.pid, SIGTERM)
            return try process.wait(timeout: .seconds(30))
        }
    }

    @Test("with no configuration and no server, drover start says it uses ./drover.sqlite3, and jobs enqueued with drover enqueue run")
    func noConfiguration() throws {
        let run = try Run(config: nil, file: nil)
        try run.waitForReady()
        let firstLine = run.process.stderrSoFar.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains("no database configured: using SQLite at \(run.path)"))
        var ids: [Int] = []
        for _ in 0..<3 {
            let outcome = try DroverBinary.run(["enqueue", "drover.test.succeed"], in: run.directory.url.path)
            #expect(outcome.status == 0, "\(outcome)")
            ids.append(try #require(Int(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines))))
        }
        let (store, db) = try run.open()
        try waitUntil("the jobs finished", timeout: .seconds(30)) {
            try ids.allSatisfy { try store.job($0, on: db)?.state == .finished }
        }
        let list = try DroverBinary.run(["jobs", "list", "--state", "finished"], in: run.directory.url.path)
        #expect(list.status == 0 && list.stdout.contains("drover.test.succeed"), "\(list)")
        let outcome = try run.stop()
        #expect(outcome.status == 0, "\(outcome)")
    }

    @Test("4 worker processes × 4 threads drain 20,000 jobs from one file; a SIGKILLed worker's jobs run again, nothing is lost")
    func drainWithKill() throws {
        let run = try Run(config: """
            workers:
              - queues: ["*"]
                threads: 4
                processes: 4
                polling_interval: 1s
            dispatchers:
              - polling_interval: 200ms
            supervisor:
              heartbeat_interval: 500ms
              alive_threshold: 5s
              shutdown_timeout: 5s
            """)
        try run.waitForReady()
        let (store, db) = try run.open()
        let audit = run.directory.url.appendingPathComponent("audit").path
        let total = 20_000
        let arguments = try JSON(encoding: ["file": audit])
        for _ in 0..<(total / 1000) {
            _ = try store.enqueue((0..<1000).map { _ in NewJob("drover.test.audit", arguments: arguments) }, on: db)
        }
        try waitUntil("a few thousand jobs finished", timeout: .seconds(60), interval: .milliseconds(2)) {
            try run.count("SELECT count(*) AS n FROM drover.jobs WHERE finished_at IS NOT NULL", on: db) >= 3000
        }
        let victim = try #require(try run.workers(on: db).first { $0.claimedJobs > 0 } ?? run.workers(on: db).first)
        kill(pid_t(victim.pid), SIGKILL)
        try waitUntil("every job finished", timeout: .seconds(180), interval: .milliseconds(100)) {
            try run.count("SELECT count(*) AS n FROM drover.jobs WHERE finished_at IS NOT NULL", on: db) == total
        }
        #expect(try run.count("SELECT count(*) AS n FROM drover.claimed_executions", on: db) == 0)
        #expect(try run.count("SELECT count(*) AS n FROM drover.failed_executions", on: db) == 0)
        #expect(run.process.stderrSoFar.contains("was killed by signal 9"))

        // Every job ran; one ran again only if it was taken back from the killed worker (a crash is
        // counted on it), and then at most once more.
        var runs: [Int: Int] = [:]
        for line in try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n") {
            runs[Int(line.split(separator: " ")[0])!, default: 0] += 1
        }
        #expect(runs.count == total)
        let crashed = Set(try db.query("SELECT id FROM drover.jobs WHERE crashes > 0").map { try $0.decode("id", as: Int.self) })
        let repeated = runs.filter { $0.value > 1 }
        #expect(repeated.allSatisfy { crashed.contains($0.key) && $0.value == 2 }, "ran twice without a crash: \(repeated.keys.filter { !crashed.contains($0) }.prefix(10))")
        #expect(crashed.count <= 16)
        #expect(try run.stop().status == 0)
    }

    @Test("a heartbeat behind SQLite's write lock fails with SQLITE_BUSY, keeps its change, and the next one writes it; nothing restarts")
    func heartbeatBusy() throws {
        // Busy timeout max(1 s, heartbeat_interval / 2) = 1 s; the lock is held for 3 s, well short of alive_threshold.
        let run = try Run(config: """
            workers:
              - queues: ["*"]
                threads: 1
            dispatchers: []
            supervisor:
              heartbeat_interval: 1s
              alive_threshold: 20s
            """, arguments: ["--log-level", "debug"])
        try run.waitForReady()
        let (store, db) = try run.open()
        let worker = try #require(try run.workers(on: db).first)
        func lastBeat() throws -> String {
            try db.query("SELECT last_heartbeat_at AS at FROM drover.processes WHERE id = \(worker.id)")[0].decode("at", as: String.self)
        }
        let holder = try SQLiteConnection(path: run.path, schema: "drover")
        try holder.execute(unsafeRawScript: "BEGIN IMMEDIATE")
        let held = try lastBeat()
        let logBefore = run.process.stderrSoFar.count
        try waitUntil("a heartbeat failed on the lock", timeout: .seconds(10)) {
            let log = run.process.stderrSoFar.dropFirst(logBefore)
            return log.contains("heartbeat failed; its change stays pending") && log.contains("database is locked")
        }
        #expect(try lastBeat() == held)  // Nothing written while the lock is held.
        try holder.execute(unsafeRawScript: "COMMIT")
        try waitUntil("the next heartbeat wrote the pending change", timeout: .seconds(10)) { try lastBeat() > held }

        // The same worker, never replaced, still runs jobs.
        #expect(ProcessTable.isAlive(pid_t(worker.pid)))
        #expect(try run.workers(on: db).map(\.pid) == [worker.pid])
        #expect(!run.process.stderrSoFar.contains("child died"))
        let id = try store.enqueue([NewJob("drover.test.succeed")], on: db)[0]
        try waitUntil("the job ran", timeout: .seconds(10)) { try store.job(id, on: db)?.state == .finished }
        #expect(try run.stop().status == 0)
    }

    @Test("workers wake on the wake file, not by polling: with polling_interval 1h, an enqueued job runs and a cancelled one stops")
    func wakeUps() throws {
        // Polling once an hour and a heartbeat every 30 s: within the deadlines below, only a
        // wake-up can start the job or deliver the cancellation.
        let run = try Run(config: """
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 1h
            dispatchers: []
            supervisor:
              heartbeat_interval: 30s
              alive_threshold: 120s
            """)
        try run.waitForReady()
        let (store, db) = try run.open()
        // The worker's first claim happens at its start; wait until it is idle, then enqueue.
        try waitUntil("the worker registered", timeout: .seconds(10)) { try !run.workers(on: db).isEmpty }
        let quick = try DroverBinary.run(["enqueue", "drover.test.succeed", "--database-url", "sqlite://" + run.path])
        let quickID = try #require(Int(quick.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(quick)")
        try waitUntil("the job ran", timeout: .seconds(10)) { try store.job(quickID, on: db)?.state == .finished }

        let waiting = try store.enqueue([NewJob("drover.test.wait", arguments: try JSON(validating: #"{"ms": 600000}"#))], on: db)[0]
        try waitUntil("the long job runs", timeout: .seconds(10)) { try store.job(waiting, on: db)?.state == .claimed }
        let cancel = try DroverBinary.run(["jobs", "cancel", String(waiting), "--database-url", "sqlite://" + run.path])
        #expect(cancel.status == 0, "\(cancel)")
        try waitUntil("the cancelled job stopped", timeout: .seconds(10)) { try store.job(waiting, on: db)?.state == .failed }
        #expect(try store.job(waiting, on: db)?.lastError?.errorClass == "Cancelled")
        #expect(try run.stop().status == 0)
    }

    @Test("two supervisors started together on a new file both come up: opening and migrating wait for the other's lock")
    func twoSupervisorsOnANewFile() throws {
        // Before the fix one round in ten failed ("database is locked" while the other switched the file to WAL).
        for round in 1...12 {
            let directory = try TemporaryDirectory("drover-sqlite-two")
            let url = "sqlite://" + directory.url.appendingPathComponent("shared.sqlite3").path
            let config = try directory.file("""
                workers:
                  - queues: ["*"]
                    threads: 1
                dispatchers: []
                \(SupervisorHarness.fastSupervisor)
                """)
            let listeners = try (0..<2).map { _ in try NotifyListener() }
            let gate = DispatchSemaphore(value: 0)
            let starts = listeners.map { listener in
                BackgroundWork { () -> RunningProcess in
                    gate.wait()
                    return try DroverBinary.start(["start", "--config", config, "--database-url", url],
                                                  environment: ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": listener.path])
                }
            }
            gate.signal()
            gate.signal()
            let processes = try starts.map { try $0.value(timeout: .seconds(30)) }
            defer {
                for process in processes {
                    for child in ProcessTable.children(of: process.pid) { kill(child.pid, SIGKILL) }
                    kill(process.pid, SIGKILL)
                    _ = try? process.wait(timeout: .seconds(10))
                }
            }
            for (process, listener) in zip(processes, listeners) {
                do {
                    _ = try listener.waitFor("READY=1", timeout: .seconds(30)) { $0.fields["READY"] == "1" }
                } catch {
                    Issue.record("round \(round): a supervisor did not come up: \(error)\n\(process.stderrSoFar)")
                }
                #expect(!process.stderrSoFar.contains("database is locked"), "round \(round): \(process.stderrSoFar)")
            }
            let db = try SQLiteConnection(path: directory.url.appendingPathComponent("shared.sqlite3").path, schema: "drover")
            #expect(try SQLiteJobStore().migrationStatus(on: db).pending.isEmpty)
            #expect(try db.query("SELECT count(*) AS n FROM drover.schema_migrations")[0].decode("n", as: Int.self)
                        == DroverSchema.sqliteMigrations.count,
                    "each migration applied once")
        }
    }

    @Test("a SQLite file that cannot be opened is a clear error with exit 69, for drover start and the commands alike")
    func unopenable() throws {
        let url = "sqlite:///nonexistent-drover-dir/queue.sqlite3"
        let start = try DroverBinary.run(["start", "--database-url", url], environment: ["NOTIFY_SOCKET": nil], timeout: .seconds(30))
        #expect(start.status == 69, "\(start)")
        #expect(start.stderr.contains("/nonexistent-drover-dir/queue.sqlite3") && start.stderr.contains("check that its directory exists"),
                "\(start)")
        let enqueue = try DroverBinary.run(["enqueue", "X", "--database-url", url])
        #expect(enqueue.status == 69 && enqueue.stderr.contains("check that its directory exists"), "\(enqueue)")
    }
}
