import DroverPersistence
import DroverQueue
import Foundation
import Logging

/// Runs jobs of one class synchronously on an executor thread. Throwing fails the attempt
/// (retried per policy); throwing ``PermanentJobFailure`` fails the job at once. It cannot be
/// cancelled: Drover's own test handlers use it; applications write ``AsyncJobHandler``s.
public protocol JobHandler: Sendable {
    func perform(_ job: ClaimedJob) throws
}

/// Runs jobs of one class as a Swift task, which timeouts and `drover jobs cancel` cancel. The
/// `Drover` library's `Job` types are run through it.
public protocol AsyncJobHandler: Sendable {
    /// How long one attempt may run (a job's own timeout, given at enqueue, wins); nil for no limit.
    var timeout: Duration? { get }
    /// How long a cancelled job may take to end. One that is still running after that is given up:
    /// its worker fails it, finishes its other jobs and exits to be replaced.
    var gracePeriod: Duration { get }
    /// Overrides the job's own max_attempts when set.
    var maxAttempts: Int? { get }
    /// How long a failed attempt waits before the next; nil for the worker's default policy.
    var retryPolicy: RetryPolicy? { get }
    /// How many times a job may snooze (throw ``Snooze``) before a snooze counts as a failure.
    var maxSnoozes: Int { get }
    /// The job class enqueued when a job of this class fails for good (nil: none of its own).
    var onFailure: Configuration.OnFailure? { get }
    /// At most `limit` jobs of this class with one key run at once (nil: no limit).
    var concurrency: Configuration.Concurrency? { get }
    /// At most `limit` jobs of this class with one key start in any period (nil: no limit).
    var rateLimit: Configuration.RateLimit? { get }
    func perform(_ job: ClaimedJob, context: JobContext) async throws
}

extension AsyncJobHandler {
    public var concurrency: Configuration.Concurrency? { nil }
    public var rateLimit: Configuration.RateLimit? { nil }
    public var retryPolicy: RetryPolicy? { nil }
    public var maxSnoozes: Int { SnoozeRules.defaultMaxSnoozes }
    public var onFailure: Configuration.OnFailure? { nil }
}

/// What a running Swift job knows about itself, and the services of its worker.
///
/// ```swift
/// func perform(_ context: JobContext) async throws {
///     context.logger.info("sending", metadata: ["to": "\(recipient)"])
///     // level=info process=worker name=worker-x1y2 pid=812 job=42 class=SendReport queue=mail msg=sending to=ada
///     let app = try context.services(AppServices.self)   // built once per worker by Drover.main(jobs:services:)
///     try context.checkCancellation()
/// }
/// ```
public struct JobContext: Sendable {
    public let jobID: Int
    /// 1 the first time, 2 after one failure, …
    public let attempt: Int
    public let maxAttempts: Int
    public let queue: String
    public let className: String
    /// The batch the job belongs to: jobs it enqueues with this `batchID` join the batch, which
    /// does not complete before they end.
    public let batchID: Int?
    /// The jobs it waited for (``NewJob/after``), in id order, with their outcomes and results.
    public let dependencies: [DependencyResult]
    /// The worker's logger with the job on every line: the worker's `process`, `name` and `pid`,
    /// then the job's id (`job`), `class` and `queue`; at the level of `drover start --log-level`.
    /// Its lines go to the handler the process bootstrapped (``DroverLogHandler``, unless the app
    /// gave its own to `Drover.main(jobs:logHandler:)`).
    public let logger: Logger
    /// The worker's services (`Drover.main(jobs:services:)`), read through ``services(_:)``.
    private let servicesValue: (any Sendable)?
    /// The attempt as the worker runs it; nil in a context a test built, whose cancellation is
    /// its task's.
    private let execution: Execution?

    init(execution: Execution, log: Log, services: (any Sendable)?) {
        let job = execution.job
        jobID = job.id
        attempt = job.attempt
        maxAttempts = job.maxAttempts
        queue = job.queue
        className = job.className
        batchID = job.batchID
        dependencies = DependencyResult.list(in: job.arguments)
        logger = log.logger
        servicesValue = services
        self.execution = execution
    }

    /// A context with no worker behind it, for a test that calls a job's `perform` directly: the
    /// `DroverTesting` library's `JobContext(jobID:…)` is the public way.
    package init(
        standalone jobID: Int, attempt: Int, maxAttempts: Int, queue: String, className: String, logger: Logger, services: (any Sendable)?
    ) {
        self.jobID = jobID
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.queue = queue
        self.className = className
        self.logger = logger
        servicesValue = services
        execution = nil
        batchID = nil
        dependencies = []
    }

