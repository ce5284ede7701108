import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("The supervisor at work: reloads, heartbeats, pruning, hygiene, throughput")
struct SupervisorOperationsTests {
    static func workers(_ entries: [(queues: String, processes: Int)], extra: String = "") -> String {
        var text = "workers:\n"
        for entry in entries {
            text += "  - queues: [\"\(entry.queues)\"]\n    threads: 2\n    processes: \(entry.processes)\n    polling_interval: 200ms\n"
        }
        return text + "dispatchers:\n  - polling_interval: 200ms\n" + SupervisorHarness.fastSupervisor + "\n" + extra
    }

    private func workerPIDs(_ h: SupervisorHarness, queues: String? = nil) throws -> Set<Int> {
        Set(try h.registeredChildren().filter { child in
            child.kind == .worker && (queues == nil || child.metadata.text.contains("\"\(queues!)\""))
        }.map(\.pid))
    }

    @Test("HUP: a new entry starts a worker and the old keep their pids; a removed entry drains; an invalid file changes nothing")
    func reload() throws {
        let h = try SupervisorHarness(config: Self.workers([("a", 1)]))
        try h.waitForReady()
        let original = try workerPIDs(h)
        #expect(original.count == 1)

        try h.rewriteConfig(Self.workers([("a", 1), ("b", 1)]))
        kill(h.pid, SIGHUP)
        try h.listener.waitFor("RELOADING=1") { $0.fields["RELOADING"] == "1" && $0.fields["MONOTONIC_USEC"] != nil }
        try h.waitForReady(after: 1)
        try waitUntil("the new worker registered") { try workerPIDs(h).count == 2 }
        #expect(try workerPIDs(h, queues: "a") == original, "the unchanged worker kept its pid")

        // A long job on b, then b removed: its worker drains (finishes the job) and exits.
        let id = try h.store.enqueue(NewJob("drover.test.sleep", arguments: try JSON(validating: #"{"ms": 600}"#), queue: "b"), on: h.db)
        try waitUntil("the job on b runs") { try h.state(id)?.state == .claimed }
        let bWorker = try #require(try workerPIDs(h, queues: "b").first)
        try h.rewriteConfig(Self.workers([("a", 1)]))
        kill(h.pid, SIGHUP)
        try h.waitForReady(after: 2)
        try waitUntil("b's worker drained and exited") { !ProcessTable.isAlive(pid_t(bWorker)) }
        #expect(try h.state(id)?.state == .finished, "it finished its job before leaving")
        #expect(try workerPIDs(h) == original)

        // An invalid file: reported, the old configuration stays, nothing restarts, READY=1 again.
        try h.rewriteConfig("workers:\n  - threads: lots\n")
        kill(h.pid, SIGHUP)
        try h.waitForReady(after: 3)
        #expect(h.log.contains("the new configuration is not valid; keeping the one in force"))
        #expect(h.log.contains("workers[0].threads: must be a whole number"))
        #expect(try workerPIDs(h) == original)
        #expect(try h.stop().status == 0)
    }

    @Test("HUP with a configuration naming another schema is refused: the database cannot move under running children")
    func reloadCannotMoveTheDatabase() throws {
        let h = try SupervisorHarness(config: Self.workers([("a", 1)]), databaseInConfig: true)
        try h.waitForReady()
        let original = try workerPIDs(h)
        try h.rewriteWholeConfig("database:\n  url: \"\(try TestDatabase.url())\"\n  schema: somewhere_else\n" + Self.workers([("a", 2)]))
        kill(h.pid, SIGHUP)
        try h.waitForReady(after: 1)
        #expect(h.log.contains("names another database or schema, which a reload cannot change"))
        #expect(try workerPIDs(h) == original)
        #expect(h.childPIDs().count == 2, "still one worker and the dispatcher")
        #expect(try h.stop().status == 0)
    }

    @Test("a dispatcher vacuums the tables claims walk once they hold 20,000 dead rows, and says when an open transaction keeps them")
    func dispatcherVacuumsHotTables() throws {
        let h = try SupervisorHarness(config: Self.workers([("elsewhere", 1)]))
        try h.waitForReady()
        let schema = h.store.schema.parts[0]
        let jobs = h.store.schema.qualifying("jobs"), ready = h.store.schema.qualifying("ready_executions")
        // Autovacuum stays out of it, so that only the dispatcher can be the one that vacuumed.
        try h.db.execute("ALTER TABLE \(ready) SET (autovacuum_enabled = false)")
        func vacuums() throws -> Int {
            try h.db.query("""
                SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = \(schema) AND relname = 'ready_executions'
                """)[0].decode("vacuum_count", as: Int.self)
        }
        // The worker's queue is paused: the rows come and go without it.
        try h.db.execute("INSERT INTO \(h.store.schema.qualifying("pauses")) (queue_name) VALUES ('elsewhere')")
        // A transaction left open, whose snapshot predates the rows: no vacuum can remove them.
        let holder = try TestDatabase.connect()
        try holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        _ = try holder.query("SELECT count(*) FROM \(jobs)")
        try h.db.execute("""
            WITH made AS (INSERT INTO \(jobs) (queue_name, class_name) SELECT 'elsewhere', 'W' FROM generate_series(1, 21000) RETURNING id)
            INSERT INTO \(ready) (job_id, queue_name) SELECT id, 'elsewhere' FROM made
            """)
        try h.db.execute("DELETE FROM \(jobs)")
        _ = try h.db.query("SELECT pg_stat_force_next_flush()")
        #expect(try vacuums() == 0)
        try waitUntil("the dispatcher vacuumed ready_executions", timeout: .seconds(15)) { try vacuums() == 1 }
        try waitUntil("the dispatcher says what holds the dead rows") {
            h.log.contains("a vacuum could not remove most dead rows: a transaction older than them is still open")
        }
        try holder.execute("COMMIT")
        #expect(try h.stop().status == 0)
    }

    @Test("a heartbeat blocked by a row lock, or cut off with its backend, is postponed, not fatal: the next one succeeds and nothing restarts")
    func heartbeatSurvivesLockAndLostBackend() throws {
        // alive_threshold 5 s: the lock is held across three heartbeats but well inside the lease
        // (at 1 s, a machine under load could see the worker fence, as a lease must).
        let h = try SupervisorHarness(config: Self.workers([("*", 1)]).replacingOccurrences(of: "alive_threshold: 1s", with: "alive_threshold: 5s"))
        try h.waitForReady()
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        let processes = h.store.schema.qualifying("processes")
        func lastBeat() throws -> Date {
            try h.db.query("SELECT last_heartbeat_at FROM \(processes) WHERE id = \(worker.id)")[0].decode("last_heartbeat_at", as: Date.self)
        }

        // Hold the worker's row across several heartbeats (every 200 ms; lock_timeout is 1 s).
        let holder = try TestDatabase.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT * FROM \(processes) WHERE id = \(worker.id) FOR UPDATE")
        let before = try lastBeat()
        Thread.sleep(forTimeInterval: 0.6)
        try holder.execute("COMMIT")
        try waitUntil("a heartbeat got through after the lock") { try lastBeat() > before }

        // End the worker's backend: the next heartbeat reconnects.
        // This test's worker only: other tests run workers on the same server at the same time.
        let backends = try h.db.query("SELECT pid FROM pg_stat_activity WHERE application_name = \("drover worker \(worker.name)")")
        #expect(backends.count == 1, "the worker's own session")
        for backend in backends { try h.db.execute("SELECT pg_terminate_backend(\(try backend.decode("pid", as: Int32.self)))") }
        let afterKill = try lastBeat()
        try waitUntil("a heartbeat after the backend ended") { try lastBeat() > afterKill }

        let job = try h.enqueue("drover.test.succeed")
        try h.waitUntilFinished(job)
        #expect(try h.registeredChildren().first { $0.kind == .worker }?.pid == worker.pid, "not restarted")
        #expect(!h.log.contains("level=error"), "\(h.log)")
        #expect(!h.log.contains("unpersisted"))
        #expect(try h.stop().status == 0)
    }

    @Test("a dead host's processes are pruned by a live supervisor, and with two supervisors pruning its jobs are recovered exactly once")
    func deadHostPruned() throws {
        let first = try SupervisorHarness(config: Self.workers([("live", 1)]))
        try first.waitForReady()
        // A second supervisor on the same schema.
        let second = try DroverBinary.start(
            ["start", "--config", first.configPath, "--database-url", try TestDatabase.url(), "--schema", first.schema],
            environment: ["DROVER_TEST_HANDLERS": "1"])
        defer {
            for child in ProcessTable.children(of: second.pid) { kill(child.pid, SIGKILL) }
            kill(second.pid, SIGKILL)
        }
        // A "dead host": a worker row whose heartbeat stopped two minutes ago, holding three jobs.
        let dead = try first.store.register(kind: .worker, name: "worker-on-a-dead-host", pid: 4242, hostname: "gone.example",
                                            supervisorID: nil, on: first.db)
        let deadID = try dead.get("id", as: Int.self)
        let ids = try first.store.enqueue((0..<3).map { _ in NewJob("drover.test.succeed", queue: "dead") }, on: first.db)
        #expect(try first.store.claim(processID: deadID, queues: ["dead"], limit: 3, on: first.db).count == 3)
        try first.db.execute("UPDATE \(first.store.schema.qualifying("processes")) SET last_heartbeat_at = now() - interval '2 minutes' WHERE id = \(deadID)")

        try waitUntil("the dead host's worker is pruned") { try first.store.processID(named: "worker-on-a-dead-host", on: first.db) == nil }
        for id in ids {
            let job = try #require(try first.state(id))
            #expect(job.crashes == 1, "recovered exactly once: \(job)")
            #expect(job.lastError?.message.contains("on gone.example stopped heartbeating") == true)
        }
        let pruneLines = (first.log + second.stderrSoFar).components(separatedBy: "pruned a process that stopped heartbeating").count - 1
        #expect(pruneLines == 1, "one of the two supervisors pruned it")
        kill(second.pid, SIGTERM)
        _ = try second.wait(timeout: .seconds(15))
        #expect(try first.stop().status == 0)
    }

    @Test("no zombie ever lingers, and children hold none of the supervisor's descriptors")
    func hygiene() throws {
        let h = try SupervisorHarness(config: Self.workers([("*", 2)]))
        try h.waitForReady()
        let supervisorFDs = ProcessTable.descriptors(h.pid)
        for child in h.childPIDs() {
            let fds = ProcessTable.descriptors(child)
            // What a child may share with its supervisor: stdio, fd 3, the read end of the death pipe,
            // and fd 4, the write end of the life-sign pipe. Pipes and sockets are told apart by
            // inode (anon inodes such as signalfd all look alike).
            let shared = fds.filter { entry in
                entry.key > 4 && (entry.value.hasPrefix("pipe:") || entry.value.hasPrefix("socket:"))
                    && supervisorFDs.values.contains(entry.value)
            }
            #expect(shared.isEmpty, "child \(child) holds the supervisor's \(shared)")
            for fd in [3, 4] {
                #expect(fds[fd]?.hasPrefix("pipe:") == true)
                #expect(supervisorFDs.contains { $0.value == fds[fd] }, "fd \(fd) is the supervisor's pipe")
            }
            #expect(fds[3] != fds[4])
        }
        // Kill children repeatedly; each is reaped at once.
        for _ in 0..<3 {
            let victim = try #require(h.childPIDs().first)
            kill(victim, SIGKILL)
            try waitUntil("the killed child is reaped") { !ProcessTable.all().contains { $0.pid == victim } }
            #expect(ProcessTable.zombies(of: h.pid).isEmpty)
        }
        #expect(try h.stop().status == 0)
    }

    @Test("2 workers × 3 threads and a dispatcher run 10,000 jobs, each once, through worker kills")
    func tenThousandJobs() throws {
        let config = """
            workers:
              - queues: ["*"]
                threads: 3
                processes: 2
            dispatchers:
              - polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """
        let h = try SupervisorHarness(config: config)
        try h.waitForReady()
        let ids = try h.enqueue("drover.test.succeed", count: 10_000)
        // Kill a worker twice while they work.
        for _ in 0..<2 {
            try waitUntil("work is under way") {
                try h.db.query("SELECT count(*) AS n FROM \(h.store.schema.qualifying("jobs")) WHERE finished_at IS NOT NULL")[0]
                    .decode("n", as: Int.self) > 1000
            }
            if let worker = try h.registeredChildren().first(where: { $0.kind == .worker }) { kill(pid_t(worker.pid), SIGKILL) }
            Thread.sleep(forTimeInterval: 0.2)
        }
        try h.waitUntilFinished(ids, timeout: .seconds(120))
        let states = try h.db.query("""
            SELECT count(*) FILTER (WHERE finished_at IS NOT NULL) AS finished, count(*) FILTER (WHERE attempts > 0) AS retried
            FROM \(h.store.schema.qualifying("jobs"))
            """)[0]
        #expect(try states.decode("finished", as: Int.self) == 10_000)
        #expect(try states.decode("retried", as: Int.self) == 0)
        #expect(try h.stop().status == 0)
    }

    @Test("workers drained by reloads never give back a job they ran: every job runs once (audited)")
    func drainsRunEachJobOnce() throws {
        let configs = [Self.workers([(queues: "*", processes: 1)]), Self.workers([(queues: "*", processes: 3)])]
        let h = try SupervisorHarness(config: configs[1])
        try h.waitForReady()
        let audit = h.directory.url.appendingPathComponent("audit").path
        let ids = try h.enqueue("drover.test.audit", arguments: "{\"file\": \"\(audit)\", \"ms\": 1}", count: 6000)
        // Workers stop (drain) and start again while jobs run: each stop races its last results.
        for round in 0..<16 {
            try h.rewriteConfig(configs[round % 2])
            kill(h.pid, SIGHUP)
            try h.waitForReady(after: round + 1, timeout: .seconds(30))
        }
        try h.waitUntilFinished(ids, timeout: .seconds(120))
        var runs: [Substring: Int] = [:]
        for line in try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n") { runs[line.split(separator: " ")[0], default: 0] += 1 }
        #expect(runs.count == 6000)
        #expect(runs.values.allSatisfy { $0 == 1 }, "ran more than once: \(runs.filter { $0.value > 1 }.keys.prefix(10))")
        #expect(try h.stop().status == 0)
    }
}
