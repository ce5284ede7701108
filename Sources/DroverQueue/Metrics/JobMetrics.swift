import DroverPersistence

/// What the database counts about jobs, in the transaction of the change it counts, so that the
/// counts are right whichever process reads them, survive every restart and never count a change
/// that rolled back (docs/architecture.md, "Metrics").
///
/// | metric | counted when | by |
/// |---|---|---|
/// | `enqueued` | a `jobs` row is inserted (any caller: the store, the SQL functions, an application's own SQL) | a trigger |
/// | `latency` | a worker claims a job; histogram of the seconds since it became ready | ``JobStore/claim(processID:queues:limit:on:)`` |
/// | `duration` | a job finishes; histogram of the seconds from its claim to its finish | ``JobStore/finish(_:processID:on:)`` |
/// | `failed` | a job fails for good (out of attempts, permanent, crash limit), cancellations aside | fail, release |
/// | `retried` | a failed attempt is scheduled again, or a person retries a failed job | fail, `failed retry` |
/// | `timed_out` | an attempt ends because it ran past its timeout (it then also counts as retried or failed) | fail |
/// | `cancelled` | a cancellation takes effect: a waiting job is deleted, a running one stops | cancel, fail, release |
/// | `discarded` | a person discards a failed job, or clears a queue's waiting jobs | `failed discard`, `queues clear` |
/// | `crash_released` | a claim is released because its process died (a job that reaches its crash limit also counts as failed) | release |
public enum JobMetric: String, Sendable, CaseIterable {
    case enqueued, latency, duration, failed, retried
    case timedOut = "timed_out"
    case cancelled, discarded
    case crashReleased = "crash_released"
    /// Attempts that asked to run again later (``JobStore/snooze(_:processID:for:maxSnoozes:maxAttempts:retryPolicy:on:)``).
    case snoozed

    /// Whether the metric is a histogram of seconds (``MetricBuckets``) rather than a count.
    public var isHistogram: Bool { self == .latency || self == .duration }
}

/// The histogram buckets of job latency and duration, in seconds: from 5 ms to an hour.
public enum MetricBuckets {
    public static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]

    /// The bucket `seconds` falls in: the first bound it does not exceed, or `bounds.count` (+Inf).
    public static func index(of seconds: Double) -> Int {
        bounds.firstIndex { seconds <= $0 } ?? bounds.count
    }

    /// ``index(of:)`` as SQL, for a statement that counts as it changes rows.
    static func indexExpression(_ seconds: SQL) -> SQL {
        var cases: [SQL] = []
        for (index, bound) in bounds.enumerated() {
            cases.append(SQL(unsafeRaw: "WHEN ") + seconds + SQL(unsafeRaw: " <= \(bound) THEN \(index)"))
        }
        return SQL(unsafeRaw: "CASE ") + SQL.joined(cases, separator: " ") + SQL(unsafeRaw: " ELSE \(bounds.count) END")
    }
}

extension JobStore {
    var metricEvents: SQLIdentifier { table("metric_events") }
    var metricTotals: SQLIdentifier { table("metric_totals") }

    /// A statement that counts `metric` once for each row of `source` (a FROM clause and its
    /// conditions), by queue and class, and for a histogram by the bucket of `seconds`.
    func counting(_ metric: JobMetric, queue: SQL, className: SQL, seconds: SQL? = nil, from source: SQL) -> SQL {
        let bucket = seconds.map(MetricBuckets.indexExpression) ?? "-1"
        let total: SQL = seconds.map { "sum(\($0))" } ?? "0"
        return driver.recordMetrics(select: """
            SELECT \(unsafeRaw: "'\(metric.rawValue)'"), \(queue), \(className), \(bucket), count(*), \(total)
            FROM \(source) GROUP BY 2, 3, 4
            """, in: self)
    }

    /// Counts `metric` once for each of `jobIDs`, by their queue and class.
    func count(_ metric: JobMetric, jobs jobIDs: [Int], on database: Driver.Database) throws {
        guard !jobIDs.isEmpty else { return }
        try database.change(counting(metric, queue: "j.queue_name", className: "j.class_name",
                                      from: "\(jobs) j WHERE \(driver.contains("j.id", ids: jobIDs))"))
    }

    /// Counts `metric` once for a job of `queue` and `className`.
    func count(_ metric: JobMetric, queue: String, className: String, on database: Driver.Database) throws {
        try database.change(driver.recordMetrics(select: """
            SELECT \(unsafeRaw: "'\(metric.rawValue)'"), CAST(\(queue) AS text), CAST(\(className) AS text), -1, 1, 0
            """, in: self))
    }

    /// Seconds from `earlier` to `later`, two times a statement has.
    func seconds(from earlier: SQL, to later: SQL) -> SQL { driver.secondsBetween(earlier, later) }
}

extension PostgresDriver {
    /// Appends to the event log: workers counting jobs of one class at once never wait for each
    /// other's row; the dispatcher folds the log into the totals.
    public func recordMetrics(select: SQL, in store: JobStore<Self>) -> SQL {
        "INSERT INTO \(store.metricEvents) (metric, queue_name, class_name, bucket, n, total) \(select)"
    }

    public func secondsBetween(_ earlier: SQL, _ later: SQL) -> SQL { "extract(epoch FROM (\(later) - \(earlier)))::float8" }
}

extension SQLiteDriver {
    /// One writer at a time: added to the totals at once.
    public func recordMetrics(select: SQL, in store: JobStore<Self>) -> SQL {
        // `WHERE true`: without a WHERE, SQLite would read the upsert's ON as a join's.
        """
        INSERT INTO \(store.metricTotals) (metric, queue_name, class_name, bucket, n, total)
        SELECT * FROM (\(select)) WHERE true
        ON CONFLICT (metric, queue_name, class_name, bucket) DO UPDATE SET n = n + excluded.n, total = total + excluded.total
        """
    }

    /// Times are fixed-width text (`2026-11-27 03:00:00.123456+00`): julianday reads the first 26
    /// characters; its double keeps about 10 µs at today's dates.
    public func secondsBetween(_ earlier: SQL, _ later: SQL) -> SQL {
        "((julianday(substr(\(later), 1, 26)) - julianday(substr(\(earlier), 1, 26))) * 86400.0)"
    }
}