    /// The job's log as Drover's own `Log` (fields as ordered pairs); the same lines as ``logger``.
    @available(*, deprecated, message: "use logger, a swift-log Logger: context.logger.info(\"sent\", metadata: [\"to\": \"\\(address)\"])")
    public var log: Log { Log(logger: logger) }

    /// The services its worker built at start (`Drover.main(jobs:services:)`), as `type`: the same
    /// value for every job the worker runs.
    ///
    /// ```swift
    /// let app = try context.services(AppServices.self)
    /// try await app.mailer.send(to: address)
    /// ```
    ///
    /// - Throws: ``ServicesError`` naming the type asked for and the type there is (`wrongType`),
    ///   or saying there are none (`missing`).
    public func services<Services>(_ type: Services.Type = Services.self) throws(ServicesError) -> Services {
        guard let value = servicesValue else {
            throw ServicesError(code: .missing, expected: String(reflecting: type), actual: nil, jobID: jobID, className: className)
        }
        guard let services = value as? Services else {
            throw ServicesError(code: .wrongType, expected: String(reflecting: type), actual: String(reflecting: Swift.type(of: value)),
                                jobID: jobID, className: className)
        }
        return services
    }

    /// The result of job `id` it waited for, decoded as `type`; nil when that job finished
    /// without one.
    ///
    /// - Throws: ``DependencyError`` when the job did not wait for `id`, `id` did not finish, or
    ///   its result does not decode as `type`.
    public func result<T: Decodable>(of id: Int, as type: T.Type = T.self) throws -> T? {
        guard let dependency = dependencies.first(where: { $0.jobID == id }) else {
            throw DependencyError("job \(jobID) did not wait for job \(id): it waited for "
                                  + (dependencies.isEmpty ? "none" : dependencies.map { String($0.jobID) }.joined(separator: ", ")))
        }
        guard dependency.outcome == "finished" else {
            throw DependencyError("job \(id), which job \(jobID) waited for, \(dependency.outcome): it has no result")
        }
        if dependency.resultOmitted {
            throw DependencyError("the result of job \(id) was left out of job \(jobID)'s arguments (the results together passed 1 MiB): "
                                  + "read it from the database")
        }
        guard let result = dependency.result else { return nil }
        do {
            return try result.decode(T.self)
        } catch {
            throw DependencyError("the result of job \(id) does not decode as \(T.self): \(error)")
        }
    }

    /// Keeps `value` as the job's result (a Swift ``ResultJob``'s return value goes through here):
    /// stored with the job when it finishes and handed to the jobs that wait for it.
    ///
    /// - Throws: ``PermanentJobFailure`` when it does not encode or is larger than 64 KiB.
    package func keep<R: Encodable>(result value: R) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json: JSON
        do {
            json = try JSON(encoding: value, encoder: encoder)
        } catch {
            throw PermanentJobFailure("the result of job \(jobID) does not encode as JSON: \(error)")
        }
        do {
            try JobRules.checkResult(json)
        } catch {
            throw PermanentJobFailure("the result of job \(jobID): \(error.message)")
        }
        execution?.result = json
    }

    /// Whether the job was asked to stop (timeout or `drover jobs cancel`); the task is cancelled too.
    public var isCancelled: Bool { execution?.stopReason != nil || Task.isCancelled }

    /// Why the job was asked to stop, if it was.
    public var stopReason: StopReason? { execution?.stopReason }

    /// Throws `CancellationError` once the job was asked to stop.
    public func checkCancellation() throws {
        if isCancelled { throw CancellationError() }
    }
}

