import DroverPersistence
import Foundation

/// One rate-limit key in use, as `drover rate-limits` shows it.
public struct RateLimitKeyInfo: Sendable, Equatable {
    public let key: String
    public let limit: Int
    public let period: Duration
    /// Starts in the last period.
    public let started: Int
    /// Jobs given a later time to start, waiting in scheduled.
    public let waiting: Int
    /// The latest time given to a waiting job: the line's end.
    public let lastWaitingAt: Date?
}

extension JobStore {
    var rateLimitRules: SQLIdentifier { table("rate_limit_rules") }
    var rateLimitKeys: SQLIdentifier { table("rate_limit_keys") }
    var rateLimitSlots: SQLIdentifier { table("rate_limit_slots") }

    /// Makes the rules exactly `rules` (the configuration's handlers and the app's job types);
    /// claims judge jobs by their class's rule from then on.
    public func syncRateLimitRules(_ rules: [RateLimitRule], on database: Driver.Database) throws {
        for rule in rules { try rule.check() }
        let now = self.now()
        try database.atomically {
            for rule in rules {
                try database.change("""
                    INSERT INTO \(rateLimitRules) (class_name, key_template, max_starts, period, updated_at)
                    VALUES (\(rule.className), \(rule.keyTemplate), \(rule.limit), \(driver.interval(seconds: "\(rule.period.seconds)")), \(now.sql))
                    ON CONFLICT (class_name) DO UPDATE SET key_template = excluded.key_template, max_starts = excluded.max_starts,
                        period = excluded.period, updated_at = excluded.updated_at
                    """)
            }
            try database.change("DELETE FROM \(rateLimitRules) WHERE NOT (\(driver.contains("class_name", names: rules.map(\.className))))")
        }
    }

    /// Every rule, by class.
    public func rateLimitRules(on database: Driver.Database) throws -> [RateLimitRule] {
        try database.fetch("""
            SELECT class_name, key_template, max_starts, \(driver.seconds(of: "period")) AS period FROM \(rateLimitRules) ORDER BY class_name
            """).map { row in
            RateLimitRule(className: try row.decode("class_name"), keyTemplate: try row.decode("key_template"),
                          limit: try row.decode("max_starts"),
                          period: .milliseconds(Int64((try row.decode("period", as: Double.self) * 1000).rounded())))
        }
    }

    /// Every key in use: its limit, its starts in the last period, and its waiting jobs.
    public func rateLimitKeys(on database: Driver.Database) throws -> [RateLimitKeyInfo] {
        let keys = try database.fetch("""
            SELECT k.key, k.max_starts, \(driver.seconds(of: "k.period")) AS period,
                   (SELECT count(*) FROM \(rateLimitSlots) s WHERE s.key = k.key AND s.started = \(false)) AS waiting,
                   (SELECT max(s.at) FROM \(rateLimitSlots) s WHERE s.key = k.key AND s.started = \(false)) AS last_waiting_at
            FROM \(rateLimitKeys) k ORDER BY k.key
            """)
        let now = try time(self.now(), on: database)
        return try keys.map { row in
            let key = try row.decode("key", as: String.self)
            let seconds = try row.decode("period", as: Double.self)
            let started = try database.fetch("""
                SELECT count(*) AS n FROM \(rateLimitSlots)
                WHERE key = \(key) AND started = \(true) AND at > \(now.addingTimeInterval(-seconds))
                """)[0].decode("n", as: Int.self)
            return RateLimitKeyInfo(
                key: key, limit: try row.decode("max_starts"), period: .milliseconds(Int64((seconds * 1000).rounded())),
                started: started, waiting: try row.decode("waiting"), lastWaitingAt: try row.decode("last_waiting_at"))
        }
    }

    /// The time a rate-limit decision takes as now: read after the key's lock is held, so that
    /// the starts of one key are recorded in the order they were let through (PostgreSQL's
    /// `now()` is when the transaction began, which may be before another claim of the key
    /// committed).
    private var decisionTime: SQL {
        if let date = now().date { return "\(date)" }
        return "clock_timestamp()"
    }

