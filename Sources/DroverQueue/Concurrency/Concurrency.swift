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

extension ConcurrencyKeyInfo {
    /// A row of ``JobStore/concurrencyKeysSQL(schema:)``.
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
    var semaphores: SQLIdentifier { table("semaphores") }
    var concurrencyRules: SQLIdentifier { table("concurrency_rules") }

    /// Makes the rules exactly `rules` (the configuration's handlers and the app's job types).
    /// Jobs enqueued from then on get keys; jobs already enqueued keep theirs.
    public func syncConcurrencyRules(_ rules: [ConcurrencyRule], on connection: Connection) throws {
        try connection.withTransaction { connection in
            for rule in rules {
                try connection.execute("""
                    INSERT INTO \(concurrencyRules) (class_name, key_template, max_running, duration, on_conflict)
                    VALUES (\(rule.className), \(rule.keyTemplate), \(rule.maxRunning), make_interval(secs => \(rule.duration.seconds)),
                            \(rule.onConflict.rawValue))
                    ON CONFLICT (class_name) DO UPDATE SET key_template = excluded.key_template, max_running = excluded.max_running,
                        duration = excluded.duration, on_conflict = excluded.on_conflict, updated_at = now()
                    """)
            }
            try connection.execute("DELETE FROM \(concurrencyRules) WHERE NOT (class_name = ANY(\(rules.map(\.className))))")
            // Keys in use are counted again soon, under the limits now in force.
            try connection.execute("UPDATE \(semaphores) SET expires_at = now()")
        }
    }

    /// Every rule, by class.
    public func concurrencyRules(on connection: Connection) throws -> [ConcurrencyRule] {
        try connection.query("""
            SELECT class_name, key_template, max_running, extract(epoch FROM duration)::float8 AS duration, on_conflict
            FROM \(concurrencyRules) ORDER BY class_name
            """).map(ConcurrencyRule.init(row:))
    }

    /// Every key in use: its limit, the jobs holding a slot and the jobs waiting.
    public func concurrencyKeys(on connection: Connection) throws -> [ConcurrencyKeyInfo] {
        try connection.query(Self.concurrencyKeysSQL(schema: schema)).map(ConcurrencyKeyInfo.init(row:))
    }

    /// Every key in use with its jobs, in SQL both backends run.
    static func concurrencyKeysSQL(schema: SQLIdentifier) -> SQL {
        func table(_ name: String) -> SQLIdentifier { schema.qualifying(name) }
        return """
            SELECT s.key, s.max_value, s.expires_at,
                   (SELECT count(*) FROM \(table("jobs")) j
                    WHERE j.concurrency_key = s.key AND j.finished_at IS NULL AND j.failed_at IS NULL
                      AND (EXISTS (SELECT 1 FROM \(table("ready_executions")) r WHERE r.job_id = j.id)
                           OR EXISTS (SELECT 1 FROM \(table("claimed_executions")) c WHERE c.job_id = j.id))) AS holding,
                   (SELECT count(*) FROM \(table("blocked_executions")) b WHERE b.concurrency_key = s.key) AS blocked
            FROM \(table("semaphores")) s ORDER BY s.key
            """
    }

    /// Counts the slots of keys that have not moved for their duration again, letting blocked jobs
    /// run where slots are free (the dispatcher's safety net). Returns how many jobs went to ready.
    @discardableResult
    public func expireConcurrency(batchSize: Int = 100, on connection: Connection) throws(DatabaseError) -> Int {
        try connection.query(prepared: true, "SELECT \(schema).concurrency_expire(\(batchSize)::integer) AS n")[0].decode("n", as: Int.self)
    }

    /// Gives back one slot per key of `keys` and lets the next blocked job of each run.
    func signal(_ keys: [String], on connection: Connection) throws(DatabaseError) {
        guard !keys.isEmpty else { return }
        _ = try connection.query(prepared: true, "SELECT \(schema).concurrency_signal(\(keys))")
    }
}
