import DroverPersistence
import Foundation

/// Which jobs a listing or a bulk action means: every condition given must hold.
public struct JobFilter: Sendable, Equatable {
    public var state: JobState?
    public var queue: String?
    public var className: String?
    /// Enqueued at or after this time.
    public var enqueuedAfter: Date?
    /// Enqueued before this time.
    public var enqueuedBefore: Date?
    /// Text found in the job's arguments or in its last error (as stored: JSON text).
    public var text: String?
    /// Jobs of this concurrency key.
    public var concurrencyKey: String?
    /// Text found in the job's last error (as stored: JSON text).
    public var errorText: String?
    /// Arguments that contain this JSON object or array, as PostgreSQL's `@>` means it (the same
    /// on SQLite): `{"user": 42}` matches `{"user": 42, "mail": true}`.
    public var argumentsContain: JSON?
    /// Jobs whose id is at least this.
    public var minID: Int?
    /// Jobs whose id is at most this.
    public var maxID: Int?

    public init(state: JobState? = nil, queue: String? = nil, className: String? = nil,
                enqueuedAfter: Date? = nil, enqueuedBefore: Date? = nil, text: String? = nil, concurrencyKey: String? = nil,
                minID: Int? = nil, maxID: Int? = nil, errorText: String? = nil, argumentsContain: JSON? = nil) {
        self.errorText = errorText
        self.argumentsContain = argumentsContain
        self.minID = minID
        self.maxID = maxID
        self.state = state
        self.queue = queue
        self.className = className
        self.enqueuedAfter = enqueuedAfter
        self.enqueuedBefore = enqueuedBefore
        self.text = text
        self.concurrencyKey = concurrencyKey
    }

    /// The longest text searched for.
    public static let maxTextLength = 200
}

/// One page of a listing, newest first, and where the next page starts.
public struct JobPage: Sendable, Equatable {
    public let jobs: [JobInfo]
    /// Pass as `before` for the next page; nil on the last page.
    public let nextBefore: Int?

    public init(jobs: [JobInfo], nextBefore: Int?) {
        self.jobs = jobs
        self.nextBefore = nextBefore
    }
}

/// What a bulk action did.
public struct BulkOutcome: Sendable, Equatable {
    /// Jobs it changed.
    public var changed: [Int] = []
    /// Jobs the filter matched that were no longer in a state the action applies to when it came
    /// to them (a worker took them, a person acted first).
    public var skipped: [Int] = []
    /// The caller stopped it between two batches (Ctrl-C): what the batches before did stands,
    /// nothing else was touched.
    public var interrupted = false
}

/// What a bulk action does to each job the filter matches.
public enum BulkAction: String, Sendable, CaseIterable {
    case retry, discard, cancel

    /// The states it applies to.
    public var states: Set<JobState> {
        switch self {
        case .retry, .discard: [.failed]
        case .cancel: [.ready, .scheduled, .blocked, .waiting, .claimed]
        }
    }
}

extension JobStore {
    /// The filter's conditions on `j`, checked: bad input is a ``QueueError`` naming the field.
    func conditions(_ filter: JobFilter, statePassedBy: Bool = false) throws -> SQL {
        var conditions: [SQL] = []
        if let queue = filter.queue {
            try JobRules.checkQueueName(queue, code: .invalidQueue)
            conditions.append("j.queue_name = \(queue)")
        }
        if let className = filter.className { conditions.append("j.class_name = \(className)") }
        if let key = filter.concurrencyKey { conditions.append("j.concurrency_key = \(key)") }
        try checkIDRange(filter)
        if let minID = filter.minID { conditions.append("j.id >= \(minID)") }
        if let maxID = filter.maxID { conditions.append("j.id <= \(maxID)") }
        if let state = filter.state, !(statePassedBy && executions(of: state) != nil) {
            if let table = executions(of: state) {
                conditions.append("EXISTS (SELECT 1 FROM \(table) x WHERE x.job_id = j.id)")
            } else {
                conditions.append("j.finished_at IS NOT NULL")
            }
        }
        if let after = filter.enqueuedAfter { conditions.append("j.created_at >= \(after)") }
        if let before = filter.enqueuedBefore { conditions.append("j.created_at < \(before)") }
        if let text = filter.text, !text.isEmpty {
            try Self.checkSearchText(text, field: "text")
            conditions.append("(\(driver.containsText("CAST(j.arguments AS text)", text)) OR \(driver.containsText("CAST(j.last_error AS text)", text)))")
        }
        if let text = filter.errorText, !text.isEmpty {
            try Self.checkSearchText(text, field: "error")
            conditions.append(driver.containsText("CAST(j.last_error AS text)", text))
        }
        if let wanted = filter.argumentsContain {
            guard wanted.isObject || wanted.isArray else {
                throw QueueError(.invalidRequest, "the arguments to look for must be a JSON object or array, such as {\"user\": 42}",
                                 field: "args_contain")
            }
            conditions.append(driver.jsonContains("j.arguments", wanted))
        }
        return conditions.isEmpty ? SQL("1 = 1") : SQL.joined(conditions, separator: " AND ")
    }

