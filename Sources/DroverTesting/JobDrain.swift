import Drover
import DroverQueue
import DroverRuntime
import Foundation
import Logging
import Synchronization

/// Runs the jobs enqueued in a store to completion inside the calling test: it claims ready jobs,
/// performs them with the registered Swift job types (in the test's own process, as tasks of the
/// caller), and records each finish and failure through the real store, retries and their backoff
/// included. What a worker of `drover start` does, without the processes.
///
/// ```swift
/// let drain = JobDrain(url: "sqlite:///tmp/app-test.sqlite3", jobs: [SendWelcomeEmail.self], services: mailer)
/// let summary = try await drain.run()
/// #expect(summary.failures.isEmpty, "\(summary)")
/// ```
///
/// Jobs run one at a time, in claim order (priority, then id). A job they enqueue runs too.
public struct JobDrain: Sendable {
    /// What becomes of a failed attempt that has a retry.
    public enum Retries: Sendable, Equatable {
        /// Run it at once: when nothing else is ready, the drain's clock moves to the time its
        /// backoff set (the store records every time as it would have happened), until it finishes
        /// or fails for good. Jobs scheduled before that time become due too, as they would have.
        case immediately
        /// End the drain at the first failed attempt, its retry left scheduled.
        case stopAtFirstFailure
        /// Leave it scheduled, waiting out its backoff, and run the rest.
        case leaveScheduled
    }

    public var url: String
    public var schema: String
    /// The job types the drain can run; a job of any other class fails at once (`UnknownJobClass`).
    public var handlers: JobHandlers
    /// What `context.services(_:)` returns to every job.
    public var services: (any Sendable)?
    public var retries: Retries
    /// Also run jobs enqueued to run later: the clock moves to their time once nothing is ready.
    public var runScheduledJobs: Bool
    /// The queues taken from, as a worker's `queues:` (default: every queue).
    public var queues: [String]
    /// At most this many attempts: more throws ``DrainError`` (a job that enqueues itself forever).
    public var attemptLimit: Int
    /// The jobs' `context.logger` (with the job's `job`, `class` and `queue`).
    public var logger: Logger

    /// A drain of the store at `url` (`sqlite:///path`, or a PostgreSQL URL) in `schema`, migrated
    /// first if it needs to be.
    public init(
        url: String, schema: String = DroverSchema.defaultName, jobs: [any Job.Type], services: (any Sendable)? = nil,
        retries: Retries = .immediately, runScheduledJobs: Bool = false, queues: [String] = ["*"], attemptLimit: Int = 1000,
        logger: Logger = Logger(label: "drover.drain")
    ) {
        self.url = url
        self.schema = schema
        handlers = JobHandlers(jobs: jobs)
        self.services = services
        self.retries = retries
        self.runScheduledJobs = runScheduledJobs
        self.queues = queues
        self.attemptLimit = attemptLimit
        self.logger = logger
    }

    /// Runs until no job is ready (nor, as ``retries`` and ``runScheduledJobs`` say, waiting), or
    /// until the first failed attempt with ``Retries/stopAtFirstFailure``.
    ///
    /// - Throws: ``DrainError`` past ``attemptLimit``; `DatabaseError`, `QueueError` from the store.
    public func run() async throws -> DrainSummary {
        try await run(StoreFactory.driver(for: url))
    }

    private func run<Driver: StoreDriver>(_: Driver.Type) async throws -> DrainSummary {
        let clock = DrainClock()
        let (store, db) = try Driver.open(url: url, options: StoreOptions(
            schema: schema, clock: .fixed { clock.now }, applicationName: "drover drain", migrating: .always))
        let selection = try QueueSelection(queues)
        let record = try store.register(
            kind: .worker, name: "drain-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())", pid: getpid(),
            hostname: ProcessInfo.processInfo.hostName, supervisorID: nil, on: db)
        let processID = try record.get("id", as: Int.self)
        defer { _ = try? store.deregister(processID: processID, on: db) }

        var summary = DrainSummary()
        var skippedTo: Date?
        drain: while true {
            try Task.checkCancellation()
            guard let job = try store.claim(processID: processID, queues: selection, limit: 1, on: db).first else {
                if try store.dispatchDue(on: db) > 0 { continue }
                // Once per time: what is still not due then (a paused queue, say) stays.
                if let next = try nextWaiting(store, db), next != skippedTo {
                    clock.advance(to: next)
                    skippedTo = next
                    continue
                }
                break
            }
            guard summary.attempts.count < attemptLimit else {
                throw DrainError(.attemptLimit, "the drain ran \(attemptLimit) attempts and job \(job.id) (\(job.className)) is still ready: "
                                 + "a job that enqueues itself or fails for ever? Raise attemptLimit if that many are expected")
            }
            let result = await TaskJobRun.run(job, handlers: handlers, services: services, logger: logger)
            switch result.outcome {
            case .finished:
                let outcome = try store.finish([job.id], processID: processID, results: result.result.map { [job.id: $0] } ?? [:], on: db)
                summary.attempts.append(DrainSummary.Attempt(job, outcome: outcome.finished.isEmpty ? .dropped : .finished, failure: nil))
            case .failed(let failure, let permanent):
                let outcome = try store.fail(job.id, processID: processID, error: failure, permanent: permanent,
                                             maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: db)
                let recorded: DrainSummary.Attempt.Outcome = switch outcome {
                case .retryScheduled(let at, _): .willRetry(at: at)
                case .failed: .failed
                case .dropped: .dropped
                }
                summary.attempts.append(DrainSummary.Attempt(job, outcome: recorded, failure: failure))
                if retries == .stopAtFirstFailure {
                    summary.stoppedAtFailure = true
                    break drain
                }
            case .snoozed(let delay):
                let outcome = try store.snooze(
                    job.id, processID: processID, for: delay, maxSnoozes: result.maxSnoozes ?? SnoozeRules.defaultMaxSnoozes,
                    maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: db)
                switch outcome {
                case .snoozed(let at, _):
                    summary.attempts.append(DrainSummary.Attempt(job, outcome: .snoozed(until: at), failure: nil))
                case .overLimit(let failed):
                    let failure = JobFailure(errorClass: SnoozeRules.limitClass, message: "snoozed past its limit (maxSnoozes)")
                    let recorded: DrainSummary.Attempt.Outcome = switch failed {
                    case .retryScheduled(let at, _): .willRetry(at: at)
                    case .failed: .failed
                    case .dropped: .dropped
                    }
                    summary.attempts.append(DrainSummary.Attempt(job, outcome: recorded, failure: failure))
                case .dropped:
                    summary.attempts.append(DrainSummary.Attempt(job, outcome: .dropped, failure: nil))
                }
            }
        }
        summary.skipped = clock.skipped
        summary.unfinished = try [JobState.ready, .scheduled, .blocked, .waiting, .claimed].flatMap { state in
            try store.listJobs(state: state, limit: 100_000, on: db).map(\.id)
        }.sorted()
        return summary
    }

