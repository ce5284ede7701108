import DroverPersistence
import Foundation

/// A limit on how many jobs of a class with one key run at once.
///
/// ```swift
/// ConcurrencyRule(className: "SyncAccount", keyTemplate: "account:{account_id}", maxRunning: 2, duration: .seconds(300))
/// ```
public struct ConcurrencyRule: Sendable, Equatable {
    public enum OnConflict: String, Sendable, Equatable, CaseIterable {
        /// Wait in blocked until a slot is free.
        case block
        /// Do not run: the job is finished at once as discarded.
        case discard
    }

    public var className: String
    /// `{name}` is replaced by the job's argument `name` (`{a.b}` reaches into objects).
    public var keyTemplate: String
    public var maxRunning: Int
    /// How long a slot may go unrenewed before the dispatcher counts the key's slots again (a slot
    /// lost with a crashed process comes back after it).
    public var duration: Duration
    public var onConflict: OnConflict

    public init(className: String, keyTemplate: String, maxRunning: Int, duration: Duration, onConflict: OnConflict = .block) {
        self.className = className
        self.keyTemplate = keyTemplate
        self.maxRunning = maxRunning
        self.duration = duration
        self.onConflict = onConflict
    }
}

/// One concurrency key with jobs that run or wait.
public struct ConcurrencyKeyInfo: Sendable, Equatable {
    public let key: String
    public let maxRunning: Int
    /// Jobs holding a slot (ready or running).
    public let holding: Int
    public let blocked: Int
    public let expiresAt: Date?
}

extension ConcurrencyRule {
    /// Throws when the rule could never let a job run or names no valid class.
    func check() throws(QueueError) {
        try JobRules.checkClassName(className)
        guard JobRules.concurrencyLimitRange.contains(maxRunning) else {
            throw QueueError(
                .invalidRequest, "max_running \(maxRunning) of \(className)'s concurrency rule is out of range: give "
                    + "\(JobRules.concurrencyLimitRange.lowerBound) to \(JobRules.concurrencyLimitRange.upperBound)",
                field: "max_running")
        }
        guard JobRules.concurrencyDurationRange.contains(duration) else {
            throw QueueError(
                .invalidRequest, "the duration of \(className)'s concurrency rule, \(duration), is out of range: give 1 second to 7 days",
                field: "duration")
        }
        guard !keyTemplate.isEmpty else {
            throw QueueError(.invalidRequest, "the key template of \(className)'s concurrency rule is empty", field: "key")
        }
    }
}

extension ConcurrencyKeyInfo {
    /// A row of ``JobStore/concurrencyKeys(on:)``.
    init(row: Row) throws {
        self.init(key: try row.decode("key"), maxRunning: try row.decode("max_value"), holding: try row.decode("holding"),
                  blocked: try row.decode("blocked"), expiresAt: try row.decode("expires_at"))
    }
}

extension ConcurrencyRule {
    /// A row of class_name, key_template, max_running, duration (seconds) and on_conflict.
    init(row: Row) throws {
        self.init(className: try row.decode("class_name"), keyTemplate: try row.decode("key_template"),
                  maxRunning: try row.decode("max_running"),
                  duration: .milliseconds(Int64(try row.decode("duration", as: Double.self) * 1000)),
                  onConflict: ConcurrencyRule.OnConflict(rawValue: try row.decode("on_conflict")) ?? .block)
    }
}

extension JobStore {
    /// Makes the rules exactly `rules` (the configuration's handlers and the app's job types).
    /// Jobs enqueued from then on get keys; jobs already enqueued keep theirs. Keys in use are
    /// counted again soon (their semaphores expire now), under the limits now in force.
    public func syncConcurrencyRules(_ rules: [ConcurrencyRule], on database: Driver.Database) throws {
        for rule in rules { try rule.check() }
        let now = self.now()
        try database.atomically {
            for rule in rules {
                try database.change("""
                    INSERT INTO \(concurrencyRules) (class_name, key_template, max_running, duration, on_conflict, updated_at)
                    VALUES (\(rule.className), \(rule.keyTemplate), \(rule.maxRunning), \(driver.interval(seconds: "\(rule.duration.seconds)")),
                            \(rule.onConflict.rawValue), \(now.sql))
                    ON CONFLICT (class_name) DO UPDATE SET key_template = excluded.key_template, max_running = excluded.max_running,
                        duration = excluded.duration, on_conflict = excluded.on_conflict, updated_at = excluded.updated_at
                    """)
            }
            try database.change("DELETE FROM \(concurrencyRules) WHERE NOT (\(driver.contains("class_name", names: rules.map(\.className))))")
            try database.change("UPDATE \(semaphores) SET expires_at = \(now.sql)")
        }
    }

    /// Every rule, by class.
    public func concurrencyRules(on database: Driver.Database) throws -> [ConcurrencyRule] {
        try database.fetch("""
            SELECT class_name, key_template, max_running, \(driver.seconds(of: "duration")) AS duration, on_conflict
            FROM \(concurrencyRules) ORDER BY class_name
            """).map(ConcurrencyRule.init(row:))
    }

    /// The rules by class (read once per enqueue; none is the common case).
    func concurrencyRulesByClass(on database: Driver.Database) throws -> [String: ConcurrencyRule] {
        Dictionary(uniqueKeysWithValues: try concurrencyRules(on: database).map { ($0.className, $0) })
    }

    /// Every key in use: its limit, the jobs holding a slot and the jobs waiting.
    public func concurrencyKeys(on database: Driver.Database) throws -> [ConcurrencyKeyInfo] {
        try database.fetch("""
            SELECT s.key, s.max_value, s.expires_at,
                   (SELECT count(*) FROM \(jobs) j
                    WHERE j.concurrency_key = s.key AND j.finished_at IS NULL AND j.failed_at IS NULL
                      AND (EXISTS (SELECT 1 FROM \(ready) r WHERE r.job_id = j.id)
                           OR EXISTS (SELECT 1 FROM \(claimed) c WHERE c.job_id = j.id))) AS holding,
                   (SELECT count(*) FROM \(blocked) b WHERE b.concurrency_key = s.key) AS blocked
            FROM \(semaphores) s ORDER BY s.key
            """).map(ConcurrencyKeyInfo.init(row:))
    }
}
