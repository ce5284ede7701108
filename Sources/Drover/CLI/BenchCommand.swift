import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation
import Synchronization

/// `drover bench`: burns N no-op jobs down through the real supervisor, worker processes and
/// database, showing progress on a terminal and printing one final JSON line (in the spirit of `river bench`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure jobs/s through drover start (real processes, no-op jobs), and the enqueue-to-start latency.",
        discussion: """
            Without --keep, each run gets a fresh schema (PostgreSQL) or file (SQLite), dropped \
            afterwards; with --keep, the database in use as it is, and nothing is dropped. It \
            enqueues --jobs no-op jobs (drover.test.noop, in statements of 10,000; their rate is \
            reported as enqueue jobs/s) on the queue "bench", paused meanwhile, into drover start \
            running --workers times --threads; then it resumes the queue and times from there to the \
            last finish (the burn-down of a backlog, as river bench measures it). --backlog leaves that many \
            jobs waiting in another queue, for a table that is not empty. --latency runs that many \
            jobs one after another on the idle system and reports enqueue-to-start percentiles. Memory \
            is the resident size (RSS) of the supervisor and of a worker, idle and busy, and their \
            proportional share (PSS), which counts a page shared with the other processes as a fraction.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "No-op jobs to burn down per run.") var jobs = 100_000
    @Option(help: "Worker processes.") var workers = 2
    @Option(help: "Threads per worker.") var threads = 5
    @Option(help: "Runs; medians are reported.") var runs = 1
    @Option(help: "Jobs left waiting in another queue during the run.") var backlog = 0
    @Option(help: "Jobs run one at a time on the idle system to measure enqueue-to-start latency.") var latency = 0
    @Flag(help: "Run on the database in use as it is (an existing backlog), and drop nothing.") var keep = false
    @Flag(help: "Enqueue the --jobs as one batch with an on_complete callback, and report how long after the last job the callback finished.")
    var batch = false

    /// Each count's range: a typo of a few digits is refused, not run for days.
    static let ranges: [(name: String, range: ClosedRange<Int>)] = [
        ("--jobs", 0...100_000_000), ("--backlog", 0...100_000_000), ("--latency", 0...1_000_000),
        ("--workers", 1...64), ("--threads", 1...256), ("--runs", 1...100),
    ]

    func validate() throws {
        for ((name, range), value) in zip(Self.ranges, [jobs, backlog, latency, workers, threads, runs]) where !range.contains(value) {
            throw ValidationError("\(name) \(value) is out of range: give \(range.lowerBound) to \(range.upperBound)")
        }
        guard jobs > 0 || latency > 0 else {
            throw ValidationError("give --jobs or --latency more than 0")
        }
    }

    func run() throws {
        let location = try reportingErrors { try database.resolve() }
        var results: [BenchRun.Result] = []
        try reportingErrors(location: location) {
            let name = location.isSQLite ? "SQLite" : "PostgreSQL"
            say("drover bench on \(name): \(jobs) no-op jobs, \(workers) workers × \(threads) threads, "
                  + "backlog \(backlog), latency \(latency), \(runs) run\(runs == 1 ? "" : "s")")
            BenchRun.catchInterrupts()
            for number in 1...runs {
                let run = BenchRun(options: self, location: location)
                do {
                    let result = try run.onFreshStore(StoreFactory.driver(for: location.connectionString), keep: keep)
                    say("run \(number): " + result.summary)
                    results.append(result)
                } catch is BenchInterrupted {
                    // Its supervisor stopped and its schema (or file) dropped on the way out.
                    printError("drover bench: interrupted in run \(number); its supervisor was stopped and "
                               + (keep ? "nothing was dropped (--keep)" : "its fresh \(location.isSQLite ? "file" : "schema") removed"))
                    throw ExitCode(130)
                }
            }
        }
        try printJSON(BenchSummary(options: self, database: location.isSQLite ? "sqlite" : "postgresql", runs: results))
    }
}

/// Writes a line to stdout at once (print's buffer would hold progress lines back from a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The final JSON line: the options, the medians (a run's fields, at the top level), and every run.
private struct BenchSummary: Encodable {
    let benchmark = "drover bench"
    let database: String
    let jobs: Int
    let workers: Int
    let threads: Int
    let backlog: Int
    let medians: BenchRun.Result
    let runs: [BenchRun.Result]

    enum CodingKeys: String, CodingKey {
        case benchmark, database, jobs, workers, threads, backlog, runs
    }

    init(options: BenchCommand, database: String, runs: [BenchRun.Result]) {
        self.database = database
        jobs = options.jobs
        workers = options.workers
        threads = options.threads
        backlog = options.backlog
        self.runs = runs
        func median(_ values: [Double]) -> Double? {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return nil }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        func median(_ field: KeyPath<BenchRun.Result, Int>) -> Int { Int(median(runs.map { Double($0[keyPath: field]) }) ?? 0) }
        var medians = BenchRun.Result()
        medians.enqueueJobsPerSecond = median(runs.compactMap(\.enqueueJobsPerSecond)).map { $0.rounded() }
        medians.jobsPerSecond = median(runs.compactMap(\.jobsPerSecond)).map { $0.rounded() }
        medians.batchCallbackMilliseconds = median(runs.compactMap(\.batchCallbackMilliseconds))
        let latencies = runs.compactMap(\.latencyMilliseconds)
        medians.latencyMilliseconds = latencies.isEmpty ? nil : Dictionary(uniqueKeysWithValues: ["p50", "p95", "p99", "max"].map { key in
            (key, ((median(latencies.compactMap { $0[key] }) ?? 0) * 1000).rounded() / 1000)
        })
        medians.supervisorRSSKiB = median(\.supervisorRSSKiB)
        medians.workerIdleRSSKiB = median(\.workerIdleRSSKiB)
        medians.workerBusyRSSKiB = median(runs.compactMap { $0.workerBusyRSSKiB.map(Double.init) }).map(Int.init)
        medians.supervisorPSSKiB = median(\.supervisorPSSKiB)
        medians.workerIdlePSSKiB = median(\.workerIdlePSSKiB)
        self.medians = medians
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(benchmark, forKey: .benchmark)
        try container.encode(database, forKey: .database)
        try container.encode(jobs, forKey: .jobs)
        try container.encode(workers, forKey: .workers)
        try container.encode(threads, forKey: .threads)
        try container.encode(backlog, forKey: .backlog)
        try container.encode(runs, forKey: .runs)
        try medians.encode(to: encoder)
    }
}

/// Ctrl-C (or TERM) during `drover bench`.
struct BenchInterrupted: Error {}

/// One run: a store (fresh or kept), a supervisor, the burn-down, the latency.
struct BenchRun {
    static let supervisorPID = Atomic<Int32>(0)
    private static let interrupted = Atomic<Bool>(false)

    /// From now on Ctrl-C and TERM stop the run's supervisor at once and ask the run to end at its
    /// next check, through its cleanup (the supervisor waited for, the fresh schema or file
    /// removed); a second one ends the process at once.
    static func catchInterrupts() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for signal in [SIGINT, SIGTERM] {
            Glibc.signal(signal) { received in
                BenchRun.interrupted.store(true, ordering: .relaxed)
                let pid = BenchRun.supervisorPID.load(ordering: .relaxed)
                if pid > 0 { kill(pid, SIGQUIT) }
                Glibc.signal(received, SIG_DFL)
            }
        }
    }

    /// Throws once an interrupt came: each loop of a run asks between its steps.
    static func checkInterrupted() throws {
        if interrupted.load(ordering: .relaxed) { throw BenchInterrupted() }
    }
    let options: BenchCommand
    let location: DatabaseLocation
    static let queue = "bench"

    struct Result: Encodable {
        var enqueueJobsPerSecond: Double?
        var jobsPerSecond: Double?
        var latencyMilliseconds: [String: Double]?
        /// With --batch: from the last job's finish to its batch's callback's, in ms.
        var batchCallbackMilliseconds: Double?
        var supervisorRSSKiB = 0
        var workerIdleRSSKiB = 0
        var workerBusyRSSKiB: Int?
        /// The proportional share (PSS): each page shared with the other processes (the same
        /// binary, the same libraries) counted as a fraction, so what each process costs the host.
        var supervisorPSSKiB = 0
        var workerIdlePSSKiB = 0

        enum CodingKeys: String, CodingKey {
            case enqueueJobsPerSecond = "enqueue_jobs_per_s"
            case jobsPerSecond = "jobs_per_s"
            case latencyMilliseconds = "latency_ms"
            case batchCallbackMilliseconds = "batch_callback_ms"
            case supervisorRSSKiB = "supervisor_rss_kib"
            case workerIdleRSSKiB = "worker_idle_rss_kib"
            case workerBusyRSSKiB = "worker_busy_rss_kib"
            case supervisorPSSKiB = "supervisor_pss_kib"
            case workerIdlePSSKiB = "worker_idle_pss_kib"
        }

        var summary: String {
            var parts: [String] = []
            if let enqueueJobsPerSecond { parts.append(String(format: "enqueue %.0f jobs/s", enqueueJobsPerSecond)) }
            if let jobsPerSecond { parts.append(String(format: "burn-down %.0f jobs/s", jobsPerSecond)) }
            if let batchCallbackMilliseconds { parts.append(String(format: "callback %.1f ms after the last job", batchCallbackMilliseconds)) }
            if let latency = latencyMilliseconds {
                parts.append(String(format: "enqueue→start p50 %.2f ms, p95 %.2f ms, p99 %.2f ms", latency["p50"] ?? 0,
                                    latency["p95"] ?? 0, latency["p99"] ?? 0))
            }
            parts.append("RSS supervisor \(supervisorRSSKiB) KiB, worker \(workerIdleRSSKiB) KiB idle"
                         + (workerBusyRSSKiB.map { ", \($0) KiB busy" } ?? "")
                         + "; PSS supervisor \(supervisorPSSKiB) KiB, worker \(workerIdlePSSKiB) KiB idle")
            return parts.joined(separator: "; ")
        }
    }

    /// Runs on a fresh schema or file (dropped afterwards), or on the database in use with `keep`.
    func onFreshStore<Driver: StoreDriver>(_: Driver.Type, keep: Bool) throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drover-bench-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var url = location.connectionString
        var schema = location.schema
        if !keep {
            if location.isSQLite {
                url = "sqlite://" + directory.appendingPathComponent("bench.sqlite3").path
            } else {
                schema = "drover_bench_" + String(UInt32.random(in: 0 ... .max), radix: 36)
            }
        }
        let (store, db) = try Driver.open(
            url: url, options: StoreOptions(schema: schema, applicationName: "drover bench", migrating: .always))
        // A PostgreSQL schema of its own goes; a SQLite file goes with its directory.
        defer { if !keep, let postgres = db as? Connection { _ = try? postgres.execute("DROP SCHEMA \(SQLIdentifier(schema)) CASCADE") } }
        return try run(store: store, db: db, url: url, schema: schema, directory: directory)
    }

    private func run<Driver: StoreDriver>(
        store: JobStore<Driver>, db: Driver.Database, url: String, schema: String, directory: URL
    ) throws -> Result {
        var result = Result()
        if options.backlog > 0 {
            try enqueue(options.backlog, className: "drover.test.noop", queue: "bench_backlog", store: store, db: db)
        }
        // A burn-down, as river bench measures it: the backlog is all there when the workers start
        // on it. The queue stays paused until the jobs are enqueued and the clock starts; resuming
        // it wakes the workers, as an enqueue does.
        guard try store.pause(Self.queue, on: db) else {
            throw ValidationError("the queue \"\(Self.queue)\" is paused; resume it (drover queues resume \(Self.queue)) and run again")
        }
        var resumed = false
        defer { if !resumed { _ = try? store.resume(Self.queue, on: db) } }
        let config = directory.appendingPathComponent("drover.yml").path
        try """
            workers:
              - queues: [\(Self.queue)]
                threads: \(options.threads)
                processes: \(options.workers)
            dispatchers:
              - polling_interval: 1s
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        let supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        supervisor.arguments = ["start", "--config", config, "--schema", schema]
        var environment = ProcessInfo.processInfo.environment
        // Not in argv, which every user can read (ps): the URL may hold a password.
        environment["DROVER_DATABASE_URL"] = url
        environment["DROVER_TEST_HANDLERS"] = "1"
        environment["NOTIFY_SOCKET"] = nil
        supervisor.environment = environment
        let logPath = directory.appendingPathComponent("drover.log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        supervisor.standardError = log
        supervisor.standardOutput = log
        try supervisor.run()
        // Interrupted, the benchmark takes its supervisor with it (SIGQUIT from the handler).
        BenchRun.supervisorPID.store(supervisor.processIdentifier, ordering: .relaxed)
        defer {
            BenchRun.supervisorPID.store(0, ordering: .relaxed)
            if supervisor.isRunning {
                kill(supervisor.processIdentifier, SIGTERM)
                supervisor.waitUntilExit()
            }
        }
        try BenchRun.checkInterrupted()
        let processes: SQLIdentifier = store.schema.qualifying("processes")
        // This supervisor's workers (with --keep, others may share the database).
        func ours(_ columns: SQL) -> SQL {
            """
            SELECT \(columns) FROM \(processes) WHERE kind = 'worker' AND supervisor_id IN (
                SELECT id FROM \(processes) WHERE kind = 'supervisor' AND pid = \(Int(supervisor.processIdentifier)))
            """
        }
        try waitFor("the supervisor's children to register", timeout: .seconds(60)) {
            guard supervisor.isRunning else {
                try BenchRun.checkInterrupted()
                throw ValidationError("drover start exited with status \(supervisor.terminationStatus); its log: "
                                      + ((try? String(contentsOf: directory.appendingPathComponent("drover.log"), encoding: .utf8)) ?? ""))
            }
            return try db.fetch(ours("count(*) AS n"))[0].decode("n", as: Int.self) == options.workers
        }
        let workerPIDs = try db.fetch(ours("pid")).map { pid_t(try $0.decode("pid", as: Int.self)) }
        // Settled: the children have connected and done their first turn.
        Thread.sleep(forTimeInterval: 0.5)
        result.supervisorRSSKiB = Self.rss(supervisor.processIdentifier)
        result.workerIdleRSSKiB = Self.rss(workerPIDs[0])
        result.supervisorPSSKiB = Self.pss(supervisor.processIdentifier)
        result.workerIdlePSSKiB = Self.pss(workerPIDs[0])

        // The jobs of the queue "bench" not finished yet (with --keep, a backlog may be there already).
        let remainingSQL: SQL = """
            SELECT (SELECT count(*) FROM \(store.schema.qualifying("ready_executions")) WHERE queue_name = \(Self.queue))
                 + (SELECT count(*) FROM \(store.schema.qualifying("claimed_executions")) c
                    JOIN \(store.schema.qualifying("jobs")) j ON j.id = c.job_id WHERE j.queue_name = \(Self.queue)) AS n
            """
        let backlogInQueue = try db.fetch(remainingSQL)[0].decode("n", as: Int.self)
        var batchID: Int?
        let total = backlogInQueue + options.jobs
        if total > 0 {
            if options.jobs > 0 {
                let enqueueStart = ContinuousClock.now
                if options.batch {
                    // One transaction: the batch, its jobs, and the callback (in the same queue, so the run waits for it).
                    batchID = try store.enqueueBatch(
                        NewBatch(description: "drover bench", onComplete: "drover.test.noop", callbackQueue: Self.queue),
                        jobs: (0..<options.jobs).map { _ in NewJob("drover.test.noop", queue: Self.queue) }, on: db).batchID
                } else {
                    try enqueue(options.jobs, className: "drover.test.noop", queue: Self.queue, store: store, db: db)
                }
                result.enqueueJobsPerSecond = Double(options.jobs) / (ContinuousClock.now - enqueueStart).seconds
            }
            let start = ContinuousClock.now
            _ = try store.resume(Self.queue, on: db)
            resumed = true
            // Whether any job of the queue is left: two index probes, cheap enough to ask often.
            // (Counting them costs a scan: that is done only for the progress line, every 2 s, so
            // that the benchmark does not slow what it measures.)
            let leftSQL: SQL = """
                SELECT EXISTS (SELECT 1 FROM \(store.schema.qualifying("ready_executions")) WHERE queue_name = \(Self.queue))
                    OR EXISTS (SELECT 1 FROM \(store.schema.qualifying("claimed_executions")) c
                               JOIN \(store.schema.qualifying("jobs")) j ON j.id = c.job_id WHERE j.queue_name = \(Self.queue)) AS left
                """
            var lastReport = start
            // On a terminal, a progress line on stderr (nothing of it in a pipe or a file).
            var progress = ProgressLine(json: false)
            while try db.fetch(leftSQL)[0].decode("left", as: Bool.self) {
                try BenchRun.checkInterrupted()
                if ContinuousClock.now - lastReport >= .seconds(2) {
                    if progress.enabled {
                        let done = total - (try db.fetch(remainingSQL)[0].decode("n", as: Int.self))
                        progress.update("finished", done, of: total)
                    }
                    if result.workerBusyRSSKiB == nil { result.workerBusyRSSKiB = Self.rss(workerPIDs[0]) }
                    lastReport = .now
                }
                guard supervisor.isRunning else {
                    try BenchRun.checkInterrupted()
                    throw ValidationError("drover start exited during the run")
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            progress.finish()
            result.jobsPerSecond = Double(total) / (ContinuousClock.now - start).seconds
            if let batchID, let callback = try store.batch(batchID, on: db)?.completeJobID {
                // From the last job's finish to the callback's, by the database's times.
                let times = try db.fetch("""
                    SELECT (SELECT max(finished_at) FROM \(store.schema.qualifying("jobs")) WHERE batch_id = \(batchID)) AS last,
                           (SELECT finished_at FROM \(store.schema.qualifying("jobs")) WHERE id = \(callback)) AS called
                    """)[0]
                if let last = try times.decode("last", as: Date?.self), let called = try times.decode("called", as: Date?.self) {
                    result.batchCallbackMilliseconds = (called.timeIntervalSince(last) * 1000 * 10).rounded() / 10
                }
            }
            if result.workerBusyRSSKiB == nil { result.workerBusyRSSKiB = Self.rss(workerPIDs[0]) }
        }
        if !resumed {
            _ = try store.resume(Self.queue, on: db)
            resumed = true
        }
        if options.latency > 0 {
            result.latencyMilliseconds = try measureLatency(store: store, db: db, directory: directory)
        }
        kill(supervisor.processIdentifier, SIGTERM)
        supervisor.waitUntilExit()
        return result
    }

    private func enqueue<Driver: StoreDriver>(
        _ count: Int, className: String, queue: String, store: JobStore<Driver>, db: Driver.Database
    ) throws {
        var enqueued = 0
        while enqueued < count {
            try BenchRun.checkInterrupted()
            let batch = min(10_000, count - enqueued)
            _ = try store.enqueue((0..<batch).map { _ in NewJob(className, queue: queue) }, on: db)
            enqueued += batch
        }
    }

    /// Enqueues jobs one at a time on the idle system; each records when it started (the audit
    /// handler), and the next is enqueued once it has. Percentiles of start − enqueue, in ms.
    private func measureLatency<Driver: StoreDriver>(
        store: JobStore<Driver>, db: Driver.Database, directory: URL
    ) throws -> [String: Double] {
        let audit = directory.appendingPathComponent("audit").path
        FileManager.default.createFile(atPath: audit, contents: nil)
        let reader = try FileHandle(forReadingFrom: URL(fileURLWithPath: audit))
        let arguments = try JSON(encoding: ["file": audit])
        var samples: [Double] = []
        var buffer = ""
        for _ in 0..<options.latency {
            try BenchRun.checkInterrupted()
            var before = timespec()
            clock_gettime(CLOCK_REALTIME, &before)
            let enqueuedAt = Int64(before.tv_sec) * 1_000_000_000 + Int64(before.tv_nsec)
            _ = try store.enqueue([NewJob("drover.test.audit", arguments: arguments, queue: Self.queue)], on: db)
            let deadline = ContinuousClock.now + .seconds(10)
            while !buffer.contains("\n") {
                try BenchRun.checkInterrupted()
                buffer += String(decoding: reader.availableData, as: UTF8.self)
                guard ContinuousClock.now < deadline else { throw ValidationError("a latency job did not start within 10 s") }
                if !buffer.contains("\n") { usleep(50) }
            }
            let line = buffer.prefix { $0 != "\n" }
            buffer.removeFirst(line.count + 1)
            guard let startedAt = line.split(separator: " ").last.flatMap({ Int64($0) }) else {
                throw ValidationError("the audit line \"\(line)\" has no start time")
            }
            samples.append(Double(startedAt - enqueuedAt) / 1_000_000)
        }
        samples.sort()
        func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int((p * Double(samples.count)).rounded(.up)) - 1)] }
        return ["p50": percentile(0.5), "p95": percentile(0.95), "p99": percentile(0.99), "max": samples.last ?? 0]
    }

    static func pss(_ pid: pid_t) -> Int {
        let rollup = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
        let line = rollup.split(separator: "\n").first { $0.hasPrefix("Pss:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func rss(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    private func waitFor(_ what: String, timeout: Duration, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            try BenchRun.checkInterrupted()
            if try condition() { return }
            guard ContinuousClock.now < deadline else { throw ValidationError("timed out waiting for \(what)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
