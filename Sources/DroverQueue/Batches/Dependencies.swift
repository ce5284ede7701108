import DroverPersistence
import Foundation

/// A job that has just reached its end (finished, failed for good, cancelled or discarded) in the
/// current transaction, with what ``JobStore/settle(_:now:on:)`` needs to know of it.
struct EndedJob: Sendable {
    let id: Int
    let batchID: Int?
    let hasDependants: Bool
    /// False: failed for good, cancelled or discarded.
    let finished: Bool
    /// What it handed back, when it finished with a result.
    var result: JSON?

    /// Whether anything waits on its end.
    var matters: Bool { batchID != nil || hasDependants }

    init(id: Int, batchID: Int?, hasDependants: Bool, finished: Bool, result: JSON? = nil) {
        self.id = id
        self.batchID = batchID
        self.hasDependants = hasDependants
        self.finished = finished
        self.result = result
    }

    /// From a row with `id`, `batch_id` and `has_dependants`.
    init(row: Row, finished: Bool) throws {
        self.init(id: try row.decode("id"), batchID: try row.decode("batch_id"), hasDependants: try row.decode("has_dependants"),
                  finished: finished)
    }
}

/// A job another waits for, as ``JobStore/dependencies(of:on:)`` shows it.
public struct Dependency: Sendable, Equatable {
    public enum Outcome: String, Sendable, Equatable {
        case finished, failed
    }

    public let jobID: Int
    /// Nil while it has not ended.
    public let outcome: Outcome?
    /// Its result, once it finished with one.
    public let result: JSON?

    public init(jobID: Int, outcome: Outcome?, result: JSON?) {
        self.jobID = jobID
        self.outcome = outcome
        self.result = result
    }
}

/// The error of a job that failed because a job it waited for failed.
public enum DependencyFailure {
    public static let errorClass = "DependencyFailed"

    static func failure(dependency: Int) -> JobFailure {
        JobFailure(errorClass: errorClass,
                   message: "job \(dependency), which it waited for, failed for good or was cancelled: it did not run "
                       + "(retry job \(dependency), then this one; or enqueue it with run_after_failure)")
    }
}

extension JobStore {
    var waiting: SQLIdentifier { table("waiting_executions") }
    var dependencyTable: SQLIdentifier { table("job_dependencies") }

    /// What the jobs of `ids` are, for jobs about to wait for them: locked (in id order) and marked
    /// as having dependants, so that their end, which must update the same row, settles the new
    /// ones. Throws when one does not exist.
    func lockDependencies(_ ids: [Int], on database: Driver.Database) throws -> [Int: Dependency.Outcome?] {
        guard !ids.isEmpty else { return [:] }
        _ = try database.fetch("SELECT id FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id\(driver.lockingRows)")
        var found: [Int: Dependency.Outcome?] = [:]
        for row in try database.fetch("""
            UPDATE \(jobs) SET has_dependants = \(true) WHERE \(driver.contains("id", ids: ids))
            RETURNING id, finished_at IS NOT NULL AS finished, failed_at IS NOT NULL AS failed
            """) {
            let outcome: Dependency.Outcome? = try row.decode("failed", as: Bool.self) ? .failed
                : try row.decode("finished", as: Bool.self) ? .finished : nil
            found[try row.decode("id", as: Int.self)] = .some(outcome)
        }
        let missing = ids.filter { found[$0] == nil }
        guard missing.isEmpty else {
            throw QueueError(
                .invalidJob, "after: no job with id \(missing.map(String.init).joined(separator: ", ")) (a job can wait only for jobs "
                    + "enqueued before it, and not for finished jobs already cleared)", field: "after", jobIDs: missing)
        }
        return found
    }

