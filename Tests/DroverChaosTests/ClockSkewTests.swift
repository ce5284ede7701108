import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

extension ChaosTests {
    /// Issue 16, point 8.3: two supervisors on one database, host B's wall clock moved by
    /// libfaketime (what `faketime -m --exclude-monotonic -f OFFSET` sets up, with the offset read
    /// from a file so that it can move while B runs; CLOCK_MONOTONIC untouched). Liveness must not
    /// depend on the hosts' clocks agreeing: no live process is pruned, and a dead host's jobs are
    /// taken back within alive_threshold (and a little) whichever way its clock was off.
    @Suite("Chaos: hosts whose clocks disagree")
    struct ClockSkewTests {
        static let skew: Duration = ChaosRun.aliveThreshold * 2

        @Test("host B's clock 2 × alive_threshold behind, then ahead: no live process pruned; B killed whole, its jobs taken back on time")
        func clockSkew() throws {
            let run = try ChaosRun("clock skew ∓2 × alive_threshold")
            let skew = Int(Self.skew.seconds)
            let offsetFile = try run.directory.file("-\(skew)s\n", named: "faketime-offset")
            let hostA = try run.addSupervisor("A", config: ChaosRun.config(workers: 1, threads: 4, extra: run.tickHandlers(host: "A")))
            let startedB = Date()
            let hostB = try run.addSupervisor(
                "B", config: ChaosRun.config(workers: 1, threads: 4, extra: run.tickHandlers(host: "B")),
                wrapper: Self.faketime(offsetFile: offsetFile, initial: "-\(skew)s"), wrapperForks: true,
                environment: ["DROVER_LOG_LEVEL": "debug"], waitForReady: false)
            do {
                try hostB.waitForReady(timeout: .seconds(20))
            } catch {
                let lines = hostA.logLines(containing: "pruned") + hostB.logLines(containing: "level=warning")
                    + hostB.logLines(containing: "level=error")
                run.notes.append("B never became ready: " + lines.prefix(6).map { String($0.prefix(200)) }.joined(separator: " | "))
                let exit = hostB.process.isRunning ? "running" : "exited: \((try? hostB.process.wait(timeout: .seconds(1)))?.description ?? "?")"
                Issue.record("B never became ready (its clock \(-skew) s); it is \(exit)")
            }
            // It took effect: B's first log line is stamped `skew` earlier than it was written.
            let firstSkew = try #require(hostB.log.split(separator: "\n").first.flatMap(Self.timestamp)).timeIntervalSince(startedB)
            #expect(abs(firstSkew + Self.skew.seconds) < 1.5, "B's first log line is off by \(firstSkew) s, not -\(skew) s")
            run.notes.append(String(format: "B's clock: first log line %+.1f s", firstSkew))

            // Phase 1 and 2: B behind, then ahead, each for 3 × alive_threshold with jobs flowing.
            for (phase, offset) in [(1, -skew), (2, skew)] {
                if phase == 2 {
                    try "+\(skew)s\n".write(toFile: offsetFile, atomically: true, encoding: .utf8)
                    if !hostB.process.isRunning {
                        // Taken for dead and stopped: systemd would start it again.
                        run.notes.append("B exited with \((try? hostB.process.wait(timeout: .seconds(1)))?.status ?? -1) in phase 1; started again")
                        try hostB.startAgain()
                        try hostB.waitForReady(timeout: .seconds(30))
                    }
                    let observed = try Self.observedSkew(of: hostB, near: Double(skew))
                    run.notes.append(String(format: "B's clock after the jump: log lines %+.1f s", observed))
                }
                let (fromA, fromB) = (hostA.log.count, hostB.log.count)
                run.row.faults += 1
                try run.enqueueTicks(40, ticks: 20)
                Thread.sleep(forTimeInterval: (ChaosRun.aliveThreshold * 3).seconds)  // the phase's stated duration
                func lines(_ words: String) -> [Substring] {
                    hostA.log.dropFirst(fromA).split(separator: "\n").filter { $0.contains(words) }
                        + hostB.log.dropFirst(fromB).split(separator: "\n").filter { $0.contains(words) }
                }
                let pruned = lines("pruned a process")
                let gone = lines("registration is gone")
                let bothRunning = hostA.process.isRunning && hostB.process.isRunning
                #expect(pruned.isEmpty, "phase \(phase) (B \(offset) s): live processes pruned:\n\(pruned.joined(separator: "\n"))")
                #expect(gone.isEmpty, "phase \(phase) (B \(offset) s): \(gone.joined(separator: "\n"))")
                #expect(bothRunning, "phase \(phase) (B \(offset) s): a supervisor stopped: A \(hostA.process.isRunning), B \(hostB.process.isRunning)")
                run.notes.append("phase \(phase) (B \(offset) s): \(pruned.count) processes pruned, \(gone.count) registrations gone; "
                                 + "A \(hostA.process.isRunning ? "running" : "exited"), B \(hostB.process.isRunning ? "running" : "exited")")
            }

            // Phase 3: B (clock ahead) dies whole, holding jobs; A takes them back: its pruning
            // releases them, from B's last heartbeat by the database's clock.
            if hostB.process.isRunning {
                try run.enqueueTicks(8, ticks: 30)
                try waitUntil("B holds jobs", timeout: .seconds(60)) { hostB.workerPIDs().contains { (run.claims(ofPID: $0) ?? 0) > 0 } }
                let processIDs = try hostB.registeredChildren(in: run.database).map(\.id)
                try #require(!processIDs.isEmpty, "B has no registered children")
                func heldByB() throws -> Int {
                    try run.database.count("""
                        SELECT count(*) AS n FROM \(run.database.table("claimed_executions")) WHERE process_id IN (\(unsafeRaw: processIDs.map(String.init).joined(separator: ",")))
                        """)
                }
                let held = try heldByB()
                let killed = ContinuousClock.now
                hostB.killAll(first: SIGKILL)
                run.row.faults += 1
                _ = try? hostB.process.wait(timeout: .seconds(10))
                run.retire(hostB)
                try waitUntil("A took B's jobs back", timeout: .seconds(60), interval: .milliseconds(20)) { try heldByB() == 0 }
                let tookBack = ContinuousClock.now - killed
                run.row.recovery = tookBack
                run.notes.append(String(format: "B (clock +%d s) killed whole holding %d jobs; released by A %.1f s later (alive_threshold %.0f s)",
                                        skew, held, tookBack.seconds, ChaosRun.aliveThreshold.seconds))
                #expect(tookBack <= ChaosRun.aliveThreshold + .seconds(2), "A took B's jobs back after \(tookBack)")
            }
            try run.drain(timeout: .seconds(120))
            try run.finish()
        }

