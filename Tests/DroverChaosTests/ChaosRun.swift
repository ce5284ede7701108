import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// One chaos scenario: a real `drover start` on a real PostgreSQL, audited jobs, faults, and the
/// audit at the end.
///
/// Every job is `drover.test.audit`: when it runs it appends `job attempt pid start` to an audit
/// file with one `O_APPEND` write (a file rather than a table, so that it keeps recording while
/// PostgreSQL is down), then works `ms` milliseconds, so that faults land in the middle of jobs.
final class ChaosRun {
    struct Row: CustomStringConvertible {
        let scenario: String
        var jobs = 0
        var faults = 0
        var lost = 0
        var duplicated = 0
        var stuck = 0
        var failed = 0
        var leftovers = 0
        /// Whether the supervisor was running and had last said READY=1 to systemd, before the stop.
        var ready = true
        var recovery: Duration?
        /// Examples of what went wrong, for the failure message.
        var examples: [String] = []

        var clean: Bool { lost == 0 && duplicated == 0 && stuck == 0 && failed == 0 && leftovers == 0 && ready }

        static let header = "scenario                                   jobs  faults  lost  dup>allowed  stuck  failed  leftover  ready  recover"
        var description: String {
            let recover = recovery.map { String(format: "%.1f s", $0.seconds) } ?? "-"
            return String(format: "%@ %6d %7d %5d %12d %6d %7d %9d  %@  %@", scenario.padding(toLength: 40, withPad: " ", startingAt: 0),
                          jobs, faults, lost, duplicated, stuck, failed, leftovers, ready ? "yes  " : "NO   ", recover)
        }
    }

    /// Scenario timings: heartbeats every 500 ms, dead after 3 s; crashes never fail a job (faults
    /// are the scenario's, not the job's); restarts unlimited.
    static func config(workers: Int = 3, threads: Int = 4, extra: String = "") -> String {
        """
        workers:
          - queues: ["*"]
            threads: \(threads)
            processes: \(workers)
            polling_interval: 500ms
        dispatchers:
          - polling_interval: 200ms
        supervisor:
          heartbeat_interval: 500ms
          alive_threshold: 3s
          shutdown_timeout: 3s
          max_crashes: 1000
          max_restarts: 10000
          restart_window: 1m
        \(extra)
        """
    }

    static let aliveThreshold: Duration = .seconds(3)

    let harness: SupervisorHarness
    let auditPath: String
    var row: Row
    private(set) var ids: [Int] = []

    init(_ scenario: String, config: String = ChaosRun.config(), databaseURL: String? = nil) throws {
        harness = try SupervisorHarness(config: config, databaseURL: databaseURL)
        auditPath = harness.directory.url.appendingPathComponent("audit").path
        row = Row(scenario: scenario)
        try harness.waitForReady(timeout: .seconds(60))
    }

    /// Enqueues `count` audited jobs that work `ms` milliseconds each.
    func enqueue(_ count: Int, ms: Int = 2) throws {
        let arguments = try JSON(encoding: AuditArguments(file: auditPath, ms: ms))
        var left = count
        while left > 0 {
            let batch = min(left, 5_000)
            ids += try retrying { try harness.store.enqueue((0..<batch).map { _ in NewJob("drover.test.audit", arguments: arguments) },
                                                            on: harness.db) }
            left -= batch
        }
        row.jobs = ids.count
    }

    struct AuditArguments: Encodable { let file: String; let ms: Int }

    /// How many of the audited jobs are finished (nil while the database cannot answer).
    func finishedCount() -> Int? {
        try? harness.db.query("""
            SELECT count(*) AS n FROM \(harness.store.schema.qualifying("jobs"))
            WHERE finished_at IS NOT NULL AND class_name = 'drover.test.audit'
            """)[0].decode("n", as: Int.self)
    }

    var allFinished: Bool { finishedCount() == ids.count }

    /// Injects `fault` every `interval` for `duration`, or until every job has finished.
    func inject(every interval: Duration, for duration: Duration, _ fault: () throws -> Bool) rethrows {
        let end = ContinuousClock.now + duration
        var next = ContinuousClock.now
        while ContinuousClock.now < end, !allFinished {
            if ContinuousClock.now >= next {
                if try fault() { row.faults += 1 }
                next = .now + interval
            }
            Thread.sleep(forTimeInterval: min(0.02, interval.seconds))
        }
    }