    /// Inserts a job that waits for others (their rows locked by ``lockDependencies(_:on:)``):
    /// its dependencies, and its execution row: waiting while one of them has not ended, else
    /// as any new job. Returns its id and whether it waits for admission.
    func enqueueDependant(
        _ job: NewJob, concurrencyKey: String?, known: [Int: Dependency.Outcome?], now: Moment, on database: Driver.Database
    ) throws -> (id: Int, admit: Bool) {
        let runAt: SQL = job.runAt.map { "\($0)" } ?? now.sql
        let row = try database.fetch("""
            INSERT INTO \(jobs) (queue_name, class_name, arguments, priority, scheduled_at, max_attempts, timeout,
                                 concurrency_key, trace_context, batch_id, created_at, updated_at)
            VALUES (\(job.queue), \(job.className), \(job.arguments), \(job.priority), \(runAt), \(job.maxAttempts),
                    \(driver.interval(seconds: "\(job.timeout?.seconds)")), \(concurrencyKey), \(try job.traceContextJSON),
                    \(job.batchID), \(now.sql), \(now.sql))
            RETURNING id, scheduled_at <= \(now.sql) AS due
            """)[0]
        let id = try row.decode("id", as: Int.self)
        try database.change("""
            INSERT INTO \(dependencyTable) (job_id, depends_on, outcome, result, run_after_failure)
            SELECT \(id), d.id, CASE WHEN d.failed_at IS NOT NULL THEN 'failed' WHEN d.finished_at IS NOT NULL THEN 'finished' END, d.result,
                   \(job.runAfterFailure)
            FROM \(jobs) d WHERE \(driver.contains("d.id", ids: job.after)) ORDER BY d.id
            """)
        if job.after.contains(where: { known[$0] == .some(nil) }) {
            try database.change("""
                INSERT INTO \(waiting) (job_id, queue_name, priority, created_at)
                VALUES (\(id), \(job.queue), \(job.priority), \(now.sql))
                """)
            return (id, false)
        }
        try carryDependencies([id], on: database)
        let due = try row.decode("due", as: Bool.self)
        if due && concurrencyKey != nil { return (id, true) }
        if due {
            try insertReady([id], now: now, on: database)
        } else {
            try schedule([id], now: now, on: database)
        }
        return (id, false)
    }

    func schedule(_ ids: [Int], now: Moment, on database: Driver.Database) throws {
        guard !ids.isEmpty else { return }
        try database.change("""
            INSERT INTO \(scheduled) (job_id, queue_name, priority, scheduled_at, created_at)
            SELECT id, queue_name, priority, scheduled_at, \(now.sql) FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id
            """)
    }

    /// What follows from jobs that have just ended in this transaction: each job waiting for one
    /// of them runs once all it waits for have ended (scheduled, ready or admitted as a new job
    /// would be), or fails at once when one failed (unless it runs after failures), and so on
    /// down the chain; then their batches are counted (``countEnded(_:now:on:)``).
    func settle(_ ended: [EndedJob], now: Moment, on database: Driver.Database) throws {
        var round = ended.filter(\.matters)
        guard !round.isEmpty else { return }
        var all: [EndedJob] = []
        while !round.isEmpty {
            all += round
            let parents = round.filter(\.hasDependants)
            round = []
            guard !parents.isEmpty else { break }
            for parent in parents where parent.finished && parent.result != nil {
                try database.change("""
                    UPDATE \(dependencyTable) SET outcome = 'finished', result = \(parent.result)
                    WHERE depends_on = \(parent.id) AND outcome IS NULL
                    """)
            }
            for (outcome, group) in [("finished", parents.filter { $0.finished && $0.result == nil }), ("failed", parents.filter { !$0.finished })]
            where !group.isEmpty {
                try database.change("""
                    UPDATE \(dependencyTable) SET outcome = \(outcome)
                    WHERE \(driver.contains("depends_on", ids: group.map(\.id))) AND outcome IS NULL
                    """)
            }
            var release: [Int] = []
            var failing: [(id: Int, dependency: Int)] = []
            for row in try database.fetch("""
                SELECT w.job_id,
                       (SELECT count(*) FROM \(dependencyTable) d WHERE d.job_id = w.job_id AND d.outcome IS NULL) AS open,
                       (SELECT min(d.depends_on) FROM \(dependencyTable) d
                        WHERE d.job_id = w.job_id AND d.outcome = 'failed' AND NOT d.run_after_failure) AS failed
                FROM \(waiting) w
                WHERE w.job_id IN (SELECT job_id FROM \(dependencyTable) WHERE \(driver.contains("depends_on", ids: parents.map(\.id))))
                ORDER BY w.job_id\(driver.lockingRows)
                """) {
                let id = try row.decode("job_id", as: Int.self)
                if let failed = try row.decode("failed", as: Int?.self) {
                    failing.append((id, failed))
                } else if try row.decode("open", as: Int.self) == 0 {
                    release.append(id)
                }
            }
            let moving = release + failing.map(\.id)
            if !moving.isEmpty {
                try database.change("DELETE FROM \(waiting) WHERE \(driver.contains("job_id", ids: moving))")
            }
            try route(release, now: now, on: database)
            var failedIDs: [Int] = []
            for (id, dependency) in failing {
                let error = DependencyFailure.failure(dependency: dependency).json
                let row = try database.fetch("""
                    UPDATE \(jobs) SET failed_at = \(now.sql), last_error = \(error), updated_at = \(now.sql) WHERE id = \(id)
                    RETURNING id, batch_id, has_dependants
                    """)[0]
                try database.change("INSERT INTO \(failed) (job_id, error, created_at) VALUES (\(id), \(error), \(now.sql))")
                round.append(try EndedJob(row: row, finished: false))
                failedIDs.append(id)
            }
            if !failedIDs.isEmpty {
                try count(.failed, jobs: failedIDs, on: database)
                try enqueueFailureHooks(for: failedIDs, cancelled: [], on: database)
            }
            round = round.filter(\.matters)
        }
        try countEnded(all, now: now, on: database)
    }

