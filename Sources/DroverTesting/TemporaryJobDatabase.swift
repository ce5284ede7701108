import Drover
import DroverQueue
import Foundation
import Logging

/// A migrated SQLite file of Drover's in a directory of its own, removed when this goes away: a
/// queue for one test, to enqueue the app's jobs into and run them to completion.
///
/// ```swift
/// @Test func welcomesNewUsers() async throws {
///     let queue = try TemporaryJobDatabase()
///     try queue.connection.enqueue(SendWelcomeEmail(userID: 7, address: "ada@example.com"))
///     let summary = try await queue.drain(jobs: [SendWelcomeEmail.self], services: TestMailer())
///     #expect(summary.finished.count == 1, "\(summary)")
/// }
/// ```
public final class TemporaryJobDatabase {
    /// The directory holding the file, removed with it.
    public let directory: URL
    /// `sqlite:///…/drover.sqlite3`, for ``JobDrain`` or a `drover` command.
    public let url: String
    /// A connection to the file, for enqueueing (`try queue.connection.enqueue(MyJob())`) and for
    /// looking at it.
    public let connection: SQLiteConnection
    private let store: SQLiteJobStore

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("drover-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = "sqlite://" + directory.appendingPathComponent("drover.sqlite3").path
        (store, connection) = try SQLiteDriver.open(url: url, options: StoreOptions(applicationName: "drover test"))
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Runs the enqueued jobs to completion in this process (``JobDrain``). It runs on its
    /// caller's executor (`nonisolated(nonsending)`), so that a test may call it from any context,
    /// inside `withTracer { … }` say, though this database is not `Sendable`.
    public nonisolated(nonsending) func drain(
        jobs: [any Job.Type], services: (any Sendable)? = nil, retries: JobDrain.Retries = .immediately,
        runScheduledJobs: Bool = false, queues: [String] = ["*"], attemptLimit: Int = 1000,
        logger: Logger = Logger(label: "drover.drain")
    ) async throws -> DrainSummary {
        try await JobDrain(url: url, jobs: jobs, services: services, retries: retries, runScheduledJobs: runScheduledJobs,
                           queues: queues, attemptLimit: attemptLimit, logger: logger).run()
    }

    /// The job `id` as the store has it (state, attempts, last error, arguments), if it exists.
    public func job(_ id: Int) throws -> JobInfo? { try store.job(id, on: connection) }
}
