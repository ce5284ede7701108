import DroverPersistence
import Foundation

/// Concurrency limits on SQLite: the same rules as PostgreSQL's `concurrency_*` functions (see
/// `DroverSchema.concurrencySQL`), in Swift. SQLite's write lock serializes every write
/// transaction, so the semaphore needs no row lock: the transaction is the lock.
extension SQLiteJobStore {
    private var semaphores: SQLIdentifier { table("semaphores") }
    private var rulesTable: SQLIdentifier { table("concurrency_rules") }
    private var blocked: SQLIdentifier { table("blocked_executions") }

    public func syncConcurrencyRules(_ rules: [ConcurrencyRule], on database: SQLiteConnection) throws {
        try database.withTransaction { db in
            let now = Self.timestamp(Date())
            for rule in rules {
                try db.execute("""
                    INSERT INTO \(rulesTable) (class_name, key_template, max_running, duration, on_conflict, updated_at)
                    VALUES (\(rule.className), \(rule.keyTemplate), \(rule.maxRunning), \(rule.duration.seconds),
                            \(rule.onConflict.rawValue), \(now))
                    ON CONFLICT (class_name) DO UPDATE SET key_template = excluded.key_template, max_running = excluded.max_running,
                        duration = excluded.duration, on_conflict = excluded.on_conflict, updated_at = excluded.updated_at
                    """)
            }
            let classes = String(decoding: try JSONEncoder().encode(rules.map(\.className)), as: UTF8.self)
            try db.execute("DELETE FROM \(rulesTable) WHERE class_name NOT IN (SELECT value FROM json_each(\(classes)))")
            // Keys in use are counted again soon, under the limits now in force.
            try db.execute("UPDATE \(semaphores) SET expires_at = \(now)")
        }
    }

    public func concurrencyRules(on database: SQLiteConnection) throws -> [ConcurrencyRule] {
        try database.query("SELECT class_name, key_template, max_running, duration, on_conflict FROM \(rulesTable) ORDER BY class_name")
            .map(ConcurrencyRule.init(row:))
    }

    public func concurrencyKeys(on database: SQLiteConnection) throws -> [ConcurrencyKeyInfo] {
        try database.query(JobStore.concurrencyKeysSQL(schema: schema)).map(ConcurrencyKeyInfo.init(row:))
    }

    /// The rules by class, read once per enqueue (none: no work at all).
    func concurrencyRulesByClass(on db: SQLiteConnection) throws -> [String: ConcurrencyRule] {
        Dictionary(uniqueKeysWithValues: try concurrencyRules(on: db).map { ($0.className, $0) })
    }

    /// Admits due jobs with a concurrency key: each takes a free slot and goes to ready, or waits in
    /// blocked, or is finished as discarded. Returns how many went to ready.
    @discardableResult
    func admit(_ jobIDs: [Int], on db: SQLiteConnection) throws -> Int {
        guard !jobIDs.isEmpty else { return 0 }
        let candidates = try db.query("""
            SELECT j.id, j.queue_name, j.priority, j.concurrency_key, r.max_running, r.duration, r.on_conflict
            FROM \(jobs) j LEFT JOIN \(rulesTable) r ON r.class_name = j.class_name
            WHERE j.id IN (SELECT value FROM json_each(\(Self.idList(jobIDs)))) ORDER BY j.priority, j.id
            """)
        var admitted = 0
        let now = Date()
        for job in candidates {
            let id = try job.decode("id", as: Int.self)
            let key = try job.decode("concurrency_key", as: String?.self)
            let maxRunning = try job.decode("max_running", as: Int?.self)
            let lease = try job.decode("duration", as: Double?.self) ?? 300
            var acquired = true
            if let key, let maxRunning {
                acquired = try !db.query("""
                    INSERT INTO \(semaphores) (key, value, max_value, duration, expires_at, created_at, updated_at)
                    VALUES (\(key), \(maxRunning - 1), \(maxRunning), \(lease), \(Self.timestamp(now.addingTimeInterval(lease))),
                            \(Self.timestamp(now)), \(Self.timestamp(now)))
                    ON CONFLICT (key) DO UPDATE SET value = value - 1, expires_at = \(Self.timestamp(now.addingTimeInterval(lease))),
                        updated_at = excluded.updated_at
                    WHERE value > 0
                    RETURNING key
                    """).isEmpty
            }
            if acquired {
                try db.execute("""
                    INSERT INTO \(ready) (job_id, queue_name, priority)
                    VALUES (\(id), \(try job.decode("queue_name", as: String.self)), \(try job.decode("priority", as: Int.self)))
                    """)
                db.wakeWorkers()
                admitted += 1
            } else if try job.decode("on_conflict", as: String?.self) == ConcurrencyRule.OnConflict.discard.rawValue {
                let error = JobFailure(
                    errorClass: "Discarded",
                    message: "discarded at enqueue: \(maxRunning ?? 0) jobs with concurrency key \(key ?? "") were running already")
                try db.execute("""
                    UPDATE \(jobs) SET finished_at = \(Self.timestamp(now)), updated_at = \(Self.timestamp(now)), last_error = \(error.json.text)
                    WHERE id = \(id)
                    """)
            } else {
                try db.execute("""
                    INSERT INTO \(blocked) (job_id, queue_name, priority, concurrency_key, expires_at)
                    VALUES (\(id), \(try job.decode("queue_name", as: String.self)), \(try job.decode("priority", as: Int.self)),
                            \(key), \(Self.timestamp(now.addingTimeInterval(lease))))
                    """)
            }
        }
        return admitted
    }

