import DroverPersistence
import DroverQueue
@testable import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

/// `/metrics` text: what Prometheus reads, checked by Prometheus's own `promtool`, from a real
/// store's figures on both backends, and values that could break the format.
@Suite("Metrics: the Prometheus text of a store's figures")
struct MetricsExpositionTests {
    @Test("label values that could break a line are escaped; histograms are cumulative with +Inf; counts are exact")
    func textFormat() throws {
        var snapshot = MetricsSnapshot()
        var histogram = MetricsSnapshot.Histogram()
        histogram.buckets[0] = 2
        histogram.buckets[MetricBuckets.index(of: 2)] = 3
        histogram.buckets[MetricBuckets.bounds.count] = 1
        histogram.sum = 7000.5
        snapshot.histograms[.init(.duration, queue: "q", className: "Mail")] = histogram
        snapshot.counts[.init(.failed, queue: "q", className: "Mail")] = 4
        var queue = QueueInfo(name: "q")
        queue.ready = 3
        queue.oldestReadyAge = 1.25
        queue.paused = true
        snapshot.queues = [queue]
        let text = MetricsExposition.render(snapshot, database: .init(up: true))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"drover_job_duration_seconds_bucket{queue="q",class="Mail",le="0.005"} 2"#))
        #expect(lines.contains(#"drover_job_duration_seconds_bucket{queue="q",class="Mail",le="2.5"} 5"#), "cumulative")
        #expect(lines.contains(#"drover_job_duration_seconds_bucket{queue="q",class="Mail",le="3600"} 5"#))
        #expect(lines.contains(#"drover_job_duration_seconds_bucket{queue="q",class="Mail",le="+Inf"} 6"#))
        #expect(lines.contains(#"drover_job_duration_seconds_sum{queue="q",class="Mail"} 7000.5"#))
        #expect(lines.contains(#"drover_job_duration_seconds_count{queue="q",class="Mail"} 6"#))
        #expect(lines.contains(#"drover_jobs_finished_total{queue="q",class="Mail"} 6"#))
        #expect(lines.contains(#"drover_jobs_failed_total{queue="q",class="Mail"} 4"#))
        #expect(lines.contains(#"drover_queue_jobs{queue="q",state="ready"} 3"#))
        #expect(lines.contains(#"drover_queue_oldest_ready_age_seconds{queue="q"} 1.25"#))
        #expect(lines.contains(#"drover_queue_paused{queue="q"} 1"#))
        #expect(lines.contains("drover_database_up 1"))

        #expect(PrometheusText.escapeLabel("a\"b\\c\nd") == #"a\"b\\c\nd"#)
        let down = MetricsExposition.render(nil, database: .init(up: false, outageSeconds: 12.5))
        #expect(down.contains("drover_database_up 0\n") && down.contains("drover_database_outage_seconds 12.5\n"))
        #expect(!down.contains("drover_queue_jobs{"), "nothing the database was to say when it could not be read")
    }

    @Test("promtool check metrics passes on the figures of a real workload, with hostnames that need escaping",
          arguments: ["postgresql", "sqlite"])
    func promtoolAccepts(_ backend: String) throws {
        let text = try Self.workloadText(backend)
        let (status, output) = try Promtool.check(text)
        #expect(status == 0, "promtool check metrics: \(output)\n\(text)")
        #expect(text.contains("drover_jobs_started_total{"))
        #expect(text.contains(#"host="odd \"host\"\\name""#))
    }

    /// A store's figures after jobs of every ending, and two processes (one on a host whose name
    /// holds a quote and a backslash).
    static func workloadText(_ backend: String) throws -> String {
        func run<Driver: StoreDriver>(_ store: JobStore<Driver>, _ db: Driver.Database) throws -> String {
            let ids = try store.enqueue([NewJob("Mail", queue: "mail"), NewJob("Mail", queue: "mail"), NewJob("Report")], on: db)
            _ = try store.register(kind: .worker, name: "worker-1", pid: 42, hostname: "odd \"host\"\\name", supervisorID: nil, on: db)
            _ = try store.register(kind: .supervisor, name: "supervisor-1", pid: 41, hostname: "h", supervisorID: nil,
                                   metadata: try JSON(encoding: SupervisorMetadata(children: 1, restarts: ["worker": 2])), on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            try store.finish([ids[0]], processID: 1, on: db)
            _ = try store.fail(ids[1], processID: 1, error: JobFailure(errorClass: "Timeout", message: "t"), permanent: true, on: db)
            _ = try store.release(processID: 1, reason: .crashed(JobFailure(errorClass: "WorkerCrashed", message: "k"), maxCrashes: 3), on: db)
            return MetricsExposition.render(try store.metrics(on: db), database: .init(up: true), readSeconds: 0.002)
        }
        if backend == "postgresql" {
            return try TestDatabase.withSchema { schema, db in
                try run(try PostgresJobStore(schema: schema), db)
            }
        }
        let directory = try TemporaryDirectory("drover-metrics")
        let (store, db) = try SQLiteDriver.open(url: "sqlite://" + directory.url.appendingPathComponent("d.sqlite3").path,
                                                options: StoreOptions(migrating: .always))
        return try run(store, db)
    }
}
