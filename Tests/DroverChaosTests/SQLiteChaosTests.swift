import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

extension ChaosTests {
    /// Issue 16, point 8.5: `make chaos` on a SQLite file.
    @Suite("Chaos: SQLite")
    struct SQLiteChaosTests {
        /// Workers `SIGKILL`ed in a burst while 20,000 audited jobs run, so that kills land in
        /// the middle of write transactions (claims, finishes, heartbeats).
        @Test("SQLite: a random worker SIGKILLed every 100 ms for 15 s while 20,000 jobs run")
        func workerKillBurst() throws {
            let run = try ChaosRun("SQLite: worker SIGKILL every 100 ms", backend: .sqlite)
            try run.addSupervisor("main", config: ChaosRun.config())
            try run.enqueue(ChaosTests.jobs)
            try waitUntil("jobs run", timeout: .seconds(60)) { (run.finishedCount() ?? 0) >= ChaosTests.jobs / 10 }
            run.inject(every: .milliseconds(100), for: .seconds(15)) {
                guard let victim = run.workerPIDs().randomElement(), kill(victim, SIGKILL) == 0 else { return false }
                run.timeline.died(victim)
                return true
            }
            try run.recoverAndDrain(timeout: .seconds(180))
            try run.finish()
        }

        /// Another process holds SQLite's write lock (`sqlite3 FILE 'BEGIN IMMEDIATE;' …`) for
        /// 2 × alive_threshold while command jobs run: no heartbeat, claim or result can be
        /// written meanwhile. Afterwards every job must have run to its end, once (or once more
        /// per counted crash), never two attempts at once.
        @Test("SQLite: the write lock held by another process for 2 × alive_threshold while commands run")
        func writeLockHeld() throws {
            let run = try ChaosRun("SQLite: write lock held 2 × alive", backend: .sqlite)
            let supervisor = try run.addSupervisor("main", config: ChaosRun.config(workers: 2, threads: 3, extra: run.tickHandlers(host: "main")))
            // Twelve jobs of 4 s: six run when the lock is taken, six wait.
            let jobs = try run.enqueueTicks(12, ticks: 40)
            try waitUntil("six jobs started", timeout: .seconds(30)) { run.tickAttempts().count >= 6 }
            Thread.sleep(forTimeInterval: 1)
            let path = try #require(run.database.sqlitePath)
            let hold = Int((ChaosRun.aliveThreshold * 2).seconds)
            let holder = try RunningProcess(
                executable: "/usr/bin/sqlite3",
                arguments: ["-cmd", ".timeout 30000", path, "BEGIN IMMEDIATE;", "SELECT 'locked';", ".shell sleep \(hold)", "COMMIT;"],
                environment: ProcessInfo.processInfo.environment)
            try waitUntil("sqlite3 holds the write lock", timeout: .seconds(30)) { holder.stdoutSoFar.contains("locked") }
            run.row.faults += 1
            let outcome = try holder.wait(timeout: .seconds(Int64(hold) + 30))
            let releasedAt = realtimeNanoseconds()
            #expect(outcome.status == 0, "\(outcome)")
            try run.recoverAndDrain(timeout: .seconds(120))
            // Recovery: from the lock's release until a job starts again.
            if let next = run.tickAttempts().values.joined().map(\.start).filter({ $0 > releasedAt }).min() {
                run.row.recovery = .milliseconds((next - releasedAt) / 1_000_000)
            }
            let children = ["child exited", "child died", "released the jobs", "exiting to be replaced", "lease"].flatMap { supervisor.logLines(containing: $0) }
            run.notes.append("\(jobs.count) command jobs; the log about its children: "
                             + (children.isEmpty ? "nothing" : children.prefix(6).map { String($0.prefix(200)) }.joined(separator: " | ")))
            try run.finish()
        }
    }
}
