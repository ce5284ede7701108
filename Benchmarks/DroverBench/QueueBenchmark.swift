import ArgumentParser
import DroverPersistence
import DroverQueue
import Foundation
import Synchronization

/// Queue level: bulk-enqueue N jobs, then claim and finish them in batches from several connections
/// as fast as possible. Prints each run, then the medians as a table and one JSON line.
struct QueueBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Measure enqueue and claim+finish throughput of the queue layer, on PostgreSQL or SQLite.")

    @Option(help: "Jobs per run.") var jobs = 100_000
    @Option(help: "Runs; the medians are reported.") var runs = 5
    @Option(help: "Connections claiming and finishing at once.") var claimers = 2
    @Option(help: "Jobs per claim (and per finish).") var batch = 500
    @Option(name: .customLong("enqueue-batch"), help: "Jobs per enqueue statement.") var enqueueBatch = 10_000
    @Option(name: .customLong("database-url"), help: "The database (default: $DROVER_TEST_DATABASE_URL, else libpq's defaults).")
    var databaseURL: String?
    @Flag(help: "Run on a SQLite file (a fresh one per run) instead of PostgreSQL.") var sqlite = false

    struct Run: Encodable {
        let enqueuePerSecond: Double
        let claimFinishPerSecond: Double
    }

    func run() throws {
        let database = BenchDatabase(sqlite: sqlite, url: databaseURL)
        let machine = try database.machine()
        print("drover queue benchmark on \(database.name): \(jobs) jobs, \(claimers) claimers, claim/finish batches of \(batch), \(runs) runs")
        print(machine.summary)
        var results: [Run] = []
        for number in 1...runs {
            let result = try database.withFreshStore(OneRun(jobs: jobs, claimers: claimers, batch: batch, enqueueBatch: enqueueBatch))
            results.append(result)
            print(String(format: "run %d: enqueue %.0f jobs/s, claim+finish %.0f jobs/s",
                         number, result.enqueuePerSecond, result.claimFinishPerSecond))
        }
        let enqueue = median(results.map(\.enqueuePerSecond))
        let claimFinish = median(results.map(\.claimFinishPerSecond))
        print("")
        print("operation       median jobs/s   runs")
        print(String(format: "enqueue         %13.0f   %@", enqueue, results.map { String(format: "%.0f", $0.enqueuePerSecond) }.joined(separator: " ")))
        print(String(format: "claim+finish    %13.0f   %@", claimFinish, results.map { String(format: "%.0f", $0.claimFinishPerSecond) }.joined(separator: " ")))
        let summary: [String: AnyEncodable] = [
            "benchmark": AnyEncodable("queue"), "database": AnyEncodable(database.name), "jobs": AnyEncodable(jobs), "runs": AnyEncodable(runs),
            "claimers": AnyEncodable(claimers), "batch": AnyEncodable(batch), "enqueue_batch": AnyEncodable(enqueueBatch),
            "enqueue_jobs_per_s_median": AnyEncodable(enqueue.rounded()),
            "claim_finish_jobs_per_s_median": AnyEncodable(claimFinish.rounded()),
            "enqueue_jobs_per_s": AnyEncodable(results.map { $0.enqueuePerSecond.rounded() }),
            "claim_finish_jobs_per_s": AnyEncodable(results.map { $0.claimFinishPerSecond.rounded() }),
            "machine": AnyEncodable(machine),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(summary), as: UTF8.self))
    }

}

/// One run of the queue benchmark, on a fresh store.
private struct OneRun: StoreRun {
    typealias Output = QueueBenchmark.Run
    let jobs: Int
    let claimers: Int
    let batch: Int
    let enqueueBatch: Int

    func run<Driver: StoreDriver>(
        store: JobStore<Driver>, admin: Driver.Database, open: @escaping () throws -> Driver.Database, startArguments: [String]
    ) throws -> QueueBenchmark.Run {

        // Enqueue: the application's part (building each job's arguments) happens before the clock
        // starts; checking the jobs and turning them into statements is Drover's, and is timed.
        let batches = stride(from: 0, to: jobs, by: enqueueBatch).map { first in
            (first..<min(first + enqueueBatch, jobs)).map { n in
                NewJob("Bench", arguments: try! JSON(validating: "{\"n\":\(n)}"))
            }
        }
        let enqueueStart = ContinuousClock.now
        for batchJobs in batches { _ = try store.enqueue(batchJobs, on: admin) }
        let enqueueSeconds = (ContinuousClock.now - enqueueStart).seconds
        _ = try admin.fetch("ANALYZE \(store.schema.qualifying("ready_executions"))")

        // Claim and finish from `claimers` connections at once.
        let connections = UnsafeTransfer(try (0..<claimers).map { _ in try open() })
        let done = Mutex(0)
        let failure = Mutex<(any Error)?>(nil)
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: claimers) { worker in
            let connection = connections.value[worker]
            do {
                var mine = 0
                while true {
                    let claimed = try store.claim(processID: worker + 1, queues: ["*"], limit: batch, on: connection)
                    if claimed.isEmpty { break }
                    mine += try store.finish(claimed.map(\.id), processID: worker + 1, on: connection).finished.count
                }
                done.withLock { $0 += mine }
            } catch {
                failure.withLock { $0 = error }
            }
        }
        let claimSeconds = (ContinuousClock.now - start).seconds
        if let error = failure.withLock({ $0 }) { throw error }
        let finished = done.withLock { $0 }
        guard finished == jobs else {
            throw ValidationError("only \(finished) of \(jobs) jobs were finished: the benchmark is broken")
        }
        return QueueBenchmark.Run(enqueuePerSecond: Double(jobs) / enqueueSeconds, claimFinishPerSecond: Double(jobs) / claimSeconds)
    }
}
