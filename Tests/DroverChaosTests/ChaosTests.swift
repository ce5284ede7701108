import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `make chaos`: faults injected into a running system, each scenario bounded in time and ending
/// with an audit (see ``ChaosRun``). Not part of `make test`: it takes minutes.
@Suite("Chaos: zero lost jobs", .serialized)
struct ChaosTests {
    static let jobs = Int(ProcessInfo.processInfo.environment["DROVER_CHAOS_JOBS"] ?? "") ?? 20_000

    /// Runs the scenario, drains, audits, prints the table, and fails on any loss.
    func scenario(_ name: String, config: String = ChaosRun.config(), databaseURL: String? = nil,
                  _ faults: (ChaosRun) throws -> Void) throws {
        let run = try ChaosRun(name, config: config, databaseURL: databaseURL)
        try run.enqueue(Self.jobs)
        try faults(run)
        try run.recoverAndDrain()
        let row = try run.audit()
        ChaosTable.record(row)
        // The whole log, for a look afterwards.
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "drover-chaos-" + name.filter { $0.isLetter || $0.isNumber } + ".log").path
        try? run.harness.log.write(toFile: logPath, atomically: true, encoding: .utf8)
        #expect(row.faults > 0, "no fault was injected: \(row)")
        #expect(row.clean, "\(row)\n\(row.examples.joined(separator: "\n"))\nthe log: \(logPath)")
    }

    @Test("a random worker SIGKILLed every 200 ms for 60 s")
    func workerKills() throws {
        var releaseTimes: [Duration] = []
        try scenario("worker SIGKILL every 200 ms") { run in
            let schema = run.harness.store.schema
            run.inject(every: .milliseconds(200), for: .seconds(60)) {
                guard let victim = run.workerPIDs().randomElement() else { return false }
                // The claims it holds, to time how long its jobs take to come back.
                let claimsSQL: SQL = """
                    SELECT count(*) AS n FROM \(schema.qualifying("claimed_executions")) c
                    JOIN \(schema.qualifying("processes")) p ON p.id = c.process_id WHERE p.pid = \(Int(victim))
                    """
                let held = (try? run.harness.db.query(claimsSQL)[0].decode("n", as: Int.self)) ?? 0
                guard kill(victim, SIGKILL) == 0 else { return false }
                if held > 0 {
                    let killedAt = ContinuousClock.now
                    while ContinuousClock.now - killedAt < .seconds(10),
                          ((try? run.harness.db.query(claimsSQL)[0].decode("n", as: Int.self)) ?? 1) > 0 {
                        Thread.sleep(forTimeInterval: 0.002)
                    }
                    releaseTimes.append(.now - killedAt)
                }
                return true
            }
        }
        // A SIGKILLed worker's jobs back in ready (the target: within 1 s).
        let sorted = releaseTimes.sorted()
        if let longest = sorted.last {
            print(String(format: "a SIGKILLed worker's claims released after: median %.0f ms, max %.0f ms (%d kills of a worker holding jobs)",
                         sorted[sorted.count / 2].seconds * 1000, longest.seconds * 1000, sorted.count))
            #expect(longest < .seconds(1), "a killed worker's jobs took \(longest) to come back")
        }
    }

    @Test("the supervisor SIGKILLed and started again three times")
    func supervisorKills() throws {
        try scenario("supervisor SIGKILL and restart ×3") { run in
            for round in 1...3 {
                try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs * round / 5 }
                kill(run.harness.pid, SIGKILL)
                _ = try? run.harness.process.wait(timeout: .seconds(10))
                run.row.faults += 1
                try run.harness.startAgain()
                try run.harness.waitForReady(after: round, timeout: .seconds(60))
            }
        }
    }

    @Test("PostgreSQL restarted (fast shutdown) twice during a run")
    func postgresRestarts() throws {
        let cluster = try PrivateCluster()
        try scenario("PostgreSQL fast restart ×2", databaseURL: cluster.url) { run in
            for round in 1...2 {
                try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs * round / 4 }
                try cluster.stop()
                try cluster.start()
                run.row.faults += 1
            }
        }
    }

    @Test("PostgreSQL down for twice alive_threshold, then back")
    func postgresDown() throws {
        let cluster = try PrivateCluster()
        try scenario("PostgreSQL down 2 × alive_threshold", databaseURL: cluster.url) { run in
            try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs / 4 }
            try cluster.stop()
            run.row.faults += 1
            Thread.sleep(forTimeInterval: (ChaosRun.aliveThreshold * 2).seconds)
            try cluster.start()
        }
    }

    @Test("every Drover backend ended with pg_terminate_backend every second")
    func terminatedBackends() throws {
        let cluster = try PrivateCluster()
        try scenario("pg_terminate_backend every 1 s", databaseURL: cluster.url) { run in
            let admin = try Connection(cluster.url, applicationName: "chaos")
            run.inject(every: .seconds(1), for: .seconds(30)) {
                let ended = (try? admin.query("""
                    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                    WHERE application_name LIKE 'drover %'
                    """)[0].decode("n", as: Int.self)) ?? 0
                return ended > 0
            }
        }
    }

    @Test("a transaction holding the processes rows' locks for longer than two heartbeats, three times")
    func heldLocks() throws {
        try scenario("processes rows locked > 2 heartbeats ×3") { run in
            let holder = try TestDatabase.connect(applicationName: "chaos-lock-holder")
            for round in 1...3 {
                try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs * round / 5 }
                try holder.execute("BEGIN")
                try holder.execute("SELECT id FROM \(run.harness.store.schema.qualifying("processes")) FOR UPDATE")
                run.row.faults += 1
                Thread.sleep(forTimeInterval: 1.5)  // heartbeat_interval is 500 ms; alive_threshold 3 s
                try holder.execute("COMMIT")
            }
        }
    }

    @Test("a worker frozen past alive_threshold (its clock jumps) is pruned by another host's supervisor, comes back, and stops")
    func frozenWorker() throws {
        try scenario("worker frozen 2 × alive_threshold ×3") { run in
            // Another host: a supervisor of its own on the same database, which prunes (a supervisor
            // never prunes its own live children: it knows they are alive).
            let other = try TemporaryDirectory("drover-chaos-other")
            let config = try other.file(ChaosRun.config(workers: 1, threads: 1))
            let url = try TestDatabase.url()
            let second = try DroverBinary.start(
                ["start", "--config", config, "--database-url", url, "--schema", run.harness.schema],
                environment: ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": nil])
            defer {
                kill(second.pid, SIGTERM)
                _ = try? second.wait(timeout: .seconds(30))
            }
            // A worker frozen in the middle of a transaction keeps its row locked, so that no one
            // can prune it; it is then simply late, carries on, and is not stopped. A worker frozen
            // between transactions is pruned, and must stop when it comes back.
            var pruned = 0
            for round in 1...3 {
                try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs * round / 5 }
                guard let victim = run.workerPIDs().first,
                      let name = try run.harness.registeredChildren().first(where: { $0.pid == Int(victim) })?.name else { continue }
                let claimsSQL: SQL = """
                    SELECT count(*) AS n FROM \(run.harness.store.schema.qualifying("claimed_executions")) c
                    JOIN \(run.harness.store.schema.qualifying("processes")) p ON p.id = c.process_id WHERE p.pid = \(Int(victim))
                    """
                let held = (try? run.harness.db.query(claimsSQL)[0].decode("n", as: Int.self)) ?? 0
                kill(victim, SIGSTOP)
                run.row.faults += 1
                // While it is frozen: how long until another host takes its jobs back.
                let frozenAt = ContinuousClock.now
                var recoveredAfter: Duration?
                while ContinuousClock.now - frozenAt < ChaosRun.aliveThreshold * 2 {
                    if held > 0, recoveredAfter == nil, ((try? run.harness.db.query(claimsSQL)[0].decode("n", as: Int.self)) ?? 1) == 0 {
                        recoveredAfter = .now - frozenAt
                    }
                    Thread.sleep(forTimeInterval: 0.01)
                }
                let wasPruned = second.stderrSoFar.contains("name=\(name) ")
                if wasPruned, let recoveredAfter {
                    print(String(format: "a frozen (dead-looking) worker's %d jobs recovered by another host after %.1f s (alive_threshold %.0f s)",
                                 held, recoveredAfter.seconds, ChaosRun.aliveThreshold.seconds))
                    #expect(recoveredAfter <= ChaosRun.aliveThreshold + .seconds(10))
                }
                kill(victim, SIGCONT)
                if wasPruned {
                    pruned += 1
                    try waitUntil("the pruned worker stopped", timeout: .seconds(30)) { !ProcessTable.isAlive(victim) }
                }
            }
            #expect(pruned > 0, "no frozen worker was pruned")
            #expect(run.harness.log.contains("this process's registration is gone"))
            #expect(second.stderrSoFar.contains("pruned a process that stopped heartbeating"))
        }
    }

    @Test("SIGHUP every 2 s with configurations that add and remove workers, some of them invalid")
    func reloads() throws {
        let configs = [
            ChaosRun.config(workers: 1, threads: 4), ChaosRun.config(workers: 4, threads: 2), "workers: [ {queues: [\"*\"], threads: 0} ]",
            ChaosRun.config(workers: 2, threads: 6), "workers:\n  - queues: [\"*\"\n", ChaosRun.config(workers: 3, threads: 3),
        ]
        try scenario("SIGHUP every 2 s, some configs invalid") { run in
            var index = 0
            run.inject(every: .seconds(2), for: .seconds(30)) {
                try? run.harness.rewriteConfig(configs[index % configs.count])
                index += 1
                return kill(run.harness.pid, SIGHUP) == 0
            }
            #expect(run.harness.log.contains("the new configuration is not valid; keeping the one in force"))
            // Back to a valid configuration: the supervisor reports READY after it.
            let readies = run.harness.listener.messages.filter { $0.fields["READY"] == "1" }.count
            try run.harness.rewriteConfig(ChaosRun.config())
            kill(run.harness.pid, SIGHUP)
            try run.harness.waitForReady(after: readies, timeout: .seconds(30))
        }
    }
}