/// A failure that retrying will not fix.
public struct PermanentJobFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Thrown by a job that cannot do its work yet (an API asked it to slow down, a file is not there
/// yet): it runs again after `delay`, and the attempt does not count. A job may snooze its type's
/// `maxSnoozes` times (100 unless it says); a snooze past that counts as a failed attempt.
///
/// ```swift
/// guard let report = try await api.report(id) else { throw Snooze(for: .seconds(30)) }
/// ```
public struct Snooze: Error, CustomStringConvertible {
    public let delay: Duration
    /// From 1 ms to 30 days; a delay out of that range fails the attempt, naming the range.
    public init(for delay: Duration) { self.delay = delay }
    public var description: String { "snooze for \(DurationText.format(delay))" }
}

/// Which handler runs which class: commands from the configuration, Swift job types, and (for
/// Drover's own tests) blocking handlers.
public struct JobHandlers: Sendable {
    enum Entry: Sendable {
        case blocking(any JobHandler)
        case swift(any AsyncJobHandler)
        case command(CommandHandler)
    }

    private var entries: [String: Entry] = [:]

    public init() {}

    public mutating func register(_ className: String, _ handler: any JobHandler) {
        entries[className] = .blocking(handler)
    }

    public mutating func register(_ className: String, _ handler: any AsyncJobHandler) {
        entries[className] = .swift(handler)
    }

    mutating func register(_ handler: CommandHandler) {
        entries[handler.className] = .command(handler)
    }

    func entry(for className: String) -> Entry? { entries[className] }

    /// A job of a class no handler knows fails at once, saying which classes there are.
    func unknownClass(_ job: ClaimedJob) -> JobResult {
        let known = classNames
        let failure = JobFailure(
            errorClass: "UnknownJobClass",
            message: "no handler for class \(job.className); this worker knows "
                + (known.isEmpty ? "no classes" : known.joined(separator: ", "))
                + ". Declare it under handlers: in the configuration (or register its Swift Job type), "
                + "reload, then run drover failed retry \(job.id)")
        return JobResult(job: job, outcome: .failed(failure, permanent: true))
    }

    /// Every class this worker can run, sorted.
    public var classNames: [String] { entries.keys.sorted() }

    /// The concurrency limits of the Swift job types, as the database's rules.
    public var concurrencyRules: [ConcurrencyRule] {
        entries.sorted { $0.key < $1.key }.compactMap { name, entry in
            guard case .swift(let handler) = entry, let limit = handler.concurrency else { return nil }
            return ConcurrencyRule(className: name, keyTemplate: limit.key, maxRunning: limit.limit, duration: limit.duration,
                                   onConflict: limit.onConflict)
        }
    }

    /// The rate limits of the Swift job types, as the database's rules.
    public var rateLimitRules: [RateLimitRule] {
        entries.sorted { $0.key < $1.key }.compactMap { name, entry in
            guard case .swift(let handler) = entry else { return nil }
            return handler.rateLimit?.rule(for: name)
        }
    }

    /// The failure hooks of the Swift job types.
    public var failureHooks: [FailureHook] {
        entries.sorted { $0.key < $1.key }.compactMap { name, entry in
            guard case .swift(let handler) = entry, let hook = handler.onFailure else { return nil }
            return FailureHook(className: name, hookClass: hook.hookClass, includeCancelled: hook.includeCancelled)
        }
    }

    /// Adds `other`'s handlers; `other` wins where both have a class.
    public mutating func merge(_ other: JobHandlers) {
        entries.merge(other.entries) { _, theirs in theirs }
    }

    /// Handlers for testing and benchmarking Drover itself. They run only when the supervisor was
    /// started with DROVER_TEST_HANDLERS=1, since one of them kills its worker.
    public static var builtInTestHandlers: JobHandlers {
        var handlers = JobHandlers()
        handlers.register("drover.test.succeed", Succeed())
        handlers.register("drover.test.noop", Succeed())
        handlers.register("drover.test.fail", Fail())
        handlers.register("drover.test.sleep", Sleep())
        handlers.register("drover.test.crash", Crash())
        handlers.register("drover.test.exit", Exit())
        handlers.register("drover.test.wait", Wait())
        handlers.register("drover.test.stubborn", Stubborn())
        handlers.register("drover.test.audit", Audit())
        return handlers
    }

    /// Appends a line `job attempt pid start` to the file `{"file": …}` (one write with O_APPEND, so
    /// lines from many processes never mix), so that a test can count how often each job ran and a
    /// benchmark can see when each started (`start`: CLOCK_REALTIME in nanoseconds). `{"ms": …}`
    /// makes it work that long after the line is written.
    struct Audit: JobHandler {
        struct Arguments: Decodable { var file: String; var ms: Int? }
        func perform(_ job: ClaimedJob) throws {
            let arguments = try job.arguments.decode(Arguments.self)
            let fd = open(arguments.file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw TestFailure(description: "cannot open \(arguments.file): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let line = Array("\(job.id) \(job.attempt) \(getpid()) \(Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec))\n".utf8)
            guard write(fd, line, line.count) == line.count else { throw TestFailure(description: "short write to \(arguments.file)") }
            // Then works a while (`{"ms": …}`), so that a fault can land in the middle of a job.
            if let ms = arguments.ms, ms > 0 { usleep(useconds_t(ms) * 1000) }
        }
    }

    struct Succeed: JobHandler {
        func perform(_ job: ClaimedJob) throws {}
    }

    /// Fails with `{"message": …}`; `{"permanent": true}` fails for good.
    struct Fail: JobHandler {
        struct Arguments: Decodable { var message: String?; var permanent: Bool? }
        func perform(_ job: ClaimedJob) throws {
            let arguments = (try? job.arguments.decode(Arguments.self)) ?? Arguments()
            let message = arguments.message ?? "drover.test.fail failed, as asked"
            if arguments.permanent == true { throw PermanentJobFailure(message) }
            throw TestFailure(description: message)
        }
    }

    /// Sleeps `{"ms": …}` milliseconds.
    struct Sleep: JobHandler {
        struct Arguments: Decodable { var ms: Int }
        func perform(_ job: ClaimedJob) throws {
            let arguments = try job.arguments.decode(Arguments.self)
            Thread.sleep(forTimeInterval: Double(arguments.ms) / 1000)
        }
    }

    /// Ends its worker process with `{"status": …}`, as a worker that gives up would.
    struct Exit: JobHandler {
        struct Arguments: Decodable { var status: Int32 }
        func perform(_ job: ClaimedJob) throws {
            exit(try job.arguments.decode(Arguments.self).status)
        }
    }

    /// Kills its own worker process, as a crashing job would.
    struct Crash: JobHandler {
        func perform(_ job: ClaimedJob) throws {
            kill(getpid(), SIGKILL)
        }
    }

    /// A Swift job that waits `{"ms": …}` milliseconds (default: forever) and honours cancellation;
    /// `{"timeout_ms": …}` is its handler's timeout.
    struct Wait: AsyncJobHandler {
        var timeout: Duration? { nil }
        var gracePeriod: Duration { .seconds(2) }
        var maxAttempts: Int? { nil }
        struct Arguments: Decodable { var ms: Int? }
        func perform(_ job: ClaimedJob, context: JobContext) async throws {
            let ms = (try? job.arguments.decode(Arguments.self))?.ms ?? Int(Int32.max)
            context.logger.info("waiting", metadata: ["ms": "\(ms)"])
            try await Task.sleep(for: .milliseconds(ms))
        }
    }

    /// A Swift job that ignores cancellation: it blocks its thread for `{"ms": …}` milliseconds.
    struct Stubborn: AsyncJobHandler {
        var timeout: Duration? { nil }
        var gracePeriod: Duration { .milliseconds(500) }
        var maxAttempts: Int? { nil }
        struct Arguments: Decodable { var ms: Int }
        func perform(_ job: ClaimedJob, context: JobContext) async throws {
            let arguments = try job.arguments.decode(Arguments.self)
            context.logger.info("ignoring cancellation", metadata: ["ms": "\(arguments.ms)"])
            usleep(useconds_t(arguments.ms) * 1000)
        }
    }
}

/// The failure `drover.test.fail` throws.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

/// A job another job waited for, as that job's arguments carry it (`drover_dependencies`).
public struct DependencyResult: Sendable, Equatable {
    public let jobID: Int
    /// `finished` or `failed` (failed for good, cancelled or discarded: only a job enqueued with
    /// `run_after_failure` runs after one).
    public let outcome: String
    public let result: JSON?
    /// True when the results together were too large to carry and this one was left out.
    public let resultOmitted: Bool

    /// The dependencies a job's arguments carry, or none.
    static func list(in arguments: JSON) -> [DependencyResult] {
        guard arguments.isObject, arguments.text.contains("\"drover_dependencies\""),
              let object = try? JSONSerialization.jsonObject(with: Data(arguments.text.utf8)) as? [String: Any],
              let entries = object["drover_dependencies"] as? [[String: Any]] else { return [] }
        return entries.compactMap { entry in
            guard let id = (entry["job_id"] as? NSNumber)?.intValue, let outcome = entry["outcome"] as? String else { return nil }
            var result: JSON?
            if let value = entry["result"], !(value is NSNull),
               let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]) {
                result = try? JSON(validating: String(decoding: data, as: UTF8.self))
            }
            return DependencyResult(jobID: id, outcome: outcome, result: result,
                                    resultOmitted: (entry["result_omitted"] as? NSNumber)?.boolValue ?? false)
        }
    }
}

/// A dependency's result asked for that is not there (``JobContext/result(of:as:)``).
public struct DependencyError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
