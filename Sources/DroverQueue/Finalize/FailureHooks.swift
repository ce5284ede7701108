import DroverPersistence
import Foundation

/// When a job of `className` fails for good (out of attempts, a permanent failure, its crash
/// limit; a cancellation only with `includeCancelled`), a job of `hookClass` is enqueued in the
/// same transaction, its arguments saying which job failed and how (``FailureHookArguments``).
///
/// ```swift
/// FailureHook(className: "SendInvoice", hookClass: "NotifyOps")
/// FailureHook(className: FailureHook.everyClass, hookClass: "NotifyOps", includeCancelled: true)
/// ```
public struct FailureHook: Sendable, Equatable, Codable {
    /// The class whose failures it reports, or ``everyClass`` for every class without a hook of its own.
    public var className: String
    public var hookClass: String
    public var includeCancelled: Bool

    /// The `className` of the hook for every class that has none of its own (the configuration's
    /// top-level `on_failure`).
    public static let everyClass = "*"

    public init(className: String, hookClass: String, includeCancelled: Bool = false) {
        self.className = className
        self.hookClass = hookClass
        self.includeCancelled = includeCancelled
    }

    func check() throws(QueueError) {
        if className != Self.everyClass { try JobRules.checkClassName(className) }
        do {
            try JobRules.checkClassName(hookClass)
        } catch {
            throw QueueError(.invalidRequest, "the on_failure class of \(className): \(error.message)", field: "on_failure")
        }
    }
}

/// The arguments of a failure hook's job, but for the failed job's own `arguments`, which are
/// spliced in as they are stored (or left out, with `arguments_omitted`, when too large to carry).
public struct FailureHookArguments: Codable, Sendable, Equatable {
    public var jobID: Int
    public var className: String
    public var queue: String
    public var attempts: Int
    public var crashes: Int
    public var error: JobFailure?
    /// True when it failed by `drover jobs cancel` (hooks that asked for cancellations only).
    public var cancelled: Bool
    public var argumentsOmitted: Bool?

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id", className = "class", queue, attempts, crashes, error, cancelled, argumentsOmitted = "arguments_omitted"
    }

    /// `{"arguments": …, "job_id": …, …}`: these fields with `arguments` spliced in.
    func json(arguments: JSON?) throws -> JSON {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let rest = try JSON(encoding: self, encoder: encoder).text
        guard let arguments else { return try JSON(validating: rest) }
        return try JSON(validating: "{\"arguments\":" + arguments.text + "," + rest.dropFirst())
    }
}

extension JobStore {
    /// Makes the stored hooks exactly `hooks` (the configuration's and the Swift job types').
    public func syncFailureHooks(_ hooks: [FailureHook], on database: Driver.Database) throws {
        for hook in hooks { try hook.check() }
        let now = self.now()
        try database.atomically {
            for hook in hooks {
                try database.change("""
                    INSERT INTO \(failureHooksTable) (class_name, hook_class, include_cancelled, updated_at)
                    VALUES (\(hook.className), \(hook.hookClass), \(hook.includeCancelled), \(now.sql))
                    ON CONFLICT (class_name) DO UPDATE SET hook_class = excluded.hook_class,
                        include_cancelled = excluded.include_cancelled, updated_at = excluded.updated_at
                    """)
            }
            try database.change("DELETE FROM \(failureHooksTable) WHERE NOT (\(driver.contains("class_name", names: hooks.map(\.className))))")
        }
    }

    /// Every stored hook, by class (`*` first).
    public func failureHooks(on database: Driver.Database) throws -> [FailureHook] {
        try database.fetch("SELECT class_name, hook_class, include_cancelled FROM \(failureHooksTable) ORDER BY class_name").map { row in
            FailureHook(className: try row.decode("class_name"), hookClass: try row.decode("hook_class"),
                        includeCancelled: try row.decode("include_cancelled"))
        }
    }

    var failureHooksTable: SQLIdentifier { table("failure_hooks") }

    /// For each job of `jobIDs` that has just failed for good (in this transaction), enqueues its
    /// class's hook (or the hook of every class), unless the job is a hook's own job or was
    /// cancelled and the hook did not ask for cancellations. Arguments too large to carry with the
    /// rest are left out (`arguments_omitted`), so that a hook never makes a failure fail.
    func enqueueFailureHooks(for jobIDs: [Int], cancelled: Set<Int>, on database: Driver.Database) throws {
        guard !jobIDs.isEmpty else { return }
        let hooks = Dictionary(uniqueKeysWithValues: try failureHooks(on: database).map { ($0.className, $0) })
        guard !hooks.isEmpty else { return }
        var hookJobs: [NewJob] = []
        for row in try database.fetch("""
            SELECT id, class_name, queue_name, arguments, attempts, crashes, last_error FROM \(jobs)
            WHERE \(driver.contains("id", ids: jobIDs)) ORDER BY id
            """) {
            let id = try row.decode("id", as: Int.self)
            let className = try row.decode("class_name", as: String.self)
            guard let hook = hooks[className] ?? hooks[FailureHook.everyClass], hook.hookClass != className,
                  !cancelled.contains(id) || hook.includeCancelled else { continue }
            var fields = FailureHookArguments(
                jobID: id, className: className, queue: try row.decode("queue_name"), attempts: try row.decode("attempts"),
                crashes: try row.decode("crashes"),
                error: try row.decode("last_error", as: JSON?.self).flatMap { try? $0.decode(JobFailure.self) },
                cancelled: cancelled.contains(id))
            var carried = try row.decode("arguments", as: JSON?.self)
            // The error is at most a few KiB (4 KiB of output): what is left of the 1 MiB is the arguments'.
            if (carried?.text.utf8.count ?? 0) > JobRules.maxArgumentsBytes - 64 * 1024 {
                carried = nil
                fields.argumentsOmitted = true
            }
            hookJobs.append(NewJob(hook.hookClass, arguments: try fields.json(arguments: carried)))
        }
        _ = try enqueue(hookJobs, on: database)
    }
}