    /// Gives back one slot per element of `keys` and lets the next blocked job of each key run.
    /// Returns how many went to ready.
    @discardableResult
    func signal(_ keys: [String], on db: SQLiteConnection) throws -> Int {
        var moved = 0
        for key in keys {
            let now = Date()
            guard let semaphore = try db.query("""
                UPDATE \(semaphores) SET value = min(value + 1, max_value), updated_at = \(Self.timestamp(now)) WHERE key = \(key)
                RETURNING value, duration
                """).first else {
                moved += try recount(key, on: db)
                continue
            }
            guard try semaphore.decode("value", as: Int.self) > 0 else { continue }
            guard let next = try db.query("""
                SELECT job_id, queue_name, priority FROM \(blocked) WHERE concurrency_key = \(key) ORDER BY priority, job_id LIMIT 1
                """).first else { continue }
            let lease = try semaphore.decode("duration", as: Double.self)
            try unblock(next, on: db)
            try db.execute("""
                UPDATE \(semaphores) SET value = value - 1, expires_at = \(Self.timestamp(now.addingTimeInterval(lease))) WHERE key = \(key)
                """)
            moved += 1
        }
        return moved
    }

    /// Moves a blocked job (a row of job_id, queue_name, priority) to ready.
    private func unblock(_ row: Row, on db: SQLiteConnection) throws {
        let id = try row.decode("job_id", as: Int.self)
        try db.execute("DELETE FROM \(blocked) WHERE job_id = \(id)")
        try db.execute("""
            INSERT INTO \(ready) (job_id, queue_name, priority)
            VALUES (\(id), \(try row.decode("queue_name", as: String.self)), \(try row.decode("priority", as: Int.self)))
            """)
        db.wakeWorkers()
    }