    private static func checkSearchText(_ text: String, field: String) throws {
        guard text.count <= JobFilter.maxTextLength, !text.unicodeScalars.contains("\0") else {
            throw QueueError(.invalidRequest, "the text to search for must be 1 to \(JobFilter.maxTextLength) characters, without NUL",
                             field: field)
        }
    }

    private func checkIDRange(_ filter: JobFilter) throws {
        for (field, id) in [("min_id", filter.minID), ("max_id", filter.maxID)] {
            if let id, id < 1 { throw QueueError(.invalidRequest, "\(field) must be a job id (a whole number from 1), not \(id)", field: field) }
        }
        if let minID = filter.minID, let maxID = filter.maxID, minID > maxID {
            throw QueueError(.invalidRequest, "min_id \(minID) is above max_id \(maxID): no job can match", field: "min_id")
        }
    }

    /// The same bounds on a state table's `x.job_id`, so that a walk of it stops at `minID`.
    private func idBounds(_ filter: JobFilter) -> SQL {
        var bounds: [SQL] = []
        if let minID = filter.minID { bounds.append("x.job_id >= \(minID)") }
        if let maxID = filter.maxID { bounds.append("x.job_id <= \(maxID)") }
        return bounds.isEmpty ? SQL("1 = 1") : SQL.joined(bounds, separator: " AND ")
    }

    /// The ids of the `count` newest jobs from `maxID` down (all jobs when nil): the lowest and
    /// the highest, or nil when there is none. A text search looks at one such window at a time
    /// (a window of 50,000 takes about 60 ms at a million jobs, where the whole table took a
    /// second), and offers the next window down.
    public func jobWindow(count: Int, from maxID: Int? = nil, on database: Driver.Database) throws -> ClosedRange<Int>? {
        try QueueError.require("window", count, atLeast: 1)
        let below: SQL = maxID.map { "id <= \($0)" } ?? "1 = 1"
        guard let top = try database.fetch("SELECT max(id) AS id FROM \(jobs) WHERE \(below)")[0].decode("id", as: Int?.self) else {
            return nil
        }
        let bottom = try database.fetch("""
            SELECT id FROM \(jobs) WHERE id <= \(top) ORDER BY id DESC LIMIT 1 OFFSET \(count - 1)
            """).first.map { try $0.decode("id", as: Int.self) }
        return (bottom ?? 1)...top
    }

