import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover bench`, run as a real process: the real supervisor, workers and database.
@Suite("drover bench")
struct BenchCommandTests {
    struct Summary: Decodable {
        let jobs: Int
        let jobs_per_s: Double?
        let enqueue_jobs_per_s: Double?
        let latency_ms: [String: Double]?
        let supervisor_rss_kib: Int
        let worker_idle_rss_kib: Int
        let supervisor_pss_kib: Int
        let worker_idle_pss_kib: Int
        let runs: [Run]
        struct Run: Decodable { let jobs_per_s: Double? }
    }

    func summary(of outcome: DroverBinary.Outcome) throws -> Summary {
        let last = try #require(outcome.stdout.split(separator: "\n").last, "\(outcome)")
        return try JSONDecoder().decode(Summary.self, from: Data(last.utf8))
    }

    @Test("on PostgreSQL: burns down the jobs in a fresh schema, measures latency, prints JSON, and drops the schema")
    func postgres() throws {
        let url = try TestDatabase.url()
        let outcome = try DroverBinary.run(
            ["bench", "--database-url", url, "--jobs", "3000", "--latency", "20", "--runs", "2", "--backlog", "500"],
            timeout: .seconds(120))
        #expect(outcome.status == 0, "\(outcome)")
        let result = try summary(of: outcome)
        #expect(result.jobs == 3000 && result.runs.count == 2 && result.runs.allSatisfy { ($0.jobs_per_s ?? 0) > 0 })
        #expect((result.jobs_per_s ?? 0) > 0 && (result.enqueue_jobs_per_s ?? 0) > 0)
        let latency = try #require(result.latency_ms)
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["p95"]! && latency["p95"]! <= latency["p99"]!)
        #expect(result.supervisor_rss_kib > 0 && result.worker_idle_rss_kib > 0)
        // Four processes share the binary's pages: each one's share is less than what it maps.
        #expect(result.supervisor_pss_kib > 0 && result.supervisor_pss_kib < result.supervisor_rss_kib)
        #expect(result.worker_idle_pss_kib > 0 && result.worker_idle_pss_kib < result.worker_idle_rss_kib)
        #expect(outcome.stdout.contains("drover bench on PostgreSQL: 3000 no-op jobs, 2 workers × 5 threads"))
        // Ctrl-C while it enqueues: its supervisor stops and its schema goes too. (Here, not in a
        // test of its own: the check below counts every bench schema, and tests run side by side.)
        let interrupted = try interruptWhileRunning(["bench", "--database-url", url, "--jobs", "5000000"])
        let schema = try #require(interrupted.supervisorArguments.drop { $0 != "--schema" }.dropFirst().first)
        #expect(schema.hasPrefix("drover_bench_"))
        let left = try TestDatabase.connect().query("SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'drover_bench_%'")
        #expect(try left[0].decode("n", as: Int.self) == 0, "the fresh schemas are dropped, the interrupted one too")
    }

    /// Starts `arguments`, waits until its supervisor's workers run, sends SIGINT, and expects
    /// exit 130 with the supervisor and its children gone. Returns the supervisor's arguments.
    private func interruptWhileRunning(
        _ arguments: [String], environment: [String: String?] = [:]
    ) throws -> (outcome: DroverBinary.Outcome, supervisorArguments: [String]) {
        let bench = try DroverBinary.start(arguments, environment: environment)
        // Whatever fails below, the bench does not go on enqueueing millions of jobs.
        defer {
            if bench.isRunning {
                kill(bench.pid, SIGINT)
                _ = try? bench.wait(timeout: .seconds(30))
            }
        }
        var supervisor: pid_t = 0
        var children: [pid_t] = []
        try waitUntil("the bench's supervisor runs its two workers and its dispatcher", timeout: .seconds(60), interval: .milliseconds(50)) {
            guard let child = ProcessTable.children(of: bench.pid).first else { return false }
            supervisor = child.pid
            children = ProcessTable.children(of: child.pid).map(\.pid)
            return children.count == 3
        }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(supervisor)/cmdline"))) ?? Data()
        let supervisorArguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        kill(bench.pid, SIGINT)
        let outcome = try bench.wait(timeout: .seconds(60))
        #expect(outcome.status == 130, "\(outcome)")
        #expect(outcome.stderr.contains("drover bench: interrupted in run 1; its supervisor was stopped"), "\(outcome)")
        for pid in [supervisor] + children {
            #expect(kill(pid, 0) != 0 || ProcessTable.entry(pid)?.state == "Z", "process \(pid) of the bench is still running")
        }
        return (outcome, supervisorArguments)
    }

    @Test("Ctrl-C on SQLite: exit 130, its supervisor stopped, its fresh file and directory removed")
    func interruptedOnSQLite() throws {
        let temporary = try TemporaryDirectory("drover-bench-tmp")
        let url = "sqlite://" + temporary.url.appendingPathComponent("unused.sqlite3").path
        let (outcome, _) = try interruptWhileRunning(
            ["bench", "--database-url", url, "--jobs", "5000000"], environment: ["TMPDIR": temporary.url.path])
        #expect(outcome.stdout.contains("drover bench on SQLite"))
        let left = try FileManager.default.contentsOfDirectory(atPath: temporary.url.path).filter { $0.hasPrefix("drover-bench-") }
        #expect(left.isEmpty, "the run's directory is left: \(left)")
    }

    /// A migrated SQLite file in a directory of its own (gone with the directory value).
    private func sqliteFile(_ name: String) throws -> (directory: TemporaryDirectory, url: String, db: SQLiteConnection, store: SQLiteJobStore) {
        let directory = try TemporaryDirectory(name)
        let path = directory.url.appendingPathComponent("q.sqlite3").path
        let (store, db) = try SQLiteDriver.open(url: "sqlite://" + path, options: StoreOptions())
        return (directory, "sqlite://" + path, db, store)
    }

    @Test("--keep on a SQLite file burns down the backlog already there and leaves the file")
    func keepBacklog() throws {
        let (directory, url, db, store) = try sqliteFile("drover-bench-keep")
        defer { withExtendedLifetime(directory) {} }
        _ = try store.enqueue((0..<700).map { _ in NewJob("drover.test.noop", queue: "bench") }, on: db)
        let outcome = try DroverBinary.run(["bench", "--database-url", url, "--keep", "--jobs", "300"], timeout: .seconds(120))
        #expect(outcome.status == 0, "\(outcome)")
        #expect(try summary(of: outcome).jobs_per_s ?? 0 > 0)
        let finished = try store.listJobs(queue: "bench", state: .finished, className: nil, limit: 10_000, on: db)
        #expect(finished.count == 1000, "the 700 waiting and the 300 new")
        #expect(try store.listQueues(on: db).allSatisfy { !$0.paused }, "the queue it paused while enqueueing is resumed")
    }

    @Test("--keep on a paused bench queue stops at once and says how to resume it")
    func pausedQueue() throws {
        let (directory, url, db, store) = try sqliteFile("drover-bench-paused")
        defer { withExtendedLifetime(directory) {} }
        #expect(try store.pause("bench", on: db))
        let outcome = try DroverBinary.run(["bench", "--database-url", url, "--keep", "--jobs", "10"], timeout: .seconds(60))
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("the queue \"bench\" is paused; resume it (drover queues resume bench)"), "\(outcome)")
        #expect(try store.listQueues(on: db).first { $0.name == "bench" }?.paused == true, "still paused, as it was")
    }

    @Test("bad options exit 64 and say what is allowed")
    func badOptions() throws {
        let outcome = try DroverBinary.run(["bench", "--jobs", "0"])
        #expect(outcome.status == 64 && outcome.stderr.contains("give --jobs or --latency more than 0"), "\(outcome)")
        let workers = try DroverBinary.run(["bench", "--workers", "0"])
        #expect(workers.status == 64 && workers.stderr.contains("--workers 0 is out of range: give 1 to 64"), "\(workers)")
        // Counts at the edge of Int: refused at once, neither a trap (jobs + latency overflowed)
        // nor a run that inserts for ever (--backlog had no bound).
        for (option, value) in [("--jobs", Int.max), ("--latency", Int.max), ("--backlog", Int.max), ("--runs", Int.max), ("--jobs", -1)] {
            let outcome = try DroverBinary.run(["bench", "\(option)=\(value)"], timeout: .seconds(10))
            #expect(outcome.status == 64 && outcome.stderr.contains("\(option) \(value) is out of range"), "\(option) \(value): \(outcome)")
        }
    }
}
