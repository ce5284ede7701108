import DroverPersistence
import Foundation

/// Everything `/metrics` shows, read from the database in one call: the job counts of
/// ``JobMetric``, the queues and the processes.
public struct MetricsSnapshot: Sendable {
    /// One series: a metric of one queue and class.
    public struct Key: Sendable, Hashable, Comparable {
        public let metric: JobMetric
        public let queue: String
        public let className: String

        public init(_ metric: JobMetric, queue: String, className: String) {
            self.metric = metric
            self.queue = queue
            self.className = className
        }

        public static func < (a: Key, b: Key) -> Bool {
            (a.metric.rawValue, a.queue, a.className) < (b.metric.rawValue, b.queue, b.className)
        }
    }

    /// A histogram of seconds: the count in each of ``MetricBuckets``'s buckets (the last is
    /// +Inf; not cumulative), and the sum.
    public struct Histogram: Sendable, Equatable {
        public var buckets: [Int] = Array(repeating: 0, count: MetricBuckets.bounds.count + 1)
        public var sum: Double = 0
        public var count: Int { buckets.reduce(0, +) }

        public init() {}
    }

    /// Counts of the metrics that are not histograms.
    public var counts: [Key: Int] = [:]
    /// The histograms (`latency`: its count is the jobs started; `duration`: the jobs finished).
    public var histograms: [Key: Histogram] = [:]
    public var queues: [QueueInfo] = []
    public var processes: [ProcessSummary] = []

    public init() {}

    /// The count of `metric` for `queue` and `className`: a histogram's number of observations.
    public func count(_ metric: JobMetric, queue: String, className: String) -> Int {
        let key = Key(metric, queue: queue, className: className)
        return metric.isHistogram ? histograms[key]?.count ?? 0 : counts[key] ?? 0
    }

    /// The sum of `metric` over every queue and class.
    public func total(_ metric: JobMetric) -> Int {
        metric.isHistogram
            ? histograms.filter { $0.key.metric == metric }.values.reduce(0) { $0 + $1.count }
            : counts.filter { $0.key.metric == metric }.values.reduce(0, +)
    }
}

extension JobStore {
    /// Reads the job counts, the queues and the processes (``MetricsSnapshot``).
    public func metrics(on database: Driver.Database) throws -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        try database.atomically {
            for row in try database.fetch("""
                SELECT metric, queue_name, class_name, bucket, CAST(sum(n) AS bigint) AS n, sum(total) AS total
                FROM (\(driver.metricRows(in: self))) m
                GROUP BY metric, queue_name, class_name, bucket
                """) {
                guard let metric = JobMetric(rawValue: try row.decode("metric", as: String.self)) else { continue }
                let key = MetricsSnapshot.Key(
                    metric, queue: try row.decode("queue_name", as: String.self), className: try row.decode("class_name", as: String.self))
                let n = try row.decode("n", as: Int.self)
                if metric.isHistogram {
                    let bucket = try row.decode("bucket", as: Int.self)
                    var histogram = snapshot.histograms[key] ?? MetricsSnapshot.Histogram()
                    if histogram.buckets.indices.contains(bucket) { histogram.buckets[bucket] += n }
                    histogram.sum += try row.decode("total", as: Double.self)
                    snapshot.histograms[key] = histogram
                } else {
                    snapshot.counts[key, default: 0] += n
                }
            }
            snapshot.queues = try listQueues(on: database)
            snapshot.processes = try listProcesses(on: database)
        }
        return snapshot
    }

    /// Folds the event log into the totals (PostgreSQL; nothing to do on SQLite). Returns how
    /// many events it folded. Run by the dispatcher; a reader adds events not folded yet, so
    /// folding changes no figure.
    @discardableResult
    public func foldMetricEvents(on database: Driver.Database) throws -> Int {
        try driver.foldMetricEvents(in: self, on: database)
    }
}

extension PostgresDriver {
    public func metricRows(in store: JobStore<Self>) -> SQL {
        """
        SELECT metric, queue_name, class_name, bucket, n, total FROM \(store.metricTotals)
        UNION ALL SELECT metric, queue_name, class_name, bucket, n, total FROM \(store.metricEvents)
        """
    }

