import CoreMetrics
import DroverQueue
import Foundation
import Prometheus

/// `/metrics`: Drover's figures in the Prometheus text format (version 0.0.4, which
/// `promtool check metrics` reads and every Prometheus scrapes).
///
/// Two sources, one page:
/// - what the database knows (``MetricsSnapshot``): the queues, the job counts and histograms
///   (``JobMetric``), the processes and their heartbeats. Every process that serves `/metrics`
///   shows the same figures, and they survive every restart. The store keeps histogram buckets
///   as counts, which swift-prometheus's histograms (built to observe values one by one) cannot
///   be set to, so these lines are written here;
/// - what this process measures of itself through swift-metrics (how long reading the
///   database took, the errors it met), made with ``factory`` and exported by swift-prometheus's
///   registry.
public enum MetricsExposition {
    /// The registry of this process's own measures.
    public static let registry = PrometheusCollectorRegistry()

    /// The swift-metrics factory Drover's own measures are made with (`Timer(label:factory:)`):
    /// swift-prometheus's, on ``registry``. It is passed to each metric rather than bootstrapped
    /// as the process's `MetricsSystem`, which can be bootstrapped once: an application that
    /// embeds Drover keeps its own.
    public static let factory: any MetricsFactory = PrometheusMetricsFactory(registry: registry)

    /// The content type of ``render(_:database:)``'s text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// What the serving process sees of the database.
    public struct DatabaseView: Sendable {
        public var up: Bool
        /// How long the current outage has lasted (zero when up).
        public var outageSeconds: Double
        public var outages: Int

        public init(up: Bool, outageSeconds: Double = 0, outages: Int = 0) {
            self.up = up
            self.outageSeconds = outageSeconds
            self.outages = outages
        }
    }

    /// The whole page: the database's figures (none when `snapshot` is nil: the database could
    /// not be read), this process's view of the database, then the registry's metrics.
    public static func render(_ snapshot: MetricsSnapshot?, database: DatabaseView, readSeconds: Double? = nil) -> String {
        var page = PrometheusText()
        if let snapshot { page.add(snapshot) }
        page.family("drover_database_up", .gauge, "1 when the process serving these metrics can reach the database, else 0.")
        page.sample("drover_database_up", [], database.up ? 1 : 0)
        page.family("drover_database_outage_seconds", .gauge, "How long the serving process has been unable to reach the database (0 when it can).")
        page.sample("drover_database_outage_seconds", [], database.outageSeconds)
        if let readSeconds {
            page.family("drover_metrics_read_seconds", .gauge, "How long reading these figures from the database took.")
            page.sample("drover_metrics_read_seconds", [], readSeconds)
        }
        return page.text + withHelp(registry.emitToString())
    }

    /// The help of this process's own measures. swift-prometheus writes no `# HELP` for a metric
    /// made through swift-metrics (which has no help text), and registering one with help first
    /// would make the factory's later request for it, without help, a fatal mismatch; so the
    /// lines are added here, before each family's `# TYPE`.
    static let helpTexts: [String: String] = [
        "drover_metrics_read_duration_seconds": "How long this process took to read the figures of /metrics from the database.",
        "drover_metrics_database_errors_total": "Scrapes of /metrics that found the database unreachable, by error code.",
    ]

    static func withHelp(_ text: String) -> String {
        var out = ""
        var lastHelp: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# HELP ") { lastHelp = line.split(separator: " ").dropFirst(2).first.map(String.init) }
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first.map(String.init), lastHelp != name {
                out += "# HELP \(name) \(PrometheusText.escapeHelp(helpTexts[name] ?? "Measured by the process serving these metrics."))\n"
            }
            out += line + "\n"
        }
        return String(out.dropLast())
    }
}

/// Lines of the Prometheus text format, families in the order added.
struct PrometheusText {
    enum Kind: String { case counter, gauge, histogram }

    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.number(value) + "\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Int) { sample(name, labels, Double(value)) }