    /// The key of a job's arguments that carries the jobs it waited for, their outcomes and results
    /// (what a command reads on its stdin, and ``JobContext/dependencies`` a Swift job).
    public static var dependenciesKey: String { "drover_dependencies" }
    /// The most the results carried in a job's arguments may hold together; those past it are
    /// left out (`result_omitted`).
    static var carriedResultsBytes: Int { 1_048_576 }

    /// Writes into each job's arguments what became of the jobs it waited for (``dependenciesKey``):
    /// `[{"job_id": 12, "outcome": "finished", "result": …}, …]`, in id order.
    func carryDependencies(_ ids: [Int], on database: Driver.Database) throws {
        guard !ids.isEmpty else { return }
        var entries: [Int: [String]] = [:]
        var budget: [Int: Int] = [:]
        for row in try database.fetch("""
            SELECT job_id, depends_on, outcome, result FROM \(dependencyTable)
            WHERE \(driver.contains("job_id", ids: ids)) ORDER BY job_id, depends_on
            """) {
            let id = try row.decode("job_id", as: Int.self)
            var entry = "{\"job_id\":\(try row.decode("depends_on", as: Int.self)),\"outcome\":\"\(try row.decode("outcome", as: String?.self) ?? "failed")\""
            if let result = try row.decode("result", as: JSON?.self) {
                let left = budget[id] ?? Self.carriedResultsBytes
                if result.text.utf8.count <= left {
                    entry += ",\"result\":" + result.text
                    budget[id] = left - result.text.utf8.count
                } else {
                    entry += ",\"result_omitted\":true"
                    budget[id] = 0
                }
            }
            entries[id, default: []].append(entry + "}")
        }
        for (id, list) in entries.sorted(by: { $0.key < $1.key }) {
            let value = try JSON(validating: "[" + list.joined(separator: ",") + "]")
            try database.change("""
                UPDATE \(jobs) SET arguments = \(driver.jsonSetting("arguments", key: Self.dependenciesKey, to: value)) WHERE id = \(id)
                """)
        }
    }

    /// Jobs no longer waiting: scheduled if their time has not come, else ready (or admitted by
    /// their concurrency key).
    func route(_ ids: [Int], now: Moment, on database: Driver.Database) throws {
        guard !ids.isEmpty else { return }
        try carryDependencies(ids, on: database)
        var later: [Int] = []
        var due: [Int] = []
        for row in try database.fetch("""
            SELECT id, scheduled_at > \(now.sql) AS later FROM \(jobs) WHERE \(driver.contains("id", ids: ids)) ORDER BY id
            """) {
            let id = try row.decode("id", as: Int.self)
            if try row.decode("later", as: Bool.self) { later.append(id) } else { due.append(id) }
        }
        try schedule(later, now: now, on: database)
        try makeReady(due, now: now, on: database)
    }

