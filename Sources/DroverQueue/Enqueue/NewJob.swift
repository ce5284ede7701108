import DroverPersistence
import Foundation

/// A job to enqueue.
///
/// ```swift
/// let job = NewJob("SendReport", arguments: try JSON(encoding: ["kind": "daily"]), queue: "mail", runAt: .now + 3600)
/// ```
public struct NewJob: Sendable, Equatable {
    /// What runs it: a handler's name in the configuration, or a Swift `Job` type's name.
    public var className: String
    /// A JSON object or array, handed to the job as it is.
    public var arguments: JSON
    public var queue: String
    /// Lower runs first.
    public var priority: Int
    /// When it may run; nil or a past time means now.
    public var runAt: Date?
    /// How many times it may run before it fails for good.
    public var maxAttempts: Int
    /// How long one attempt may run before it is stopped and failed with a timeout error; nil
    /// leaves it to the handler's `timeout`. Whole milliseconds, from 1 second to 7 days.
    public var timeout: Duration?
    /// While a live job (scheduled, ready, claimed or blocked) has this key, enqueueing this one
    /// returns that job's id instead of creating another.
    public var uniqueKey: String?
    /// The enqueuer's trace context, as its instrument injected it (`traceparent`, `tracestate`,
    /// …): the worker extracts it around the job's `perform`. Nil stores nothing.
    public var traceContext: [String: String]?
    /// The jobs it waits for: it is `waiting` until every one of them finished, then ready (or
    /// scheduled, or admitted by its concurrency key). If one of them fails for good, is
    /// cancelled or discarded, it fails too, unless ``runAfterFailure``. Each must exist when
    /// this one is enqueued (so no cycle can form).
    public var after: [Int]
    /// Run once every job of ``after`` finished or failed for good, instead of failing with the
    /// first that fails.
    public var runAfterFailure: Bool
    /// The open batch it joins (``NewBatch``); nil for none.
    public var batchID: Int?

    public init(
        _ className: String, arguments: JSON = JSON.emptyObject, queue: String = JobRules.defaultQueue,
        priority: Int = 0, runAt: Date? = nil, maxAttempts: Int = JobRules.defaultMaxAttempts, timeout: Duration? = nil,
        uniqueKey: String? = nil, traceContext: [String: String]? = nil, after: [Int] = [], runAfterFailure: Bool = false,
        batchID: Int? = nil
    ) {
        self.after = after
        self.runAfterFailure = runAfterFailure
        self.batchID = batchID
        self.className = className
        self.arguments = arguments
        self.queue = queue
        self.priority = priority
        self.runAt = runAt
        self.maxAttempts = maxAttempts
        self.timeout = timeout
        self.uniqueKey = uniqueKey
        self.traceContext = traceContext
    }

    /// A job that runs `delay` from now.
    ///
    /// ```swift
    /// let reminder = NewJob("SendReminder", arguments: args, runIn: .seconds(3600))
    /// ```
    public init(
        _ className: String, arguments: JSON = JSON.emptyObject, queue: String = JobRules.defaultQueue,
        priority: Int = 0, runIn delay: Duration, maxAttempts: Int = JobRules.defaultMaxAttempts, timeout: Duration? = nil,
        uniqueKey: String? = nil
    ) {
        self.init(className, arguments: arguments, queue: queue, priority: priority,
                  runAt: Date().addingTimeInterval(delay.seconds), maxAttempts: maxAttempts, timeout: timeout, uniqueKey: uniqueKey)
    }
}
