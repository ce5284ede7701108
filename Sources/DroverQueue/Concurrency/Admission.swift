import DroverPersistence
import Foundation

/// How jobs with a concurrency key get a slot: the policy, with no database in it.
///
/// A key has `max_running` slots; a job holds one while it is ready or claimed, and the key's
/// semaphore counts the free ones. Due jobs are admitted in priority order, then by id: each takes
/// a free slot and goes to ready, or waits in blocked, or (a rule that says `discard`) is finished
/// at once as discarded. A job of a class with no rule (any more) is not limited.
public enum Admission {
    public enum Verdict: Sendable, Equatable {
        case ready
        case blocked
        case discarded
    }

    /// One job to admit, in the order admission takes them.
    public struct Candidate: Sendable, Equatable {
        public let key: String?
        /// Its class's rule; nil: no limit.
        public let maxRunning: Int?
        public let onConflict: ConcurrencyRule.OnConflict

        public init(key: String?, maxRunning: Int?, onConflict: ConcurrencyRule.OnConflict) {
            self.key = key
            self.maxRunning = maxRunning
            self.onConflict = onConflict
        }
    }

    /// The verdict of each candidate, taking slots from `free` (free slots by key) as it goes.
    public static func decide(_ candidates: [Candidate], free: inout [String: Int]) -> [Verdict] {
        candidates.map { candidate in
            guard let key = candidate.key, candidate.maxRunning != nil else { return .ready }
            if let slots = free[key], slots > 0 {
                free[key] = slots - 1
                return .ready
            }
            return candidate.onConflict == .discard ? .discarded : .blocked
        }
    }
}

extension JobStore {
    /// Admits due jobs that have a concurrency key (see ``Admission``). Semaphores are created (a
    /// key nothing holds has every slot free) and locked in key order, so that two admissions
    /// with several keys never wait for each other. Returns how many went to ready.
    @discardableResult
    func admit(_ jobIDs: [Int], now: Moment, on database: Driver.Database) throws -> Int {
        guard !jobIDs.isEmpty else { return 0 }
        let rows = try database.fetch("""
            SELECT j.id, j.concurrency_key, r.max_running, \(driver.seconds(of: "r.duration")) AS duration,
                   r.on_conflict
            FROM \(jobs) j LEFT JOIN \(concurrencyRules) r ON r.class_name = j.class_name
            WHERE \(driver.contains("j.id", ids: jobIDs)) ORDER BY j.priority, j.id
            """)
        var candidates: [Admission.Candidate] = []
        var leases: [String: (maxRunning: Int, seconds: Double)] = [:]
        for row in rows {
            let key = try row.decode("concurrency_key", as: String?.self)
            let maxRunning = try row.decode("max_running", as: Int?.self)
            let onConflict = ConcurrencyRule.OnConflict(rawValue: try row.decode("on_conflict", as: String?.self) ?? "") ?? .block
            candidates.append(Admission.Candidate(key: key, maxRunning: maxRunning, onConflict: onConflict))
            if let key, let maxRunning, leases[key] == nil {
                leases[key] = (maxRunning, try row.decode("duration", as: Double?.self) ?? 300)
            }
        }
        let keys = leases.keys.sorted()
        for key in keys {
            let lease = leases[key]!
            try database.change("""
                INSERT INTO \(semaphores) (key, value, max_value, duration, expires_at, created_at, updated_at)
                VALUES (\(key), \(lease.maxRunning), \(lease.maxRunning), \(driver.interval(seconds: "\(lease.seconds)")),
                        \(now.after(lease.seconds)), \(now.sql), \(now.sql))
                ON CONFLICT (key) DO NOTHING
                """)
        }
        var free: [String: Int] = [:]
        if !keys.isEmpty {
            for row in try database.fetch("""
                SELECT key, value FROM \(semaphores) WHERE \(driver.contains("key", names: keys)) ORDER BY key\(driver.lockingRows)
                """) {
                free[try row.decode("key", as: String.self)] = try row.decode("value", as: Int.self)
            }
        }
        let before = free
        let verdicts = Admission.decide(candidates, free: &free)
        for key in keys where free[key] != before[key] {
            try database.change("""
                UPDATE \(semaphores) SET value = \(free[key] ?? 0), expires_at = \(now.after(leases[key]!.seconds)), updated_at = \(now.sql)
                WHERE key = \(key)
                """)
        }
        var admitted: [Int] = []
        var discarded: [EndedJob] = []
        var blockedByKey: [String: [Int]] = [:]
        for (row, (candidate, verdict)) in zip(rows, zip(candidates, verdicts)) {
            let id = try row.decode("id", as: Int.self)
            switch verdict {
            case .ready:
                admitted.append(id)
            case .blocked:
                blockedByKey[candidate.key!, default: []].append(id)
            case .discarded:
                let error = JobFailure(
                    errorClass: "Discarded",
                    message: "discarded at enqueue: \(candidate.maxRunning!) jobs with concurrency key \(candidate.key!) were running already")
                let row = try database.fetch("""
                    UPDATE \(jobs) SET finished_at = \(now.sql), updated_at = \(now.sql), last_error = \(error.json) WHERE id = \(id)
                    RETURNING id, batch_id, has_dependants
                    """)[0]
                // For its batch and the jobs waiting for it, a job discarded did not finish.
                discarded.append(try EndedJob(row: row, finished: false))
            }
        }
        try insertReady(admitted, now: now, on: database)
        for (key, ids) in blockedByKey.sorted(by: { $0.key < $1.key }) {
            try database.change("""
                INSERT INTO \(blocked) (job_id, queue_name, priority, concurrency_key, expires_at, created_at)
                SELECT id, queue_name, priority, concurrency_key, \(now.after(leases[key]!.seconds)), \(now.sql)
                FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id
                """)
        }
        try settle(discarded, now: now, on: database)
        return admitted.count
    }