    /// A histogram's buckets (not cumulative; the last is +Inf), sum and count.
    mutating func histogram(_ name: String, _ labels: [(String, String)], _ histogram: MetricsSnapshot.Histogram) {
        var cumulative = 0
        for (index, count) in histogram.buckets.enumerated() {
            cumulative += count
            let bound = index < MetricBuckets.bounds.count ? Self.number(MetricBuckets.bounds[index]) : "+Inf"
            sample(name + "_bucket", labels + [("le", bound)], cumulative)
        }
        sample(name + "_sum", labels, histogram.sum)
        sample(name + "_count", labels, histogram.count)
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func escapeLabel(_ value: String) -> String {
        var out = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// The counters of ``JobMetric`` that are not histograms, by the name they are shown under.
    static let counters: [(JobMetric, String, String)] = [
        (.enqueued, "drover_jobs_enqueued_total", "Jobs enqueued (every insert into jobs, whoever made it)."),
        (.failed, "drover_jobs_failed_total", "Jobs that failed for good: out of attempts, a permanent failure, or their crash limit (cancellations aside)."),
        (.retried, "drover_jobs_retried_total", "Failed attempts scheduled to run again, and failed jobs a person retried."),
        (.timedOut, "drover_jobs_timed_out_total", "Attempts stopped by their timeout (each also counts as retried or failed)."),
        (.cancelled, "drover_jobs_cancelled_total", "Cancellations that took effect: a waiting job deleted, or a running one stopped."),
        (.discarded, "drover_jobs_discarded_total", "Failed jobs discarded, and waiting jobs deleted by drover queues clear."),
        (.crashReleased, "drover_jobs_released_after_crash_total", "Claims given back because their process died (killed, crashed, hung, or lost its lease)."),
        (.snoozed, "drover_jobs_snoozed_total", "Attempts that asked to run again later (exit 101, Snooze), spending no attempt; one past max_snoozes counts as failed instead."),
    ]

    mutating func add(_ snapshot: MetricsSnapshot) {
        // Queues.
        let queues = snapshot.queues
        family("drover_queue_jobs", .gauge, "Jobs in a queue by state: ready, scheduled, claimed (running), blocked (by a concurrency limit) or failed.")
        for queue in queues {
            for (state, count) in [("ready", queue.ready), ("scheduled", queue.scheduled), ("claimed", queue.claimed),
                                   ("blocked", queue.blocked), ("failed", queue.failed)] {
                sample("drover_queue_jobs", [("queue", queue.name), ("state", state)], count)
            }
        }
        family("drover_queue_oldest_ready_age_seconds", .gauge, "How long the oldest ready job of a queue has waited for a worker (0 when none waits).")
        for queue in queues { sample("drover_queue_oldest_ready_age_seconds", [("queue", queue.name)], queue.oldestReadyAge ?? 0) }
        family("drover_queue_paused", .gauge, "1 when a queue is paused (drover queues pause), else 0.")
        for queue in queues { sample("drover_queue_paused", [("queue", queue.name)], queue.paused ? 1 : 0) }

        // Job counts.
        func labels(_ key: MetricsSnapshot.Key) -> [(String, String)] { [("queue", key.queue), ("class", key.className)] }
        let started = snapshot.histograms.filter { $0.key.metric == .latency }.sorted { $0.key < $1.key }
        let finished = snapshot.histograms.filter { $0.key.metric == .duration }.sorted { $0.key < $1.key }
        family("drover_jobs_started_total", .counter, "Jobs a worker claimed and started.")
        for (key, histogram) in started { sample("drover_jobs_started_total", labels(key), histogram.count) }
        family("drover_jobs_finished_total", .counter, "Jobs that finished successfully.")
        for (key, histogram) in finished { sample("drover_jobs_finished_total", labels(key), histogram.count) }
        for (metric, name, help) in Self.counters {
            family(name, .counter, help)
            for (key, count) in snapshot.counts.filter({ $0.key.metric == metric }).sorted(by: { $0.key < $1.key }) {
                sample(name, labels(key), count)
            }
        }
        family("drover_job_latency_seconds", .histogram, "Seconds from a job becoming ready (enqueued, due, or admitted) to a worker claiming it.")
        for (key, histogram) in started { self.histogram("drover_job_latency_seconds", labels(key), histogram) }
        family("drover_job_duration_seconds", .histogram, "Seconds from a worker claiming a job to the job finishing successfully.")
        for (key, histogram) in finished { self.histogram("drover_job_duration_seconds", labels(key), histogram) }

        // Processes.
        var perKind: [String: Int] = [:]
        for process in snapshot.processes { perKind["\(process.kind.rawValue)\u{0}\(process.hostname)", default: 0] += 1 }
        family("drover_processes", .gauge, "Registered Drover processes, by kind and host.")
        for (key, count) in perKind.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            sample("drover_processes", [("kind", parts[0]), ("host", parts[1])], count)
        }
        let processes = snapshot.processes.sorted { ($0.kind.rawValue, $0.name) < ($1.kind.rawValue, $1.name) }
        func processLabels(_ process: ProcessSummary) -> [(String, String)] {
            [("kind", process.kind.rawValue), ("host", process.hostname), ("name", process.name)]
        }
        family("drover_process_heartbeat_age_seconds", .gauge, "Seconds since a process last heartbeat, by the database's clock.")
        for process in processes { sample("drover_process_heartbeat_age_seconds", processLabels(process), process.heartbeatAge) }
        family("drover_process_running_jobs", .gauge, "Jobs a process has claimed and not yet reported.")
        for process in processes { sample("drover_process_running_jobs", processLabels(process), process.claimedJobs) }
        family("drover_process_restarts_total", .counter,
               "Children a supervisor started again after they exited, by kind, since the supervisor started (from its heartbeat).")
        for process in processes where process.kind == .supervisor {
            guard let restarts = try? process.metadata.decode(SupervisorRestarts.self).restarts else { continue }
            for (kind, count) in restarts.sorted(by: { $0.key < $1.key }) {
                sample("drover_process_restarts_total", [("host", process.hostname), ("supervisor", process.name), ("kind", kind)], count)
            }
        }
    }

    private struct SupervisorRestarts: Decodable {
        let restarts: [String: Int]
    }
}
