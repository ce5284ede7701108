import ArgumentParser
import DroverPersistence
import DroverQueue
import Foundation

/// The whole system: `drover start` with workers and a dispatcher, N no-op jobs enqueued in bulk,
/// timed from the first enqueue to the last finish. Also the resident memory of the supervisor and
/// of a worker, idle and after the run.
struct SystemBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Measure jobs/s through drover start (real processes) and the memory of its processes, on PostgreSQL or SQLite.")

    @Option(help: "Jobs per run.") var jobs = 100_000
    @Option(help: "Runs; the medians are reported.") var runs = 3
    @Option(help: "Worker processes.") var workers = 2
    @Option(help: "Threads per worker.") var threads = 5
    @Option(help: "The drover binary (default: next to this one).") var drover: String?
    @Option(help: "Run each job as this command (a handler), such as /bin/true, instead of a no-op in the worker.")
    var command: String?
    @Option(name: .customLong("database-url"), help: "The database (default: $DROVER_TEST_DATABASE_URL).")
    var databaseURL: String?
    @Flag(help: "Run on a SQLite file (a fresh one per run) instead of PostgreSQL.") var sqlite = false

    struct Run {
        let jobsPerSecond: Double
        let supervisorIdleKiB: Int
        let workerIdleKiB: Int
        let workerBusyKiB: Int
        let supervisorAfterKiB: Int
    }

    func run() throws {
        let database = BenchDatabase(sqlite: sqlite, url: databaseURL)
        let binary = drover ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("drover").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw ValidationError("no drover binary at \(binary): build it (swift build -c release) or pass --drover")
        }
        let machine = try database.machine()
        let kind = command.map { "command jobs (\($0))" } ?? "no-op jobs"
        print("drover system benchmark on \(database.name): \(jobs) \(kind), \(workers) workers × \(threads) threads and a dispatcher, \(runs) runs")
        print(machine.summary)
        var results: [Run] = []
        for number in 1...runs {
            let result = try database.withFreshStore(OneSystemRun(benchmark: self, binary: binary))
            results.append(result)
            print(String(format: "run %d: %.0f jobs/s; RSS supervisor %d KiB idle, %d KiB after; worker %d KiB idle, %d KiB busy",
                         number, result.jobsPerSecond, result.supervisorIdleKiB, result.supervisorAfterKiB,
                         result.workerIdleKiB, result.workerBusyKiB))
        }
        let throughput = median(results.map(\.jobsPerSecond))
        func medianKiB(_ path: KeyPath<Run, Int>) -> Int { Int(median(results.map { Double($0[keyPath: path]) })) }
        print("")
        print("measure                          median   runs")
        print(String(format: "jobs/s through the system     %9.0f   %@", throughput, results.map { String(format: "%.0f", $0.jobsPerSecond) }.joined(separator: " ")))
        print(String(format: "supervisor RSS, idle (KiB)    %9d", medianKiB(\.supervisorIdleKiB)))
        print(String(format: "worker RSS, idle (KiB)        %9d", medianKiB(\.workerIdleKiB)))
        print(String(format: "worker RSS, after a run (KiB) %9d", medianKiB(\.workerBusyKiB)))
        let summary: [String: AnyEncodable] = [
            "benchmark": AnyEncodable("system"), "database": AnyEncodable(database.name), "jobs": AnyEncodable(jobs), "runs": AnyEncodable(runs),
            "command": AnyEncodable(command ?? ""),
            "workers": AnyEncodable(workers), "threads": AnyEncodable(threads),
            "jobs_per_s_median": AnyEncodable(throughput.rounded()),
            "jobs_per_s": AnyEncodable(results.map { $0.jobsPerSecond.rounded() }),
            "supervisor_rss_idle_kib_median": AnyEncodable(medianKiB(\.supervisorIdleKiB)),
            "worker_rss_idle_kib_median": AnyEncodable(medianKiB(\.workerIdleKiB)),
            "worker_rss_after_run_kib_median": AnyEncodable(medianKiB(\.workerBusyKiB)),
            "machine": AnyEncodable(machine),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(summary), as: UTF8.self))
    }

    /// Resident memory of `pid`, in KiB.
    static func rss(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}

/// One run of the system benchmark, on a fresh store.
private struct OneSystemRun: StoreRun {
    typealias Output = SystemBenchmark.Run
    let benchmark: SystemBenchmark
    let binary: String
    var jobs: Int { benchmark.jobs }
    var workers: Int { benchmark.workers }
    var threads: Int { benchmark.threads }
    var command: String? { benchmark.command }

    func run<Driver: StoreDriver>(
        store: JobStore<Driver>, admin: Driver.Database, open: @escaping () throws -> Driver.Database, startArguments: [String]
    ) throws -> SystemBenchmark.Run {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drover-bench-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("drover.yml").path
        try """
            workers:
              - queues: ["*"]
                threads: \(threads)
                processes: \(workers)
            dispatchers:
              - polling_interval: 1s
            handlers:
              bench.command:
                command: [\(command ?? "/bin/true")]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)

        let supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: binary)
        supervisor.arguments = ["start", "--config", config] + startArguments
        var environment = ProcessInfo.processInfo.environment
        environment["DROVER_TEST_HANDLERS"] = "1"
        environment["NOTIFY_SOCKET"] = nil
        supervisor.environment = environment
        supervisor.standardError = FileHandle.nullDevice
        try supervisor.run()
        defer {
            if supervisor.isRunning {
                kill(supervisor.processIdentifier, SIGTERM)
                supervisor.waitUntilExit()
            }
        }
        // Ready when every child has registered.
        try waitFor("the children to register") {
            try admin.fetch("SELECT count(*) AS n FROM \(store.schema.qualifying("processes")) WHERE kind <> 'supervisor'")[0]
                .decode("n", as: Int.self) == workers + 1
        }
        Thread.sleep(forTimeInterval: 1)
        let workerPIDs = try admin.fetch("SELECT pid FROM \(store.schema.qualifying("processes")) WHERE kind = 'worker'")
            .map { pid_t(try $0.decode("pid", as: Int.self)) }
        let supervisorIdle = SystemBenchmark.rss(supervisor.processIdentifier)
        let workerIdle = SystemBenchmark.rss(workerPIDs[0])

        let start = ContinuousClock.now
        var enqueued = 0
        while enqueued < jobs {
            let count = min(10_000, jobs - enqueued)
            _ = try store.enqueue((0..<count).map { _ in NewJob(command == nil ? "drover.test.noop" : "bench.command") }, on: admin)
            enqueued += count
        }
        try waitFor("every job to finish", timeout: .seconds(600)) {
            try admin.fetch("SELECT count(*) AS n FROM \(store.schema.qualifying("jobs")) WHERE finished_at IS NOT NULL")[0]
                .decode("n", as: Int.self) == jobs
        }
        let seconds = (ContinuousClock.now - start).seconds
        let workerBusy = SystemBenchmark.rss(workerPIDs[0])
        let supervisorAfter = SystemBenchmark.rss(supervisor.processIdentifier)
        kill(supervisor.processIdentifier, SIGTERM)
        supervisor.waitUntilExit()
        return SystemBenchmark.Run(jobsPerSecond: Double(jobs) / seconds, supervisorIdleKiB: supervisorIdle, workerIdleKiB: workerIdle,
                   workerBusyKiB: workerBusy, supervisorAfterKiB: supervisorAfter)
    }


    private func waitFor(_ what: String, timeout: Duration = .seconds(60), _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw ValidationError("timed out waiting for \(what)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}
