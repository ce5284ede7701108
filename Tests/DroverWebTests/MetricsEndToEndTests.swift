import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `/metrics` after a known workload run by a real `drover start` with its web child, on both
/// databases: every figure equals what the database says happened, Prometheus's own promtool
/// accepts the page, and a restart of everything changes no count.
@Suite("/metrics: a known workload's figures, scraped from the web child")
struct MetricsEndToEndTests {
    static let config = """
        workers:
          - queues: ["*"]
            threads: 3
            polling_interval: 100ms
        dispatchers:
          - polling_interval: 100ms
        supervisor:
          heartbeat_interval: 200ms
          alive_threshold: 2s
          shutdown_timeout: 3s
        handlers:
          Ok:
            command: ["true"]
          Boom:
            command: [sh, -c, "echo broken >&2; exit 100"]
          Slow:
            command: [sleep, "30"]
            timeout: 1s
            max_attempts: 1
        web:
          listen: 127.0.0.1:0

        """

    @Test("every job count and queue figure equals the database's truth, before and after a restart", arguments: Backend.allCases)
    func knownWorkload(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let configPath = try base.directory.file(base.databaseSection + Self.config)
        var system = try DroverBinary.start(["start", "--config", configPath])
        defer {
            for child in ProcessTable.children(of: system.pid) { kill(child.pid, SIGKILL) }
            kill(system.pid, SIGKILL)
            _ = try? system.wait(timeout: .seconds(10))
        }
        let ok = try base.admin.enqueue((0..<5).map { _ in NewJob("Ok", queue: "fast") })
        let boom = try base.admin.enqueue([NewJob("Boom", queue: "fast"), NewJob("Boom", queue: "fast")])
        let slow = try base.admin.enqueue([NewJob("Slow", queue: "slow")])
        let later = try base.admin.enqueue([NewJob("Ok", queue: "fast", runAt: Date().addingTimeInterval(3600))])
        _ = try base.admin.cancel(later[0])
        try waitUntil("the workload ran", timeout: .seconds(60)) {
            try base.admin.countJobs(JobFilter(state: .finished)) == 5 && base.admin.countJobs(JobFilter(state: .failed)) == 3
        }
        // A person retries one failed Boom: it runs and fails again.
        let firstFailure = try #require(try base.admin.job(boom[0])?.failedAt)
        _ = try base.admin.retryFailed([boom[0]])
        try waitUntil("the retried job failed again", timeout: .seconds(30)) {
            guard let job = try base.admin.job(boom[0]) else { return false }
            return job.state == .failed && (job.failedAt ?? firstFailure) > firstFailure
        }
        _ = try base.admin.pause("slow")

        let http = try webHTTP(system)
        let expected: [String: Double] = [
            #"drover_jobs_enqueued_total{queue="fast",class="Ok"}"#: 6,
            #"drover_jobs_enqueued_total{queue="fast",class="Boom"}"#: 2,
            #"drover_jobs_enqueued_total{queue="slow",class="Slow"}"#: 1,
            #"drover_jobs_started_total{queue="fast",class="Ok"}"#: 5,
            #"drover_jobs_started_total{queue="fast",class="Boom"}"#: 3,
            #"drover_jobs_started_total{queue="slow",class="Slow"}"#: 1,
            #"drover_jobs_finished_total{queue="fast",class="Ok"}"#: 5,
            #"drover_jobs_failed_total{queue="fast",class="Boom"}"#: 3,
            #"drover_jobs_failed_total{queue="slow",class="Slow"}"#: 1,
            #"drover_jobs_timed_out_total{queue="slow",class="Slow"}"#: 1,
            #"drover_jobs_retried_total{queue="fast",class="Boom"}"#: 1,
            #"drover_jobs_cancelled_total{queue="fast",class="Ok"}"#: 1,
            #"drover_job_duration_seconds_count{queue="fast",class="Ok"}"#: 5,
            #"drover_job_latency_seconds_count{queue="fast",class="Boom"}"#: 3,
            #"drover_queue_jobs{queue="fast",state="failed"}"#: 2,
            #"drover_queue_jobs{queue="slow",state="failed"}"#: 1,
            #"drover_queue_jobs{queue="fast",state="ready"}"#: 0,
            #"drover_queue_paused{queue="slow"}"#: 1,
            #"drover_database_up"#: 1,
        ]
        // The database's truth, read apart from the metrics: what the jobs table says happened.
        #expect(try base.admin.countJobs(JobFilter(state: .finished, className: "Ok")) == 5)
        #expect(try base.admin.countJobs(JobFilter(state: .failed, queue: "fast")) == 2)
        #expect(ok.count == 5 && slow.count == 1)

        let scraped = try Self.scrape(http)
        Self.expect(scraped.values, expected, "first scrape")
        #expect(scraped.values[#"drover_processes{kind="worker",host="\#(ProcessInfo.processInfo.hostName)"}"#] == 1, "\(scraped.text)")
        #expect(scraped.values.keys.contains { $0.hasPrefix(#"drover_process_heartbeat_age_seconds{kind="web""#) })
        let (status, output) = try Promtool.check(scraped.text)
        #expect(status == 0, "promtool check metrics: \(output)\n\(scraped.text)")
        // The latency buckets are cumulative and end at the count.
        #expect(scraped.values[#"drover_job_latency_seconds_bucket{queue="fast",class="Ok",le="+Inf"}"#] == 5)

        // Stop everything and start again: the counts are the database's, not a process's.
        kill(system.pid, SIGTERM)
        #expect(try system.wait(timeout: .seconds(30)).status == 0)
        system = try DroverBinary.start(["start", "--config", configPath])
        let again = try Self.scrape(try webHTTP(system))
        Self.expect(again.values, expected, "after a restart")
    }

    /// The web child's address, from the line it logs when it serves.
    func webHTTP(_ system: RunningProcess) throws -> HTTP {
        HTTP(base: "http://\(try #require(try dashboardAddress(of: system), "the web child did not serve:\n\(system.stderrSoFar)"))")
    }

    /// `/metrics` as text and as series → value.
    static func scrape(_ http: HTTP) throws -> (text: String, values: [String: Double]) {
        let answer = try http.get("/metrics")
        #expect(answer.status == 200 && answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", "\(answer)")
        var values: [String: Double] = [:]
        for line in answer.body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return (answer.body, values)
    }

    static func expect(_ values: [String: Double], _ expected: [String: Double], _ when: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (series, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(values[series] == value, "\(when): \(series) is \(values[series].map { "\($0)" } ?? "missing"), not \(value)",
                    sourceLocation: sourceLocation)
        }
    }
}