    /// Of `jobs`, just claimed by `processID` in this transaction, returns those that start; each
    /// rate-limited one that may not start goes back to wait in scheduled until the time its key
    /// gave it (giving back its concurrency slot), with no attempt spent. Keys are locked in
    /// order, so that two claims with several keys never wait for each other.
    func holdToRateLimits(_ jobs: [ClaimedJob], processID: Int, on database: Driver.Database) throws -> [ClaimedJob] {
        // By key, and within a key by limit: classes that share a key each keep their own limit,
        // judged against every start of the key (the second group sees the first's starts).
        var byKey: [RateLimitGroup: [ClaimedJob]] = [:]
        for job in jobs {
            guard let rule = job.rateLimit else { continue }
            byKey[RateLimitGroup(key: rule.key(for: job.arguments), limit: rule.limit, period: rule.period), default: []].append(job)
        }
        guard !byKey.isEmpty else { return jobs }
        let limitedIDs = byKey.values.flatMap { $0.map(\.id) }
        // The times given to these jobs when they waited before: they are decided again now.
        let waited = Set(try database.ids("""
            DELETE FROM \(rateLimitSlots) WHERE started = \(false) AND \(driver.contains("job_id", ids: limitedIDs)) RETURNING job_id
            """, column: "job_id"))
        var waiting: [(job: ClaimedJob, at: Date)] = []
        for (group, groupJobs) in byKey.sorted(by: { $0.key < $1.key }) {
            let key = group.key
            let limit = group.limit
            let period = group.period.seconds
            let now = try database.fetch("""
                INSERT INTO \(rateLimitKeys) (key, max_starts, period, updated_at)
                VALUES (\(key), \(limit), \(driver.interval(seconds: "\(period)")), \(decisionTime))
                ON CONFLICT (key) DO UPDATE SET max_starts = excluded.max_starts, period = excluded.period, updated_at = \(decisionTime)
                RETURNING updated_at
                """)[0].decode("updated_at", as: Date.self)
            let windowStart = now.addingTimeInterval(-RateLimiter.window(period: period))
            try database.change("""
                DELETE FROM \(rateLimitSlots) WHERE key = \(key) AND started = \(true) AND at <= \(now.addingTimeInterval(-Self.startsKept(period)))
                """)
            let starts = try database.fetch("""
                SELECT at FROM \(rateLimitSlots) WHERE key = \(key) AND started = \(true) AND at > \(windowStart)
                ORDER BY at DESC LIMIT \(limit)
                """).map { try $0.decode("at", as: Date.self) }
            let given = try database.fetch("""
                SELECT at FROM \(rateLimitSlots) WHERE key = \(key) AND started = \(false) AND at > \(windowStart)
                ORDER BY at DESC LIMIT \(limit)
                """).map { try $0.decode("at", as: Date.self) }
            var state = RateLimiter.KeyState(starts: starts, waiting: given, waitingCut: given.count == limit)
            let decisions = RateLimiter.decide(
                groupJobs.map { RateLimiter.Candidate(waited: waited.contains($0.id)) }, limit: limit, period: period, now: now,
                state: &state)
            var rows: [SQL] = []
            for (job, decision) in zip(groupJobs, decisions) {
                switch decision {
                case .start:
                    rows.append("(\(key), \(now), \(job.id), \(true))")
                case .wait(let at):
                    rows.append("(\(key), \(at), \(job.id), \(false))")
                    waiting.append((job, at))
                }
            }
            try database.change("INSERT INTO \(rateLimitSlots) (key, at, job_id, started) VALUES \(SQL.joined(rows))")
        }
        guard !waiting.isEmpty else { return jobs }
        try wait(waiting, processID: processID, on: database)
        let held = Set(waiting.map(\.job.id))
        return jobs.filter { !held.contains($0.id) }
    }