    /// Counts the slots of `key` again from the jobs that hold them (ready or claimed), lets as
    /// many blocked jobs run as there are free slots, and renews the semaphore; a key nothing holds
    /// or waits for loses it. Returns how many went to ready.
    @discardableResult
    func recount(_ key: String, on db: SQLiteConnection) throws -> Int {
        let rule = try db.query("""
            SELECT r.max_running, r.duration FROM \(jobs) j JOIN \(rulesTable) r ON r.class_name = j.class_name
            WHERE j.concurrency_key = \(key) AND j.finished_at IS NULL AND j.failed_at IS NULL LIMIT 1
            """).first
        let limit = try rule?.decode("max_running", as: Int.self) ?? Int(Int32.max)
        let lease = try rule?.decode("duration", as: Double.self) ?? 300
        let holders = try db.query("""
            SELECT count(*) AS n FROM \(jobs) j
            WHERE j.concurrency_key = \(key) AND j.finished_at IS NULL AND j.failed_at IS NULL
              AND (EXISTS (SELECT 1 FROM \(ready) r WHERE r.job_id = j.id) OR EXISTS (SELECT 1 FROM \(claimed) c WHERE c.job_id = j.id))
            """)[0].decode("n", as: Int.self)
        let next = try db.query("""
            SELECT job_id, queue_name, priority FROM \(blocked) WHERE concurrency_key = \(key)
            ORDER BY priority, job_id LIMIT \(max(limit - holders, 0))
            """)
        for row in next { try unblock(row, on: db) }
        let now = Date()
        let expires = Self.timestamp(now.addingTimeInterval(lease))
        let waiting = try !db.query("SELECT 1 FROM \(blocked) WHERE concurrency_key = \(key) LIMIT 1").isEmpty
        if holders + next.count == 0 && !waiting {
            try db.execute("DELETE FROM \(semaphores) WHERE key = \(key)")
        } else {
            try db.execute("""
                INSERT INTO \(semaphores) (key, value, max_value, duration, expires_at, created_at, updated_at)
                VALUES (\(key), \(max(limit - holders - next.count, 0)), \(limit), \(lease), \(expires), \(Self.timestamp(now)),
                        \(Self.timestamp(now)))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, max_value = excluded.max_value, duration = excluded.duration,
                    expires_at = excluded.expires_at, updated_at = excluded.updated_at
                """)
            try db.execute("UPDATE \(blocked) SET expires_at = \(expires) WHERE concurrency_key = \(key)")
        }
        return next.count
    }

    /// Counts again up to `batchSize` keys whose semaphore or blocked jobs have not moved for their
    /// duration (the dispatcher's safety net). Returns how many jobs went to ready.
    @discardableResult
    public func expireConcurrency(batchSize: Int = 100, on database: SQLiteConnection) throws -> Int {
        try database.withTransaction { db in
            let now = Self.timestamp(Date())
            let keys = try db.query("""
                SELECT key FROM (SELECT concurrency_key AS key FROM \(blocked) WHERE expires_at <= \(now)
                                 UNION SELECT key FROM \(semaphores) WHERE expires_at <= \(now))
                LIMIT \(batchSize)
                """).map { try $0.decode("key", as: String.self) }
            return try keys.reduce(0) { $0 + (try recount($1, on: db)) }
        }
    }
}

extension ConcurrencyRule {
    /// The key of a job with `arguments`: the template with each `{name}` replaced by that argument
    /// (`{a.b}` reaches into objects; a string as it is, anything else as JSON); nil when one is
    /// missing or null. As PostgreSQL's `concurrency_key` function.
    public func key(for arguments: JSON) -> String? {
        guard let root = try? JSONDecoder().decode(ArgumentValue.self, from: Data(arguments.text.utf8)) else { return nil }
        var result = ""
        var rest = Substring(keyTemplate)
        while let opening = rest.firstIndex(of: "{"), let closing = rest[opening...].firstIndex(of: "}") {
            var value: ArgumentValue? = root
            for part in rest[rest.index(after: opening)..<closing].split(separator: ".", omittingEmptySubsequences: false) {
                guard case .object(let members) = value else { return nil }
                value = members[String(part)]
            }
            guard let text = value?.text else { return nil }
            result += rest[..<opening] + text
            rest = rest[rest.index(after: closing)...]
        }
        return result + rest
    }

    /// A JSON value, as much of it as a key needs.
    private enum ArgumentValue: Decodable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case object([String: ArgumentValue])
        case other(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let bool = try? container.decode(Bool.self) {
                self = .bool(bool)
            } else if let int = try? container.decode(Int64.self) {
                self = .number(String(int))
            } else if let double = try? container.decode(Double.self) {
                self = .number(String(double))
            } else if let string = try? container.decode(String.self) {
                self = .string(string)
            } else if let object = try? container.decode([String: ArgumentValue].self) {
                self = .object(object)
            } else {
                self = .other("[…]")
            }
        }

        /// The text a key takes; nil for null.
        var text: String? {
            switch self {
            case .null: return nil
            case .bool(let value): return value ? "true" : "false"
            case .number(let text), .string(let text), .other(let text): return text
            case .object: return "{…}"
            }
        }
    }
}