    /// Jobs that `filter` matches, newest first, `limit` at a time: keyset pagination by id, so
    /// that every page costs the same however deep it is.
    public func findJobs(_ filter: JobFilter, before: Int? = nil, limit: Int = 50, on database: Driver.Database) throws -> JobPage {
        try QueueError.require("limit", limit, atLeast: 1)
        var rows: [JobInfo] = []
        if let state = filter.state, let table = executions(of: state) {
            // Walk the state's own table by id (its primary key), a chunk at a time, and look each
            // chunk's jobs up by id: the newest failed jobs among a million finished ones are found
            // at once, where a join could read all of jobs first.
            let where_ = try conditions(filter, statePassedBy: true)
            // A page's worth first (every id matches when the state is the only condition), then
            // more at a time while other conditions leave the page short.
            var chunk = limit + 1
            var cursor = before
            while rows.count <= limit {
                defer { chunk = min(max(chunk * 4, 500), 5_000) }
                let bound: SQL = cursor.map { "x.job_id < \($0)" } ?? "1 = 1"
                let ids = try database.ids(
                    "SELECT x.job_id FROM \(table) x WHERE \(bound) AND \(idBounds(filter)) ORDER BY x.job_id DESC LIMIT \(chunk)",
                    column: "job_id")
                guard let last = ids.last else { break }
                rows += try database.fetch("""
                    SELECT \(jobInfoColumns(withArguments: false)) FROM \(jobs) j
                    WHERE \(driver.contains("j.id", ids: ids)) AND \(where_) ORDER BY j.id DESC
                    """).map(JobInfo.init(row:))
                if ids.count < chunk { break }
                cursor = last
            }
        } else {
            let where_ = try conditions(filter)
            let cursor: SQL = before.map { "j.id < \($0)" } ?? "1 = 1"
            // The page's rows first, then their states: with the LIMIT in a subquery, each state
            // is looked up by id for the page's rows. Written flat, PostgreSQL planned the lookups
            // for every job of the table and hashed all of ready_executions instead (58 ms for the
            // 20 newest of a million jobs, against 1 ms).
            rows = try database.fetch("""
                SELECT \(jobInfoColumns(withArguments: false))
                FROM (SELECT * FROM \(jobs) j WHERE \(cursor) AND \(where_) ORDER BY j.id DESC LIMIT \(limit + 1)) j
                ORDER BY j.id DESC
                """).map(JobInfo.init(row:))
        }
        let page = Array(rows.prefix(limit))
        return JobPage(jobs: page, nextBefore: rows.count > limit ? page.last?.id : nil)
    }

    /// How many jobs `filter` matches (what a bulk action would be asked to change); with
    /// `upTo`, counting stops there (a listing says "more than" rather than count a million rows).
    public func countJobs(_ filter: JobFilter, upTo cap: Int? = nil, on database: Driver.Database) throws -> Int {
        try checkIDRange(filter)
        let source: SQL
        if let state = filter.state, let table = executions(of: state) {
            var only = filter
            only.state = nil
            only.minID = nil
            only.maxID = nil
            source = only == JobFilter()
                ? "\(table) x WHERE \(idBounds(filter))"  // the state alone: its own table, no job looked at
                : "\(table) x JOIN \(jobs) j ON j.id = x.job_id WHERE \(idBounds(filter)) AND \(try conditions(filter, statePassedBy: true))"
        } else {
            source = "\(jobs) j WHERE \(try conditions(filter))"
        }
        if let cap {
            return try database.fetch("SELECT count(*) AS n FROM (SELECT 1 FROM \(source) LIMIT \(cap)) capped")[0].decode("n", as: Int.self)
        }
        return try database.fetch("SELECT count(*) AS n FROM \(source)")[0].decode("n", as: Int.self)
    }