    /// Moves claimed jobs back to scheduled, each until its time, and gives back their
    /// concurrency slots.
    private func wait(_ waiting: [(job: ClaimedJob, at: Date)], processID: Int, on database: Driver.Database) throws {
        let ids = waiting.map(\.job.id)
        let now = self.now()
        try database.change("DELETE FROM \(claimed) WHERE process_id = \(processID) AND \(driver.contains("job_id", ids: ids))")
        try database.change("""
            INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
            VALUES \(SQL.joined(waiting.map { "(\($0.job.id), \($0.job.queue), \($0.job.priority), \($0.at), \(now.sql))" }))
            """)
        let keys = try database.fetch("""
            SELECT concurrency_key FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) AND concurrency_key IS NOT NULL ORDER BY id
            """).map { try $0.decode("concurrency_key", as: String.self) }
        if !keys.isEmpty { try signal(keys, now: now, on: database) }
    }

    /// The key a job waits under for its start, and the time its key gave it; nil when it does
    /// not wait for a rate limit.
    public func rateLimitWait(of jobID: Int, on database: Driver.Database) throws -> (key: String, until: Date)? {
        try database.fetch("SELECT key, at FROM \(rateLimitSlots) WHERE job_id = \(jobID) AND started = \(false)").first.map {
            (try $0.decode("key", as: String.self), try $0.decode("at", as: Date.self))
        }
    }

    /// How long a key's starts are kept: its period, and a minute at least, so that the starts
    /// of the last minute can be looked at (the reads go by the index on time, so older rows
    /// cost nothing but their space).
    static func startsKept(_ period: Double) -> Double { max(period, 60) }

    /// The starts of the last minute (at least) of every key, oldest first: when each job was let
    /// through, by the database's clock.
    public func rateLimitStarts(on database: Driver.Database) throws -> [(key: String, jobID: Int, at: Date)] {
        try database.fetch("SELECT key, job_id, at FROM \(rateLimitSlots) WHERE started = \(true) ORDER BY at, job_id").map { row in
            (try row.decode("key", as: String.self), try row.decode("job_id", as: Int.self), try row.decode("at", as: Date.self))
        }
    }

    /// Removes what no rate-limit decision needs any more: starts older than their key's period
    /// (and a minute),
    /// times given to jobs that no longer wait (cancelled, discarded, deleted), and keys left with
    /// neither that have not been used for a day. The dispatcher's retention pass.
    @discardableResult
    public func pruneRateLimits(on database: Driver.Database) throws -> Int {
        let now = try time(self.now(), on: database)
        return try database.atomically {
            var removed = try database.change("""
                DELETE FROM \(rateLimitSlots) WHERE started = \(false)
                  AND NOT EXISTS (SELECT 1 FROM \(scheduled) x WHERE x.job_id = \(rateLimitSlots).job_id)
                  AND NOT EXISTS (SELECT 1 FROM \(ready) x WHERE x.job_id = \(rateLimitSlots).job_id)
                  AND NOT EXISTS (SELECT 1 FROM \(blocked) x WHERE x.job_id = \(rateLimitSlots).job_id)
                  AND NOT EXISTS (SELECT 1 FROM \(claimed) x WHERE x.job_id = \(rateLimitSlots).job_id)
                """)
            for row in try database.fetch("SELECT key, \(driver.seconds(of: "period")) AS period FROM \(rateLimitKeys) ORDER BY key") {
                let key = try row.decode("key", as: String.self)
                let period = try row.decode("period", as: Double.self)
                removed += try database.change("""
                    DELETE FROM \(rateLimitSlots) WHERE key = \(key) AND started = \(true) AND at <= \(now.addingTimeInterval(-Self.startsKept(period)))
                    """)
            }
            try database.change("""
                DELETE FROM \(rateLimitKeys) WHERE updated_at < \(now.addingTimeInterval(-86_400))
                  AND NOT EXISTS (SELECT 1 FROM \(rateLimitSlots) s WHERE s.key = \(rateLimitKeys).key)
                """)
            return removed
        }
    }
}

/// The jobs of one claim that one decision judges: a key, and a limit of it.
struct RateLimitGroup: Hashable, Comparable {
    let key: String
    let limit: Int
    let period: Duration
    static func < (a: Self, b: Self) -> Bool { (a.key, a.limit, a.period) < (b.key, b.limit, b.period) }
}
