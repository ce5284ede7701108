@_exported import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// What a running job knows about itself: id, attempt, a logger, and whether it was cancelled.
public typealias JobContext = DroverRuntime.JobContext
/// Why a job was asked to stop: its timeout, or `drover jobs cancel`.
public typealias StopReason = DroverRuntime.StopReason
/// At most `limit` jobs with the same key run at once: `ConcurrencyLimit(key: "account:{accountID}", limit: 2)`.
public typealias ConcurrencyLimit = DroverRuntime.Configuration.Concurrency
/// At most `limit` jobs with the same key start in any `period`: `RateLimit(key: "stripe", limit: 100, period: .seconds(1))`.
public typealias RateLimit = DroverRuntime.Configuration.RateLimit
/// Throw it from `perform` for a failure that retrying will not fix: the job fails at once.
public typealias PermanentJobFailure = DroverRuntime.PermanentJobFailure
/// Throw it from `perform` to run again later without spending an attempt: `throw Snooze(for: .seconds(30))`.
public typealias Snooze = DroverRuntime.Snooze
/// How long a failed attempt waits before the next: `RetryPolicy(backoff: .fixed, baseDelay: .seconds(30))`.
public typealias RetryPolicy = DroverQueue.RetryPolicy
/// A job class enqueued when a job fails for good: `static let onFailure: OnFailure? = OnFailure(NotifyOps.self)`.
public typealias OnFailure = DroverRuntime.Configuration.OnFailure

extension OnFailure {
    /// Enqueue a `hook` job when a job of this type fails for good (and when it is cancelled,
    /// with `includeCancelled`).
    public init<Hook: Job>(_ hook: Hook.Type, includeCancelled: Bool = false) {
        self.init(Hook.className, includeCancelled: includeCancelled)
    }
}
/// Builds the app's services once per worker process: `Drover.main(jobs:services:)`.
public typealias ServicesSetup = DroverRuntime.ServicesSetup
/// Services that close something when their worker stops (`func shutdown() async throws`).
public typealias ServicesShutdown = DroverRuntime.ServicesShutdown
/// `context.services(T.self)` found no services, or services of another type.
public typealias ServicesError = DroverRuntime.ServicesError

/// A kind of background job, written in Swift. Its stored properties are its arguments: they are
/// encoded as JSON when it is enqueued and decoded in the worker that runs it.
///
/// ```swift
/// struct SendWelcomeEmail: Job {
///     static let queue = "mail"
///     static let timeout: Duration? = .seconds(30)
///
///     var userID: Int
///     var address: String
///
///     func perform(_ context: JobContext) async throws {
///         context.logger.info("sending", metadata: ["user": "\(userID)"])
///         try await mailer.send(to: address)   // cancelled on timeout or `drover jobs cancel`
///     }
/// }
///
/// // In the app's executable: the whole drover CLI, running these jobs in its workers.
/// Drover.main(jobs: [SendWelcomeEmail.self])
/// ```
///
/// `perform` runs on a thread of its own worker thread pool, so blocking calls hold only that job.
/// Throwing fails the attempt, retried with `retryPolicy`'s backoff up to `maxAttempts`; throwing
/// ``PermanentJobFailure`` fails the job at once; throwing ``Snooze`` runs it again later without
/// spending an attempt. Past its timeout (or when cancelled) the task is
/// cancelled; a job still running `gracePeriod` later is failed, and its worker finishes its other
/// jobs and exits to be replaced.
public protocol Job: Codable, Sendable {
    /// The class name jobs of this type are stored under (default: the type's name).
    static var className: String { get }
    /// The queue a job goes to when `enqueue` is not told (default: `default`).
    static var queue: String { get }
    /// Lower runs first (default: 0).
    static var priority: Int { get }
    /// How many times a job may run before it fails for good (default: 5).
    static var maxAttempts: Int { get }
    /// How long a failed attempt waits before the next (default: nil, the worker's: exponential
    /// backoff from 5 s to at most 1 h, jitter 0.25). `drover start` refuses a policy out of range.
    static var retryPolicy: RetryPolicy? { get }
    /// How many times a job may throw ``Snooze`` before a snooze counts as a failed attempt
    /// (default: 100).
    static var maxSnoozes: Int { get }
    /// A job class to enqueue when a job of this type fails for good (default: none of its own;
    /// the configuration's top-level `on_failure` applies): `OnFailure(NotifyOps.self)`. Its
    /// arguments say which job failed and how (`job_id`, `class`, `queue`, `arguments`,
    /// `attempts`, `crashes`, `error`, `cancelled`).
    static var onFailure: OnFailure? { get }
    /// How long one attempt may run (default: no limit); a timeout given at enqueue wins.
    static var timeout: Duration? { get }
    /// How long a cancelled job may take to end (default: 10 seconds).
    static var gracePeriod: Duration { get }
    /// At most `limit` jobs of this type with the same key run at once (default: no limit); the
    /// key's `{name}` stands for the job's property `name`. `drover start` records it in the
    /// database, where enqueueing from any language applies it.
    static var concurrency: ConcurrencyLimit? { get }
    /// At most `limit` jobs of this type with the same key start in any `period`, across every
    /// host (default: no limit); without a key, one key for the whole type. A job over the limit
    /// waits in the database for its time, spending no attempt. `drover start` records it.
    static var rateLimit: RateLimit? { get }
    /// While a live job has this key, enqueueing another returns that job (default: none). Computed
    /// from the job's arguments, such as `"report:\(day)"`.
    var uniqueKey: String? { get }

