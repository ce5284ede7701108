import Drover
import DroverQueue
import DroverTestSupport
import DroverTesting
import Foundation
import Synchronization

/// An app's services, as a test gives them to its jobs: what the jobs did, in order.
final class Ledger: Sendable {
    private let entries = Mutex<[String]>([])
    func record(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Services of another type, for the errors.
struct OtherServices: Sendable {}

struct Charge: Job {
    static let queue = "billing"
    var account: String
    var cents: Int
    func perform(_ context: JobContext) async throws {
        try context.services(Ledger.self).record("charge \(account) \(cents) job \(context.jobID) attempt \(context.attempt)")
    }
}

/// Fails until its attempt `succeedOn`.
struct Flaky: Job {
    static let maxAttempts = 4
    struct Declined: Error, CustomStringConvertible {
        let attempt: Int
        var description: String { "declined on attempt \(attempt)" }
    }
    var succeedOn: Int
    func perform(_ context: JobContext) async throws {
        try context.services(Ledger.self).record("flaky \(context.attempt)")
        if context.attempt < succeedOn { throw Declined(attempt: context.attempt) }
    }
}

/// Not ready for its work until it has snoozed `readyAfter` times; one attempt, two snoozes.
struct AwaitReport: Job {
    static let maxAttempts = 1
    static let maxSnoozes = 2
    var readyAfter: Int
    func perform(_ context: JobContext) async throws {
        let ledger = try context.services(Ledger.self)
        ledger.record("report \(context.jobID) attempt \(context.attempt)")
        if ledger.all.filter({ $0.hasPrefix("report \(context.jobID) ") }).count <= readyAfter { throw Snooze(for: .seconds(30)) }
    }
}

/// Always fails; retried after 10 minutes, whatever the worker's default.
struct Stubborn: Job {
    static let maxAttempts = 3
    static let retryPolicy: RetryPolicy? = RetryPolicy(backoff: .fixed, baseDelay: .seconds(600), maxDelay: .seconds(600), jitter: 0)
    func perform(_ context: JobContext) async throws {
        throw PermanentlyBusy()
    }
    struct PermanentlyBusy: Error {}
}

struct Refund: Job {
    func perform(_ context: JobContext) async throws {
        throw PermanentJobFailure("the account is closed")
    }
}

/// Runs past its timeout, and stops once cancelled.
struct Slow: Job {
    static let timeout: Duration? = .seconds(1)
    func perform(_ context: JobContext) async throws {
        try await Task.sleep(for: .seconds(3600))
    }
}

/// Waits until its context says it was cancelled.
struct Patient: Job {
    func perform(_ context: JobContext) async throws {
        while !context.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
        throw CancellationError()
    }
}

/// The stores a drain runs on: a temporary SQLite file, and a PostgreSQL schema of its own.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite, postgresql
    var description: String { rawValue }

    /// A fresh, migrated queue of this backend.
    func withQueue<R>(_ body: (TestQueue) async throws -> R) async throws -> R {
        switch self {
        case .sqlite:
            let database = try TemporaryJobDatabase()
            return try await body(TestQueue(url: database.url, schema: DroverSchema.defaultName,
                                             enqueue: { try database.connection.enqueue($0, runIn: $1, after: $2, batch: $3) },
                                             job: { try database.job($0) },
                                             withBatch: { try database.connection.withBatch($0, $1) },
                                             batch: { try database.connection.batch($0) },
                                             batchJobs: { try database.connection.batchJobs($0) }))
        case .postgresql:
            let url = try TestDatabase.url()
            let schema = TestDatabase.uniqueSchemaName()
            let (store, db) = try PostgresDriver.open(url: url, options: StoreOptions(schema: schema, migrating: .always))
            defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
            return try await body(TestQueue(url: url, schema: schema,
                                            enqueue: { try db.enqueue($0, runIn: $1, after: $2, batch: $3, schema: schema) },
                                            job: { try store.job($0, on: db) },
                                            withBatch: { try db.withBatch($0, schema: schema, $1) },
                                            batch: { try db.batch($0, schema: schema) },
                                            batchJobs: { try db.batchJobs($0, schema: schema) }))
        }
    }
}

struct TestQueue {
    let url: String
    let schema: String
    /// Enqueues a job through the Swift API, to run now or after a delay, after jobs, in a batch.
    let enqueueOne: (any Job, Duration?, [Int], Int?) throws -> Int
    let job: (Int) throws -> JobInfo?
    let withBatch: (NewBatch, (Int) throws -> Void) throws -> Int
    let batch: (Int) throws -> BatchInfo?
    let batchJobs: (Int) throws -> [BatchJob]

    init(
        url: String, schema: String, enqueue: @escaping (any Job, Duration?, [Int], Int?) throws -> Int, job: @escaping (Int) throws -> JobInfo?,
        withBatch: @escaping (NewBatch, (Int) throws -> Void) throws -> Int, batch: @escaping (Int) throws -> BatchInfo?,
        batchJobs: @escaping (Int) throws -> [BatchJob]
    ) {
        self.batchJobs = batchJobs
        self.url = url
        self.schema = schema
        enqueueOne = enqueue
        self.job = job
        self.withBatch = withBatch
        self.batch = batch
    }

    @discardableResult
    func enqueue(_ jobs: any Job...) throws -> [Int] { try jobs.map { try enqueueOne($0, nil, [], nil) } }

    func enqueue(_ job: any Job, in delay: Duration) throws -> Int { try enqueueOne(job, delay, [], nil) }

    func enqueue(_ job: any Job, after: [Int] = [], batch: Int?) throws -> Int { try enqueueOne(job, nil, after, batch) }

    func drain(
        _ types: [any Job.Type], services: (any Sendable)? = nil, retries: JobDrain.Retries = .immediately,
        runScheduledJobs: Bool = false
    ) async throws -> DrainSummary {
        try await JobDrain(url: url, schema: schema, jobs: types, services: services, retries: retries,
                           runScheduledJobs: runScheduledJobs).run()
    }
}

/// Measures a photo: its result is the photo's size.
struct Measure: ResultJob {
    var photo: String
    func run(_ context: JobContext) async throws -> Int { photo.count * 100 }
}

/// Adds up the results of the jobs it waited for, into the ledger; reports its batch.
struct Total: Job {
    func perform(_ context: JobContext) async throws {
        var sum = 0
        for dependency in context.dependencies { sum += try context.result(of: dependency.jobID, as: Int.self) ?? 0 }
        try context.services(Ledger.self).record("total \(sum) of \(context.dependencies.count) in batch \(context.batchID.map(String.init) ?? "none")")
    }
}

/// Records the batch callback it got.
struct AlbumDone: Job {
    var batch_id: Int
    var event: String
    var finished: Int
    func perform(_ context: JobContext) async throws {
        try context.services(Ledger.self).record("batch \(batch_id) \(event): \(finished) finished")
    }
}
