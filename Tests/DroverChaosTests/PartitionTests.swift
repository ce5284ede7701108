import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

extension ChaosTests {
    /// Issue 16, points 8.2 and 8.4: hosts of their own (network namespaces, ``NetworkHosts``)
    /// reaching a PostgreSQL of the test's own over TCP, and a path to it cut by dropping packets.
    @Suite("Chaos: hosts cut off from PostgreSQL")
    struct PartitionTests {
        /// Host A runs long command jobs, then loses its path to PostgreSQL for 3 × alive_threshold
        /// (packets dropped, no reset) while its commands could go on ticking. Host B must take A's
        /// jobs over, and must never start one while A's copy still runs: A stops its commands when
        /// it cannot renew its lease, before the lease runs out and B may take them.
        @Test("host A cut off from PostgreSQL for 3 × alive_threshold: host B takes its jobs over, never while A still runs them")
        func partition() throws {
            let network = try NetworkHosts(["A", "B"])
            let cluster = try PrivateCluster(listeningOn: network.hosts.map(\.hostAddress), trusting: network.hosts.map(\.network))
            try withExtendedLifetime((network, cluster)) {
                let a = network["A"]
                let b = network["B"]
                let run = try ChaosRun("partition A 3 × alive_threshold", backend: .postgresql(url: cluster.url))
                let hostA = try run.addSupervisor(
                    "A", config: ChaosRun.config(workers: 1, threads: 6, extra: run.tickHandlers(host: "A")),
                    url: cluster.url(overTCP: a.hostAddress), wrapper: a.exec)
                // Six jobs of 10 s, all on A (B is not up yet); then B, idle, on the same schema.
                let jobs = try run.enqueueTicks(6, ticks: 100)
                try waitUntil("host A runs every job", timeout: .seconds(30)) {
                    let attempts = run.tickAttempts()
                    return jobs.allSatisfy { attempts[$0]?.first?.runner == "A" }
                }
                try run.addSupervisor(
                    "B", config: ChaosRun.config(workers: 1, threads: 6, extra: run.tickHandlers(host: "B")),
                    url: cluster.url(overTCP: b.hostAddress), wrapper: b.exec)

                try network.partition(a)
                let cutAt = realtimeNanoseconds()
                run.row.faults += 1
                Thread.sleep(forTimeInterval: (ChaosRun.aliveThreshold * 3).seconds)  // the fault's stated duration
                try network.heal(a)
                let healedAt = realtimeNanoseconds()
                try run.drain(timeout: .seconds(90))

                // Per job: when B started it, and the gap between A's last record and B's start.
                let attempts = run.tickAttempts()
                var takeovers: [Double] = []
                var gaps: [String] = []
                for id in jobs {
                    let runs = attempts[id, default: []]
                    guard let onB = runs.first(where: { $0.runner == "B" && $0.start > cutAt }) else {
                        gaps.append("job \(id): not taken over by B")
                        continue
                    }
                    takeovers.append(Double(onB.start - cutAt) / 1e9)
                    let onA = runs.filter { $0.runner == "A" && $0.start < onB.start }
                    let lastOnA = onA.map(\.end).max() ?? cutAt
                    let how = onA.last.map { $0.completed ? "end" : $0.termed ? "term" : "killed" } ?? "-"
                    gaps.append(String(format: "job %d %+.0f ms (A's %@)", id, Double(onB.start - lastOnA) / 1e6, how))
                }
                if let last = takeovers.max() { run.row.recovery = .milliseconds(Int64(last * 1000)) }
                run.notes.append(String(format: "B started A's %d jobs %.1f–%.1f s after the cut (healed after %.1f s)", takeovers.count,
                                        takeovers.min() ?? 0, takeovers.max() ?? 0, Double(healedAt - cutAt) / 1e9))
                run.notes.append("gap between A's last record and B's start: " + gaps.joined(separator: ", "))
                // A's own supervisor may have been taken for dead meanwhile (it could not heartbeat
                // either): it stops with 70, and systemd would start it again. Do that, and say so.
                if !hostA.process.isRunning {
                    let outcome = try hostA.process.wait(timeout: .seconds(5))
                    run.notes.append("A's supervisor exited with \(outcome.status) after the partition; started again")
                    try hostA.startAgain()
                    try hostA.waitForReady()
                }
                try run.finish()
                #expect(takeovers.count == jobs.count, "B did not take every job of A over: \(gaps)")
                #expect(takeovers.allSatisfy { $0 < (ChaosRun.aliveThreshold * 3).seconds }, "B took A's jobs over only after the path came back")
            }
        }