        /// `faketime -m --exclude-monotonic -f OFFSET`, whose child then reads its offset from
        /// `offsetFile` (re-read every second), so that it can move while the child runs. (The library
        /// alone, in LD_PRELOAD without `faketime`, sets a variable as it loads, and a Swift program
        /// then finds no arguments.)
        static func faketime(offsetFile: String, initial: String) -> [String] {
            ["/usr/bin/faketime", "-m", "--exclude-monotonic", "-f", initial,
             "/usr/bin/env", "-u", "FAKETIME", "FAKETIME_TIMESTAMP_FILE=\(offsetFile)", "FAKETIME_CACHE_DURATION=1"]
        }

        /// The time a log line was stamped with (`time=2026-12-02T02:20:02.123Z`).
        static func timestamp(_ line: Substring) -> Date? {
            guard let range = line.range(of: "time=") else { return nil }
            let text = line[range.upperBound...].prefix { $0 != " " }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: String(text))
        }

        /// How far ahead of this clock `supervisor` stamps the lines it writes from now on: waits
        /// (up to 15 s) for lines stamped within 1.5 s of `expected` seconds off, and returns the
        /// offset of the first.
        static func observedSkew(of supervisor: ChaosSupervisor, near expected: Double) throws -> Double {
            var seen = supervisor.log.count
            var found: Double?
            try waitUntil("B's log lines are stamped \(expected) s off", timeout: .seconds(15), interval: .milliseconds(20)) {
                let log = supervisor.log
                let now = Date()
                defer { seen = log.count }
                for line in log.dropFirst(seen).split(separator: "\n") {
                    if let stamp = timestamp(line), abs(stamp.timeIntervalSince(now) - expected) < 1.5 {
                        found = stamp.timeIntervalSince(now)
                        return true
                    }
                }
                return false
            }
            return found!
        }
    }
}
