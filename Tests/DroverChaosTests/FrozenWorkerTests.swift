import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

extension ChaosTests {
    /// Issue 16, point 8.1: a worker frozen (`SIGSTOP`) under a supervisor alone on its database, so
    /// that no other host can prune it. Its own supervisor must notice that it stopped showing signs
    /// of life and `SIGKILL` it within about `alive_threshold` of its last heartbeat, say so in its
    /// log, release its jobs as crashed and replace it; the jobs run again, never while the frozen
    /// attempt still runs.
    @Suite("Chaos: a frozen worker under a supervisor of its own")
    struct FrozenWorkerTests {
        @Test("PostgreSQL: a worker frozen for 5 × alive_threshold is killed by its own supervisor and its jobs run again")
        func postgresql() throws { try frozen(.postgresql(), engine: "PostgreSQL") }

        @Test("SQLite: a worker frozen for 5 × alive_threshold is killed by its own supervisor and its jobs run again")
        func sqlite() throws { try frozen(.sqlite, engine: "SQLite") }

        func frozen(_ backend: ChaosRun.Backend, engine: String) throws {
            let run = try ChaosRun("worker frozen 5 × alive, alone (\(engine))", backend: backend)
            let supervisor = try run.addSupervisor(
                "A", config: ChaosRun.config(workers: 2, threads: 4, extra: run.tickHandlers(host: "A")))
            // Six jobs of 8 s: both workers hold some when one freezes.
            let jobs = try run.enqueueTicks(6, ticks: 80)
            try waitUntil("every job started", timeout: .seconds(30)) { Set(run.tickAttempts().keys).isSuperset(of: jobs) }

            let holders = supervisor.workerPIDs().map { ($0, run.claims(ofPID: $0) ?? 0) }
            let (victim, held) = try #require(holders.max { $0.1 < $1.1 })
            try #require(held > 0, "no worker holds a job: \(holders)")
            let name = try #require(try supervisor.registeredChildren(in: run.database).first { $0.pid == Int(victim) }?.name)
            let heldJobs = try run.database.query("""
                SELECT c.job_id AS id FROM \(run.database.table("claimed_executions")) c
                JOIN \(run.database.table("processes")) p ON p.id = c.process_id WHERE p.pid = \(Int(victim))
                """).map { try $0.decode("id", as: Int.self) }

            kill(victim, SIGSTOP)
            let frozenAt = ContinuousClock.now
            let frozenAtNs = realtimeNanoseconds()
            run.timeline.stopped(victim, at: frozenAtNs)
            run.row.faults += 1
            // Hold the fault for 5 × alive_threshold, watching for its death and its jobs' new runs.
            var diedAfter: Duration?
            var rerunAfter: Duration?
            while ContinuousClock.now - frozenAt < ChaosRun.aliveThreshold * 5 {
                if diedAfter == nil, !ProcessTable.isAlive(victim) {
                    diedAfter = .now - frozenAt
                    run.timeline.died(victim)
                }
                if rerunAfter == nil {
                    let attempts = run.tickAttempts()
                    if heldJobs.allSatisfy({ id in attempts[id, default: []].contains { $0.start > frozenAtNs } }) {
                        rerunAfter = .now - frozenAt
                    }
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            if ProcessTable.isAlive(victim) {
                kill(victim, SIGCONT)
                run.timeline.resumed(victim)
            }
            run.row.recovery = rerunAfter
            try run.drain(timeout: .seconds(90))

            let killLines = supervisor.logLines(containing: name, "SIGKILL")
            func seconds(_ duration: Duration?) -> String { duration.map { String(format: "%.2f s", $0.seconds) } ?? "never" }
            run.notes.append("worker \(name) held \(held) jobs; killed \(seconds(diedAfter)) after it froze, its jobs running again after \(seconds(rerunAfter))")
            run.notes.append("its supervisor's log: " + (killLines.first.map(String.init) ?? "no line names it with SIGKILL"))

            try run.finish()
            #expect(diedAfter != nil && diedAfter! <= ChaosRun.aliveThreshold + .seconds(1),
                    "the frozen worker was killed after \(seconds(diedAfter)) (alive_threshold \(ChaosRun.aliveThreshold))")
            #expect(!killLines.isEmpty, "its supervisor's log has no line naming \(name) with SIGKILL")
            #expect(rerunAfter != nil && rerunAfter! <= ChaosRun.aliveThreshold + .seconds(3),
                    "its \(held) jobs ran again after \(seconds(rerunAfter))")
        }
    }
}
