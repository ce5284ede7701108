import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The issue's burst: 1,000 jobs on one key limited to 10 a second, run by two supervisors (a
/// worker of 5 threads and a dispatcher each) on one database. About 100 s on each backend; the
/// two run side by side.
@Suite("Rate limits across supervisors: a burst of 1,000 jobs at 10 a second")
struct RateLimitBurstTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case postgresql, sqlite
        var testDescription: String { rawValue }
    }

    static func config(_ directory: String) -> String {
        """
        workers:
          - queues: ["*"]
            threads: 5
            polling_interval: 1s
        dispatchers:
          - polling_interval: 1s
        \(SupervisorHarness.fastSupervisor)
        handlers:
          Call:
            command: [/bin/sh, -c, 'echo "$DROVER_JOB_ID $PPID $(date +%s.%N)" >> starts']
            working_directory: \(directory)
            rate_limit: {key: api, limit: 10, period: 1s}
        """
    }

    /// The most of `times` in any window `(t - period, t]`.
    static func busiest(_ times: [Double], period: Double = 1) -> Int {
        let sorted = times.sorted()
        var most = 0
        var first = 0
        for (index, time) in sorted.enumerated() {
            while sorted[first] <= time - period { first += 1 }
            most = max(most, index - first + 1)
        }
        return most
    }

    @Test("at most 10 start in any second, by the database's record and by the jobs' own clocks; all 1,000 finish, each once, on both hosts",
          .timeLimit(.minutes(6)), arguments: Backend.allCases)
    func burst(_ backend: Backend) throws {
        let directory = try TemporaryDirectory("drover-rate")
        let config = try directory.file(Self.config(directory.url.path))
        switch backend {
        case .postgresql:
            try TestDatabase.withSchema { schema, _ in
                let url = try TestDatabase.url()
                try run(PostgresDriver.self, url: url, schema: schema, flags: ["--database-url", url, "--schema", schema],
                        config: config, directory: directory)
            }
        case .sqlite:
            let url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
            try run(SQLiteDriver.self, url: url, schema: "drover", flags: ["--database-url", url], config: config, directory: directory)
        }
    }

    private func run<D: StoreDriver>(
        _: D.Type, url: String, schema: String, flags: [String], config: String, directory: TemporaryDirectory
    ) throws {
        let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, applicationName: "drover-tests", migrating: .always))
        let listeners = try (0..<2).map { _ in try NotifyListener() }
        let supervisors = try listeners.map { listener in
            try DroverBinary.start(["start", "--config", config] + flags, environment: ["NOTIFY_SOCKET": listener.path])
        }
        defer {
            for process in supervisors {
                for child in ProcessTable.children(of: process.pid) { kill(child.pid, SIGKILL) }
                kill(process.pid, SIGKILL)
                _ = try? process.wait(timeout: .seconds(10))
            }
        }
        for (process, listener) in zip(supervisors, listeners) {
            do {
                _ = try listener.waitFor("READY=1", timeout: .seconds(60)) { $0.fields["READY"] == "1" }
            } catch {
                Issue.record("a supervisor did not come up: \(error)\n\(process.stderrSoFar)")
                return
            }
        }
        let ids = try store.enqueue((0..<1000).map { _ in NewJob("Call") }, on: db)
        // The database's record of each start (kept a minute): read often enough to see them all.
        var recorded: [Int: [Date]] = [:]
        var seen = Set<String>()
        let began = ContinuousClock.now
        try waitUntil("the 1,000 jobs finished", timeout: .seconds(240), interval: .seconds(2)) {
            for start in try store.rateLimitStarts(on: db) where seen.insert("\(start.jobID) \(start.at.timeIntervalSince1970)").inserted {
                recorded[start.jobID, default: []].append(start.at)
            }
            let finished = try db.fetch("SELECT count(*) AS n FROM \(store.table("jobs")) WHERE finished_at IS NOT NULL")[0].decode("n", as: Int.self)
            return finished == ids.count
        }
        let elapsed = ContinuousClock.now - began
        for start in try store.rateLimitStarts(on: db) where seen.insert("\(start.jobID) \(start.at.timeIntervalSince1970)").inserted {
            recorded[start.jobID, default: []].append(start.at)
        }

        // By the database: every job let through once, never more than 10 in a window of a
        // second and its guard.
        #expect(recorded.count == 1000 && recorded.values.allSatisfy { $0.count == 1 }, "\(recorded.count) jobs recorded as started")
        let recordedTimes = recorded.values.flatMap { $0.map(\.timeIntervalSince1970) }
        let busiestRecorded = Self.busiest(recordedTimes, period: RateLimiter.window(period: 1))
        #expect(busiestRecorded <= 10, "\(busiestRecorded) starts in one window by the database's record")

        // By the jobs themselves: each ran once; the clock each read as it began.
        let lines = try String(contentsOfFile: directory.url.appendingPathComponent("starts").path, encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.count == 1000 && Set(lines.map { $0[0] }).count == 1000, "\(lines.count) runs")
        let workers = Set(lines.map { $0[1] })
        #expect(workers.count == 2, "both hosts' workers ran jobs: \(workers)")
        let observed = lines.compactMap { Double($0[2]) }
        // How long after its record each job read its clock: the claim's commit, then the
        // command's spawn. While that spreads less than the guard (100 ms of a 1 s period), every
        // second by the jobs' clocks holds at most 10; past it, every second less the excess does.
        var delays: [Double] = []
        for line in lines {
            guard let id = Int(line[0]), let at = recorded[id]?.first, let seen = Double(line[2]) else { continue }
            delays.append(seen - at.timeIntervalSince1970)
        }
        delays.sort()
        let delay = { (q: Double) in delays.isEmpty ? 0 : delays[min(delays.count - 1, Int(Double(delays.count) * q))] }
        let spread = delay(1) - delay(0)
        let excess = max(0, spread - RateLimiter.guardTime(period: 1))
        let busiestObserved = Self.busiest(observed, period: 1 - excess)
        #expect(busiestObserved <= 10, "\(busiestObserved) jobs began within \(1 - excess) s by their own clocks")
        let busiestObservedSecond = Self.busiest(observed, period: 1)
        print("""
            claim to command on \(D.backendName): min \(Int(delay(0) * 1000)) ms, median \(Int(delay(0.5) * 1000)) ms, \
            p99 \(Int(delay(0.99) * 1000)) ms, max \(Int(delay(1) * 1000)) ms
            """)
        let span = (observed.max() ?? 0) - (observed.min() ?? 0)
        let recordedSpan = (recordedTimes.max() ?? 0) - (recordedTimes.min() ?? 0)
        // The figures for the docs: how close to the limit the rate came.
        print("""
            rate-limit burst on \(D.backendName): 1000 jobs in \(elapsed); first to last start \(String(format: "%.2f", recordedSpan)) s \
            by the database (\(String(format: "%.2f", 999 / recordedSpan)) starts/s), \(String(format: "%.2f", span)) s by the jobs; \
            busiest second: \(busiestRecorded) recorded, \(busiestObservedSecond) observed
            """)
    }
}