    /// Applies `action` to every job `filter` matches, `batchSize` at a time, each batch its own
    /// transaction (no table-wide lock, safe beside running workers), newest first. A job that
    /// left the states the action applies to by the time its batch came is skipped, not an error.
    ///
    /// After each batch `progress` is told the outcome so far; when it returns false the action
    /// stops there (`interrupted`), between two transactions.
    public func apply(
        _ action: BulkAction, to filter: JobFilter, batchSize: Int = 500, on database: Driver.Database,
        progress: (BulkOutcome) -> Bool = { _ in true }
    ) throws -> BulkOutcome {
        try QueueError.require("batch size", batchSize, atLeast: 1)
        if let state = filter.state, !action.states.contains(state) {
            throw QueueError(.wrongState, "\(action.rawValue) applies to \(action.states.map(\.rawValue).sorted().joined(separator: ", ")) jobs, not \(state.rawValue) ones")
        }
        var outcome = BulkOutcome()
        var before: Int?
        while true {
            let page = try findJobs(filter, before: before, limit: batchSize, on: database)
            let ids = page.jobs.filter { action.states.contains($0.state) }.map(\.id)
            outcome.skipped += page.jobs.filter { !action.states.contains($0.state) }.map(\.id)
            switch action {
            case .retry, .discard:
                // One transaction per batch; a job that left failed meanwhile is skipped.
                let states = try self.states(of: ids, on: database)
                let still = ids.filter { states[$0] == .failed }
                outcome.skipped += ids.filter { states[$0] != .failed }
                if !still.isEmpty {
                    do {
                        outcome.changed += action == .retry ? try retryFailed(still, on: database) : try discardFailed(still, on: database)
                    } catch let error as QueueError where error.code == .wrongState || error.code == .jobNotFound {
                        // Raced: go one by one.
                        for id in still {
                            do {
                                outcome.changed += action == .retry ? try retryFailed([id], on: database) : try discardFailed([id], on: database)
                            } catch is QueueError {
                                outcome.skipped.append(id)
                            }
                        }
                    }
                }
            case .cancel:
                // The waiting ones in one transaction; running ones (and any that a worker took
                // meanwhile) one by one: their workers are asked to stop them.
                let waiting = Set(page.jobs.filter { [.ready, .scheduled, .blocked, .waiting].contains($0.state) }.map(\.id))
                let cancelled = try cancelWaiting(ids.filter { waiting.contains($0) }, on: database)
                outcome.changed += cancelled
                let done = Set(cancelled)
                for id in ids where !done.contains(id) {
                    do {
                        _ = try cancel(id, on: database)
                        outcome.changed.append(id)
                    } catch let error as QueueError where error.code == .wrongState || error.code == .jobNotFound {
                        outcome.skipped.append(id)
                    }
                }
            }
            guard let next = page.nextBefore else { return outcome }
            guard progress(outcome) else {
                outcome.interrupted = true
                return outcome
            }
            before = next
        }
    }
}

extension PostgresDriver {
    public func containsText(_ haystack: SQL, _ needle: String) -> SQL { "strpos(\(haystack), \(needle)) > 0" }
    public func jsonContains(_ column: SQL, _ wanted: JSON) -> SQL { "\(column) @> \(wanted)" }
}

extension SQLiteDriver {
    public func containsText(_ haystack: SQL, _ needle: String) -> SQL { "instr(\(haystack), \(needle)) > 0" }
    /// ``JSONContainment``, the SQL function every SQLite connection of Drover's has.
    public func jsonContains(_ column: SQL, _ wanted: JSON) -> SQL { "drover_json_contains(\(column), \(wanted.text)) = 1" }
}

/// One job with everything its page shows: its row, and when it reached each step of its life.
public struct JobDetail: Sendable, Equatable {
    public let info: JobInfo
    /// When it was first due (its run-at time).
    public let scheduledAt: Date
    public let updatedAt: Date
    /// When it last became ready, while it waits in ready.
    public let readySince: Date?
    /// When its worker claimed it, and which process, while it runs.
    public let claimedAt: Date?
    public let claimedByName: String?
    public let claimedByHost: String?
    public let concurrencyKey: String?
    public let uniqueKey: String?
    public let timeoutSeconds: Double?
}

extension JobStore {
    /// Job `id` with its arguments and timeline, or nil when there is no such job.
    public func jobDetail(_ id: Int, on database: Driver.Database) throws -> JobDetail? {
        try database.atomically {
            guard let info = try job(id, on: database) else { return nil }
            let row = try database.fetch("""
                SELECT j.scheduled_at, j.updated_at, j.concurrency_key, j.unique_key, \(driver.seconds(of: "j.timeout")) AS timeout_seconds,
                       (SELECT r.created_at FROM \(ready) r WHERE r.job_id = j.id) AS ready_since,
                       c.created_at AS claimed_at, p.name AS process_name, p.hostname AS process_host
                FROM \(jobs) j
                LEFT JOIN \(claimed) c ON c.job_id = j.id
                LEFT JOIN \(processes) p ON p.id = c.process_id
                WHERE j.id = \(id)
                """)[0]
            return JobDetail(
                info: info, scheduledAt: try row.decode("scheduled_at"), updatedAt: try row.decode("updated_at"),
                readySince: try row.decode("ready_since"), claimedAt: try row.decode("claimed_at"),
                claimedByName: try row.decode("process_name"), claimedByHost: try row.decode("process_host"),
                concurrencyKey: try row.decode("concurrency_key"), uniqueKey: try row.decode("unique_key"),
                timeoutSeconds: try row.decode("timeout_seconds"))
        }
    }
}