    /// When the next job the drain waits for is due: a retry or a snoozed job (``Retries/immediately``),
    /// or any scheduled job (``runScheduledJobs``).
    private func nextWaiting<Driver: StoreDriver>(_ store: JobStore<Driver>, _ db: Driver.Database) throws -> Date? {
        guard retries == .immediately || runScheduledJobs else { return nil }
        let selection = try QueueSelection(queues)
        return try store.listJobs(state: .scheduled, limit: 100_000, on: db)
            .filter { (runScheduledJobs || $0.attempts > 0 || $0.snoozes > 0) && selection.matches($0.queue) }
            .compactMap(\.nextRunAt).min()
    }
}

/// The drain's clock: the host's, moved forward when it skips a backoff.
private final class DrainClock: Sendable {
    private let offset = Mutex<TimeInterval>(0)
    var now: Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    var skipped: Duration { .milliseconds(Int64((offset.withLock { $0 } * 1000).rounded())) }

    func advance(to time: Date) {
        offset.withLock { offset in
            let now = Date().addingTimeInterval(offset)
            if time > now { offset += time.timeIntervalSince(now) }
        }
    }
}

/// What a drain did: every attempt in order, with its error and what became of the job.
public struct DrainSummary: Sendable, CustomStringConvertible {
    public struct Attempt: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            case finished
            /// Failed; retried after its backoff, at this time of the drain's clock.
            case willRetry(at: Date)
            /// Failed for good: out of attempts, or a permanent failure.
            case failed
            /// The store no longer held the claim (another process released the job).
            case dropped
            /// It threw ``Snooze``: it runs again at this time of the drain's clock, its attempt not spent.
            case snoozed(until: Date)
        }

        public let jobID: Int
        public let className: String
        /// 1 the first time.
        public let attempt: Int
        /// What the attempt threw (`PermanentJobFailure`, `Timeout`, the error's type); nil when it finished.
        public let errorClass: String?
        public let error: String?
        public let outcome: Outcome

        init(_ job: ClaimedJob, outcome: Outcome, failure: JobFailure?) {
            jobID = job.id
            className = job.className
            attempt = job.attempt
            errorClass = failure?.errorClass
            error = failure?.message
            self.outcome = outcome
        }
    }

    public internal(set) var attempts: [Attempt] = []
    /// Set when ``JobDrain/Retries/stopAtFirstFailure`` ended the drain.
    public internal(set) var stoppedAtFailure = false
    /// The jobs left ready, scheduled, blocked, waiting or claimed when the drain ended.
    public internal(set) var unfinished: [Int] = []
    /// How far the drain's clock moved ahead of the host's, skipping backoffs (and, with
    /// ``JobDrain/runScheduledJobs``, waits for jobs enqueued for later).
    public internal(set) var skipped: Duration = .zero

    /// The jobs that finished, in the order they did.
    public var finished: [Int] { attempts.filter { $0.outcome == .finished }.map(\.jobID) }
    /// The jobs that failed for good.
    public var failed: [Int] { attempts.filter { $0.outcome == .failed }.map(\.jobID) }
    /// Every attempt that failed, with its error, retried or not.
    public var failures: [Attempt] { attempts.filter { $0.errorClass != nil } }

    public var description: String {
        var text = "\(finished.count) finished, \(failed.count) failed, \(failures.count) failed attempts"
        if skipped > .zero { text += ", \(skipped) of waiting skipped" }
        for failure in failures {
            text += "\n  job \(failure.jobID) (\(failure.className)) attempt \(failure.attempt): \(failure.errorClass ?? ""): \(failure.error ?? "")"
        }
        if !unfinished.isEmpty { text += "\n  left unfinished: \(unfinished.map(String.init).joined(separator: ", "))" }
        return text
    }
}

/// A drain that could not end.
public struct DrainError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// More attempts than ``JobDrain/attemptLimit``.
        case attemptLimit
    }

    public let code: Code
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