    /// Gives back one slot per element of `keys` (a key twice: two slots) and lets the blocked
    /// jobs of each key run, in priority order, while slots are free. Keys are taken in order.
    /// Returns how many went to ready.
    @discardableResult
    func signal(_ keys: [String], now: Moment, on database: Driver.Database) throws -> Int {
        guard !keys.isEmpty else { return 0 }
        var counts: [String: Int] = [:]
        for key in keys { counts[key, default: 0] += 1 }
        var moved = 0
        for (key, count) in counts.sorted(by: { $0.key < $1.key }) {
            guard let row = try database.fetch("""
                UPDATE \(semaphores) SET value = CASE WHEN value + \(count) < max_value THEN value + \(count) ELSE max_value END,
                    updated_at = \(now.sql)
                WHERE key = \(key) RETURNING value, \(driver.seconds(of: "duration")) AS duration
                """, prepared: true).first else {
                // Its semaphore is gone (expired and counted again): count it again now.
                moved += try recount(key, now: now, on: database)
                continue
            }
            let free = try row.decode("value", as: Int.self)
            guard free > 0 else { continue }
            let next = try unblock(key, limit: free, now: now, on: database)
            guard next > 0 else { continue }
            try database.change("""
                UPDATE \(semaphores) SET value = value - \(next), expires_at = \(now.after(try row.decode("duration", as: Double.self)))
                WHERE key = \(key)
                """)
            moved += next
        }
        return moved
    }

    /// Moves up to `limit` blocked jobs of `key` to ready, in priority order (passing over rows
    /// another transaction holds); returns how many.
    private func unblock(_ key: String, limit: Int, now: Moment, on database: Driver.Database) throws -> Int {
        guard limit > 0 else { return 0 }
        let ids = try database.ids("""
            WITH next AS MATERIALIZED (
                SELECT job_id FROM \(blocked) WHERE concurrency_key = \(key) ORDER BY priority, job_id LIMIT \(limit)\(driver.lockingRowsSkippingLocked))
            DELETE FROM \(blocked) WHERE job_id IN (SELECT job_id FROM next)
            RETURNING job_id
            """, column: "job_id")
        try insertReady(ids, now: now, on: database)
        return ids.count
    }

