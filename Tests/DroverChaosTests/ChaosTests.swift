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
        try run.finish()
    }

    @Test("a random worker SIGKILLed every 200 ms for 60 s")
    func workerKills() throws {
        var releaseTimes: [Duration] = []
        try scenario("worker SIGKILL every 200 ms") { run in
            run.inject(every: .milliseconds(200), for: .seconds(60)) {
                guard let victim = run.workerPIDs().randomElement() else { return false }
                // The claims it holds, to time how long its jobs take to come back.
                let held = run.claims(ofPID: victim) ?? 0
                guard kill(victim, SIGKILL) == 0 else { return false }
                run.timeline.died(victim)
                if held > 0 {
                    let killedAt = ContinuousClock.now
                    while ContinuousClock.now - killedAt < .seconds(10), (run.claims(ofPID: victim) ?? 1) > 0 {
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
                kill(run.supervisor.pid, SIGKILL)
                _ = try? run.supervisor.process.wait(timeout: .seconds(10))
                run.row.faults += 1
                try run.supervisor.startAgain()
                try run.supervisor.waitForReady(timeout: .seconds(60))
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
                try holder.execute("SELECT id FROM \(run.database.table("processes")) FOR UPDATE")
                run.row.faults += 1
                Thread.sleep(forTimeInterval: 1.5)  // heartbeat_interval is 500 ms; alive_threshold 3 s
                try holder.execute("COMMIT")
            }
        }
    }

    @Test("a worker frozen past alive_threshold (its clock jumps) is recovered from: pruned by another host, or killed by its own supervisor")
    func frozenWorker() throws {
        try scenario("worker frozen 2 × alive_threshold ×3") { run in
            // Another host: a supervisor of its own on the same database, which prunes (a supervisor
            // never prunes its own live children: it knows they are alive).
            let second = try run.addSupervisor("other", config: ChaosRun.config(workers: 1, threads: 1))
            // A worker frozen in the middle of a transaction keeps its row locked, so that no one
            // can prune it; it is then simply late, carries on, and is not stopped. A worker frozen
            // between transactions is pruned by the other host, and must stop when it comes back;
            // or (with leases) its own supervisor kills it first, since it stopped showing signs of
            // life. Either way its jobs must not run twice at once (the audit's overlap).
            var pruned = 0
            var killed = 0
            for round in 1...3 {
                try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= Self.jobs * round / 5 }
                guard let victim = run.workerPIDs().first,
                      let name = try run.supervisor.registeredChildren(in: run.database).first(where: { $0.pid == Int(victim) })?.name
                else { continue }
                let held = run.claims(ofPID: victim) ?? 0
                kill(victim, SIGSTOP)
                run.timeline.stopped(victim)
                run.row.faults += 1
                // While it is frozen: how long until its jobs are taken back.
                let frozenAt = ContinuousClock.now
                var recoveredAfter: Duration?
                while ContinuousClock.now - frozenAt < ChaosRun.aliveThreshold * 2 {
                    if held > 0, recoveredAfter == nil, (run.claims(ofPID: victim) ?? 1) == 0 {
                        recoveredAfter = .now - frozenAt
                    }
                    if !ProcessTable.isAlive(victim) { run.timeline.died(victim) }
                    Thread.sleep(forTimeInterval: 0.01)
                }
                let wasPruned = second.log.contains("name=\(name) ")
                let wasKilled = !ProcessTable.isAlive(victim)
                if wasPruned || wasKilled, let recoveredAfter {
                    print(String(format: "a frozen worker's %d jobs taken back after %.1f s (alive_threshold %.0f s; %@)",
                                 held, recoveredAfter.seconds, ChaosRun.aliveThreshold.seconds,
                                 wasKilled ? "killed by its supervisor" : "pruned by another host"))
                    #expect(recoveredAfter <= ChaosRun.aliveThreshold + .seconds(10))
                }
                kill(victim, SIGCONT)
                run.timeline.resumed(victim)
                if wasKilled {
                    killed += 1
                } else if wasPruned {
                    pruned += 1
                    try waitUntil("the pruned worker stopped", timeout: .seconds(30)) { !ProcessTable.isAlive(victim) }
                    run.timeline.died(victim)
                }
            }
            run.notes.append("frozen workers pruned by the other host: \(pruned), killed by their own supervisor: \(killed)")
            #expect(pruned + killed > 0, "no frozen worker was pruned or killed")
            if pruned > 0 {
                #expect(run.supervisor.log.contains("this process's registration is gone"))
                #expect(second.log.contains("pruned a process that stopped heartbeating"))
            }
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
                try? run.supervisor.rewriteConfig(configs[index % configs.count])
                index += 1
                return kill(run.supervisor.pid, SIGHUP) == 0
            }
            #expect(run.supervisor.log.contains("the new configuration is not valid; keeping the one in force"))
            // Back to a valid configuration: the supervisor reports READY after it.
            let readies = run.supervisor.readyCount
            try run.supervisor.rewriteConfig(ChaosRun.config())
            kill(run.supervisor.pid, SIGHUP)
            try run.supervisor.waitForReady(after: readies, timeout: .seconds(30))
        }
    }
}