    func perform(_ context: JobContext) async throws
}

extension Job {
    public static var className: String { String(describing: Self.self) }
    public static var queue: String { JobRules.defaultQueue }
    public static var priority: Int { 0 }
    public static var maxAttempts: Int { JobRules.defaultMaxAttempts }
    public static var retryPolicy: RetryPolicy? { nil }
    public static var maxSnoozes: Int { SnoozeRules.defaultMaxSnoozes }
    public static var onFailure: OnFailure? { nil }
    public static var timeout: Duration? { nil }
    public static var gracePeriod: Duration { .seconds(10) }
    public var uniqueKey: String? { nil }
    public static var concurrency: ConcurrencyLimit? { nil }
    public static var rateLimit: RateLimit? { nil }
}

/// A job that hands back a result: its return value, kept with the job when it finishes (at most
/// 64 KiB of JSON) and given to the jobs that wait for it (`JobContext.result(of:as:)`);
/// `JobDatabase.result(of:as:)` reads it.
///
/// ```swift
/// struct Thumbnail: ResultJob {
///     let photo: String
///     func run(_ context: JobContext) async throws -> String { try await resize(photo) }
/// }
/// ```
public protocol ResultJob: Job {
    associatedtype Output: Encodable & Sendable
    func run(_ context: JobContext) async throws -> Output
}

extension ResultJob {
    public func perform(_ context: JobContext) async throws {
        try context.keep(result: try await run(context))
    }
}

/// A batch to open (`JobDatabase.withBatch`), with the classes of its callbacks.
public typealias NewBatch = DroverQueue.NewBatch
/// A batch and its counts (`JobDatabase.batch(_:)`).
public typealias BatchInfo = DroverQueue.BatchInfo
/// A job of a batch with its state and result (`JobDatabase.batchJobs(_:)`).
public typealias BatchJob = DroverQueue.BatchJob
/// The arguments of a batch's callback job: a callback type can decode them as its own (its
/// keys: `batch_id`, `event`, `description`, `total`, `finished`, `failed`, `pending`,
/// `failed_job_id`).
public typealias BatchCallbackArguments = DroverQueue.BatchCallbackArguments
/// A job that a job waited for, with its outcome and result (`JobContext.dependencies`).
public typealias DependencyResult = DroverRuntime.DependencyResult
public typealias DependencyError = DroverRuntime.DependencyError

extension ConcurrencyLimit {
    public init(key: String, limit: Int, duration: Duration = .seconds(300), onConflict: ConcurrencyRule.OnConflict = .block) {
        self.init(key: key, limit: limit)
        self.duration = duration
        self.onConflict = onConflict
    }
}

/// Runs jobs of type `J` in a worker: decodes the arguments, then performs.
struct JobTypeHandler<J: Job>: AsyncJobHandler {
    var concurrency: ConcurrencyLimit? { J.concurrency }
    var rateLimit: RateLimit? { J.rateLimit }
    var timeout: Duration? { J.timeout }
    var gracePeriod: Duration { J.gracePeriod }
    var maxAttempts: Int? { nil }
    var retryPolicy: RetryPolicy? { J.retryPolicy }
    var maxSnoozes: Int { J.maxSnoozes }
    var onFailure: OnFailure? { J.onFailure }

    func perform(_ job: ClaimedJob, context: JobContext) async throws {
        let decoded: J
        do {
            decoded = try job.arguments.decode(J.self)
        } catch {
            // Arguments that do not decode will not decode next time either.
            throw PermanentJobFailure("the arguments of job \(job.id) do not decode as \(J.className): \(error)")
        }
        // In the trace context stored at enqueue, under a span of its own.
        try await JobTrace.perform(job) { try await decoded.perform(context) }
    }
}

extension JobHandlers {
    /// Handlers for `jobs`, by their class names (also `DroverTesting`'s drain).
    package init(jobs: [any Job.Type]) {
        self.init()
        for type in jobs { type.register(in: &self) }
    }
}

extension Job {
    fileprivate static func register(in handlers: inout JobHandlers) {
        handlers.register(className, JobTypeHandler<Self>())
    }
}