    /// The jobs `jobID` waits (or waited) for, in id order, with their outcomes and results.
    public func dependencies(of jobID: Int, on database: Driver.Database) throws -> [Dependency] {
        try database.fetch("""
            SELECT depends_on, outcome, result FROM \(dependencyTable) WHERE job_id = \(jobID) ORDER BY depends_on
            """).map { row in
            Dependency(jobID: try row.decode("depends_on"),
                       outcome: try row.decode("outcome", as: String?.self).flatMap(Dependency.Outcome.init(rawValue:)),
                       result: try row.decode("result"))
        }
    }

    /// The jobs waiting for `jobID`, in id order.
    public func dependants(of jobID: Int, on database: Driver.Database) throws -> [Int] {
        try database.ids("SELECT job_id FROM \(dependencyTable) WHERE depends_on = \(jobID) ORDER BY job_id", column: "job_id")
    }

    /// Of failed jobs about to be retried together (`ids`), those that cannot be: a job they wait
    /// for (without running after failures) failed for good and is not retried with them. Checked
    /// again until none is left, since refusing one may refuse the jobs that wait for it.
    func retryRefusals(_ ids: [Int], on database: Driver.Database) throws -> [(id: Int, dependency: Int)] {
        guard !ids.isEmpty else { return [] }
        var edges: [(id: Int, dependency: Int, failedNow: Bool)] = []
        for row in try database.fetch("""
            SELECT d.job_id, d.depends_on, (p.failed_at IS NOT NULL OR (p.id IS NULL AND d.outcome = 'failed')) AS failed_now
            FROM \(dependencyTable) d LEFT JOIN \(jobs) p ON p.id = d.depends_on
            WHERE \(driver.contains("d.job_id", ids: ids)) AND NOT d.run_after_failure ORDER BY d.job_id, d.depends_on
            """) {
            edges.append((try row.decode("job_id"), try row.decode("depends_on"), try row.decode("failed_now")))
        }
        guard !edges.isEmpty else { return [] }
        var retried = Set(ids)
        var refused: [Int: Int] = [:]
        var changed = true
        while changed {
            changed = false
            for edge in edges where retried.contains(edge.id) && edge.failedNow && !retried.contains(edge.dependency) {
                retried.remove(edge.id)
                refused[edge.id] = edge.dependency
                changed = true
            }
        }
        return refused.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Retried jobs that wait for others: what became of those is read again (a job retried with
    /// them is running again), then each waits, or runs as a new job would. Returns the jobs that
    /// need no more than ready (those without dependencies, or all of them ended).
    func routeRetried(_ ids: [Int], now: Moment, on database: Driver.Database) throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        let dependants = Set(try database.ids("""
            SELECT DISTINCT job_id FROM \(dependencyTable) WHERE \(driver.contains("job_id", ids: ids))
            """, column: "job_id"))
        guard !dependants.isEmpty else { return ids }
        let sorted = dependants.sorted()
        for row in try database.fetch("""
            SELECT d.depends_on, d.job_id, p.id AS present, p.failed_at IS NOT NULL AS failed, p.finished_at IS NOT NULL AS finished, p.result
            FROM \(dependencyTable) d LEFT JOIN \(jobs) p ON p.id = d.depends_on
            WHERE \(driver.contains("d.job_id", ids: sorted)) ORDER BY d.job_id, d.depends_on
            """) {
            guard try row.decode("present", as: Int?.self) != nil else { continue }
            let outcome: String? = try row.decode("failed", as: Bool.self) ? "failed" : try row.decode("finished", as: Bool.self) ? "finished" : nil
            try database.change("""
                UPDATE \(dependencyTable) SET outcome = \(outcome), result = \(try row.decode("result", as: JSON?.self))
                WHERE job_id = \(try row.decode("job_id", as: Int.self)) AND depends_on = \(try row.decode("depends_on", as: Int.self))
                """)
        }
        let open = Set(try database.ids("""
            SELECT DISTINCT job_id FROM \(dependencyTable) WHERE \(driver.contains("job_id", ids: sorted)) AND outcome IS NULL
            """, column: "job_id"))
        if !open.isEmpty {
            try database.change("""
                INSERT INTO \(waiting) (job_id, queue_name, priority, created_at)
                SELECT id, queue_name, priority, \(now.sql) FROM \(jobs) WHERE \(driver.contains("id", ids: open.sorted())) ORDER BY id
                """)
        }
        try route(sorted.filter { !open.contains($0) }, now: now, on: database)
        return ids.filter { !dependants.contains($0) }
    }
}