        /// A worker's LISTEN connection loses its path for 8 s (packets dropped, no reset), with jobs
        /// enqueued meanwhile, then the path comes back. Polling is an hour, so only a notification
        /// or a new connection can start a job: within one heartbeat of the path's return the
        /// enqueue-to-start latency must be back to milliseconds.
        @Test("a LISTEN connection whose packets are dropped for a while: enqueue-to-start latency back to milliseconds within a heartbeat")
        func silentListen() throws {
            let network = try NetworkHosts(["A"])
            let a = network["A"]
            let cluster = try PrivateCluster(listeningOn: [a.hostAddress], trusting: [a.network])
            try withExtendedLifetime((network, cluster)) {
                let run = try ChaosRun("LISTEN path dropped 8 s, then healed", backend: .postgresql(url: cluster.url))
                try run.addSupervisor(
                    "A", config: ChaosRun.config(workers: 1, threads: 2, polling: "1h", dispatcher: false),
                    url: cluster.url(overTCP: a.hostAddress), wrapper: a.exec)
                let before = try probeLatencies(run, count: 5)

                try network.partition(a)
                run.row.faults += 1
                Thread.sleep(forTimeInterval: 1)
                let during = try run.enqueueProbes(3)
                Thread.sleep(forTimeInterval: 7)  // the fault's stated duration: 8 s in all
                try network.heal(a)
                let healedAt = realtimeNanoseconds()
                let healed = ContinuousClock.now
                // From one heartbeat after the path came back: new jobs start within milliseconds.
                let wait = ChaosRun.heartbeatInterval - (ContinuousClock.now - healed)
                if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
                let after = try probeLatencies(run, count: 5)
                // The jobs enqueued while it was cut off: when they started, after the path came back.
                try waitUntil("the jobs enqueued during the cut started", timeout: .seconds(60), interval: .milliseconds(5)) {
                    let starts = run.auditStarts()
                    return during.allSatisfy { starts[$0] != nil }
                }
                let starts = run.auditStarts()
                let backlog = during.compactMap { starts[$0] }.map { Double($0 - healedAt) / 1e9 }
                run.row.recovery = .milliseconds(Int64((backlog.max() ?? 0) * 1000))

                func list(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: ", ") }
                run.notes.append("enqueue→start before the cut (ms): \(list(before))")
                run.notes.append(String(format: "jobs enqueued during the cut started %@ s after the path came back", list(backlog)))
                run.notes.append("enqueue→start from one heartbeat after the path came back (ms): \(list(after))")
                try run.finish()
                #expect(after.allSatisfy { $0 < 100 }, "enqueue→start after the path came back: \(after) ms")
                #expect((backlog.max() ?? .infinity) < (ChaosRun.heartbeatInterval * 2).seconds,
                        "jobs enqueued during the cut started \(backlog) s after the path came back")
            }
        }

        /// Enqueues `count` probe jobs one after another, each once the last has started, and
        /// returns each one's enqueue-to-start latency in milliseconds.
        func probeLatencies(_ run: ChaosRun, count: Int) throws -> [Double] {
            var latencies: [Double] = []
            for _ in 0..<count {
                let enqueuedAt = realtimeNanoseconds()
                let id = try run.enqueueProbes(1)[0]
                try waitUntil("probe \(id) started", timeout: .seconds(60), interval: .milliseconds(2)) { run.auditStarts()[id] != nil }
                latencies.append(Double(run.auditStarts()[id]! - enqueuedAt) / 1e6)
            }
            return latencies
        }
    }
}

extension ChaosRun {
    /// Enqueues `count` audit jobs that do no work (probes of enqueue-to-start latency).
    func enqueueProbes(_ count: Int) throws -> [Int] {
        let before = ids.count
        try enqueue(count, ms: 0)
        return Array(ids[before...])
    }

    /// When each audit job first started (CLOCK_REALTIME ns), by its audit line.
    func auditStarts() -> [Int: Int64] {
        var starts: [Int: Int64] = [:]
        let text = (try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, let job = Int(fields[0]), let start = Int64(fields[3]) else { continue }
            starts[job] = min(starts[job] ?? .max, start)
        }
        return starts
    }
}