    /// After the last fault: how long until a new job runs (the system has recovered), then until
    /// every job has finished (within `timeout`).
    func recoverAndDrain(timeout: Duration = .seconds(120)) throws {
        let lastFault = ContinuousClock.now
        let probe = try retrying { try harness.store.enqueue([NewJob("drover.test.noop")], on: harness.db)[0] }
        try waitUntil("a job enqueued after the last fault runs", timeout: timeout, interval: .milliseconds(20)) {
            (try? harness.state(probe)?.state) == .finished
        }
        row.recovery = .now - lastFault
        try? waitUntil("every job finished", timeout: timeout, interval: .milliseconds(100)) { allFinished }
    }

    /// Calls `body` until the database answers (it may be restarting), for up to 60 s.
    func retrying<R>(_ body: () throws -> R) throws -> R {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try body()
            } catch let error as DatabaseError where ContinuousClock.now < deadline
                && ([.connectionFailed, .connectionLost, .lockNotAvailable].contains(error.code) || error.sqlState == "57P03") {
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }

    /// The live worker processes of this supervisor.
    func workerPIDs() -> [pid_t] {
        ProcessTable.children(of: harness.pid).filter { $0.state != "Z" }.map(\.pid).filter { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8))?.contains("\"kind\":\"worker\"") ?? false
        }
    }

    /// Stops the supervisor, then counts: jobs not finished (lost), runs beyond 1 + crashes
    /// (duplicated), claims left behind (stuck), failed jobs, and processes left running or unreaped.
    func audit() throws -> Row {
        let schema = harness.store.schema
        let stuckClaims = try retrying { try harness.db.query("SELECT count(*) AS n FROM \(schema.qualifying("claimed_executions"))")[0]
            .decode("n", as: Int.self) }
        let stillReady = try retrying { try harness.db.query("SELECT count(*) AS n FROM \(schema.qualifying("ready_executions"))")[0]
            .decode("n", as: Int.self) }
        let jobs = try retrying { try harness.db.query("""
            SELECT id, finished_at IS NOT NULL AS finished, failed_at IS NOT NULL AS failed, crashes
            FROM \(schema.qualifying("jobs")) WHERE class_name = 'drover.test.audit'
            """) }
        var runs: [Int: Int] = [:]
        var lines: [Int: [Substring]] = [:]
        let text = (try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            if let id = Int(line.split(separator: " ")[0]) {
                runs[id, default: 0] += 1
                lines[id, default: []].append(line)
            }
        }
        var seen = Set<Int>()
        for job in jobs {
            let id = try job.decode("id", as: Int.self)
            seen.insert(id)
            let finished = try job.decode("finished", as: Bool.self)
            let failed = try job.decode("failed", as: Bool.self)
            let crashes = try job.decode("crashes", as: Int.self)
            if failed { row.failed += 1 } else if !finished { row.lost += 1 }
            if finished && runs[id, default: 0] == 0 { row.lost += 1 }  // finished without running: lost work
            if runs[id, default: 0] > 1 + crashes {
                row.duplicated += 1
                if row.examples.count < 5 {
                    row.examples.append("job \(id), crashes \(crashes), runs (job attempt pid start): \(lines[id, default: []].joined(separator: " | "))")
                }
            }
        }
        row.lost += ids.filter { !seen.contains($0) }.count
        row.stuck = stuckClaims + (row.lost > 0 ? 0 : stillReady)

        // The supervisor is up, READY as far as systemd knows, then stops cleanly and leaves nothing behind.
        let lastState = harness.listener.messages.last { message in
            ["READY", "RELOADING", "STOPPING"].contains { message.fields[$0] == "1" }
        }
        row.ready = harness.process.isRunning && lastState?.fields["READY"] == "1"
        let children = ProcessTable.children(of: harness.pid).map(\.pid)
        let outcome = try harness.stop(SIGTERM, timeout: .seconds(60))
        if outcome.status != 0 { row.leftovers += 1 }
        row.leftovers += children.filter { ProcessTable.isAlive($0) }.count
        return row
    }
}

/// The rows of every scenario so far, printed as a table after each.
enum ChaosTable {
    nonisolated(unsafe) static var rows: [ChaosRun.Row] = []
    static let lock = NSLock()

    static func record(_ row: ChaosRun.Row) {
        lock.lock()
        rows.append(row)
        let all = rows
        lock.unlock()
        print("\n" + ChaosRun.Row.header)
        for row in all { print(row) }
        print("")
    }
}