    /// One transaction: the events go, their sums join the totals. Folds take turns (the table
    /// lock conflicts with itself, not with readers or with the workers appending events).
    public func foldMetricEvents(in store: JobStore<Self>, on database: Connection) throws -> Int {
        try database.atomically {
            try database.execute("LOCK TABLE \(store.metricTotals) IN SHARE ROW EXCLUSIVE MODE")
            return try database.fetch("""
                WITH gone AS (DELETE FROM \(store.metricEvents) RETURNING metric, queue_name, class_name, bucket, n, total),
                folded AS (
                    INSERT INTO \(store.metricTotals) AS t (metric, queue_name, class_name, bucket, n, total)
                    SELECT metric, queue_name, class_name, bucket, sum(n), sum(total) FROM gone
                    GROUP BY metric, queue_name, class_name, bucket ORDER BY metric, queue_name, class_name, bucket
                    ON CONFLICT (metric, queue_name, class_name, bucket) DO UPDATE SET n = t.n + excluded.n, total = t.total + excluded.total
                ),
                minutes AS (
                    INSERT INTO \(store.metricMinutes) AS t (minute, metric, n)
                    SELECT date_trunc('minute', now()), metric, sum(n) FROM gone GROUP BY metric ORDER BY metric
                    ON CONFLICT (minute, metric) DO UPDATE SET n = t.n + excluded.n
                )
                SELECT count(*) AS n FROM gone
                """)[0].decode("n", as: Int.self)
        }
    }
}

extension SQLiteDriver {
    public func metricRows(in store: JobStore<Self>) -> SQL {
        "SELECT metric, queue_name, class_name, bucket, n, total FROM \(store.metricTotals)"
    }

    public func foldMetricEvents(in store: JobStore<Self>, on database: SQLiteConnection) throws -> Int { 0 }
}

/// Jobs finished and failed in one minute (the dashboard's chart).
public struct MinuteCounts: Sendable, Equatable {
    public let minute: Date
    public var finished = 0
    public var failed = 0
    public var started = 0
    public var enqueued = 0

    public init(minute: Date) { self.minute = minute }
}

extension JobStore {
    var metricMinutes: SQLIdentifier { table("metric_minutes") }

    /// The counts of the last `minutes` minutes, oldest first, one entry per minute (zeros where
    /// nothing was counted). Counts reach a minute when folded (PostgreSQL: within the
    /// dispatcher's fold interval) or at once (SQLite).
    public func countsByMinute(last minutes: Int = 60, on database: Driver.Database) throws -> [MinuteCounts] {
        try QueueError.require("minutes", minutes, atLeast: 1)
        let now = try time(self.now(), on: database)
        let end = (now.timeIntervalSince1970 / 60).rounded(.down) * 60
        let start = Date(timeIntervalSince1970: end - Double(minutes - 1) * 60)
        var byMinute: [Int: MinuteCounts] = [:]
        for row in try database.fetch("""
            SELECT minute, metric, n FROM \(metricMinutes) WHERE minute >= \(start) ORDER BY minute
            """) {
            let minute = try row.decode("minute", as: Date.self)
            let index = Int(((minute.timeIntervalSince1970 - start.timeIntervalSince1970) / 60).rounded(.down))
            guard index >= 0, index < minutes else { continue }
            var counts = byMinute[index] ?? MinuteCounts(minute: minute)
            let n = try row.decode("n", as: Int.self)
            switch JobMetric(rawValue: try row.decode("metric", as: String.self)) {
            case .duration: counts.finished += n
            case .failed: counts.failed += n
            case .latency: counts.started += n
            case .enqueued: counts.enqueued += n
            default: break
            }
            byMinute[index] = counts
        }
        return (0..<minutes).map { byMinute[$0] ?? MinuteCounts(minute: start.addingTimeInterval(Double($0) * 60)) }
    }

    /// Deletes the per-minute counts older than `age` (the dispatcher keeps a day).
    @discardableResult
    public func clearMetricMinutes(olderThan age: Duration, on database: Driver.Database) throws -> Int {
        let now = self.now()
        return try database.change("DELETE FROM \(metricMinutes) WHERE minute < \(now.after(-Double(age.components.seconds)))")
    }
}