    /// Counts the slots of `key` again from the jobs that hold them (ready or claimed), lets as
    /// many blocked jobs run as there are free slots, and renews the semaphore; a key nothing
    /// holds or waits for loses it. The limit is the rule of a live job of the key (limits change
    /// with the configuration); with none left, nothing limits what waits. Returns how many went
    /// to ready.
    @discardableResult
    func recount(_ key: String, now: Moment, on database: Driver.Database) throws -> Int {
        let rule = try database.fetch("""
            SELECT r.max_running, \(driver.seconds(of: "r.duration")) AS duration
            FROM \(jobs) j JOIN \(concurrencyRules) r ON r.class_name = j.class_name
            WHERE j.concurrency_key = \(key) AND j.finished_at IS NULL AND j.failed_at IS NULL ORDER BY j.id LIMIT 1
            """).first
        let limit = try rule?.decode("max_running", as: Int.self) ?? Int(Int32.max)
        let lease = try rule?.decode("duration", as: Double.self) ?? 300
        // The semaphore's row lock serializes this with admissions and signals of the key.
        try database.change("""
            INSERT INTO \(semaphores) AS s (key, value, max_value, duration, expires_at, created_at, updated_at)
            VALUES (\(key), 0, \(limit), \(driver.interval(seconds: "\(lease)")), \(now.after(lease)), \(now.sql), \(now.sql))
            ON CONFLICT (key) DO UPDATE SET max_value = excluded.max_value, duration = excluded.duration
            """)
        let holders = try database.fetch("""
            SELECT count(*) AS n FROM \(jobs) j
            WHERE j.concurrency_key = \(key) AND j.finished_at IS NULL AND j.failed_at IS NULL
              AND (EXISTS (SELECT 1 FROM \(ready) r WHERE r.job_id = j.id) OR EXISTS (SELECT 1 FROM \(claimed) c WHERE c.job_id = j.id))
            """)[0].decode("n", as: Int.self)
        let moved = try unblock(key, limit: max(limit - holders, 0), now: now, on: database)
        let waiting = try !database.fetch("SELECT 1 FROM \(blocked) WHERE concurrency_key = \(key) LIMIT 1").isEmpty
        if holders + moved == 0 && !waiting {
            try database.change("DELETE FROM \(semaphores) WHERE key = \(key)")
        } else {
            try database.change("""
                UPDATE \(semaphores) SET value = \(max(limit - holders - moved, 0)), expires_at = \(now.after(lease)), updated_at = \(now.sql)
                WHERE key = \(key)
                """)
            try database.change("UPDATE \(blocked) SET expires_at = \(now.after(lease)) WHERE concurrency_key = \(key)")
        }
        return moved
    }

    /// Counts again up to `batchSize` keys whose semaphore or blocked jobs have not moved for
    /// their rule's duration (the dispatcher's safety net: a slot lost with a crashed process
    /// comes back, and no job stays blocked while its key is free). Returns how many jobs went to
    /// ready.
    @discardableResult
    public func expireConcurrency(batchSize: Int = 100, on database: Driver.Database) throws -> Int {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        let now = self.now()
        return try database.atomically {
            let keys = try database.fetch("""
                SELECT key FROM (
                    SELECT concurrency_key AS key FROM \(blocked) WHERE expires_at <= \(now.sql)
                    UNION SELECT key FROM \(semaphores) WHERE expires_at <= \(now.sql)
                ) expired ORDER BY key LIMIT \(batchSize)
                """, prepared: true).map { try $0.decode("key", as: String.self) }
            return try keys.reduce(0) { $0 + (try recount($1, now: now, on: database)) }
        }
    }
}
