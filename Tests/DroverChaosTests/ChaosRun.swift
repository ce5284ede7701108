import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// One chaos scenario: real `drover start`s (one, or one per host) on a real database (PostgreSQL,
/// or a SQLite file), audited jobs, faults, and the audit at the end.
///
/// Two kinds of audited jobs, each recording every run in a file rather than a table, so that it
/// keeps recording while the database is down or out of reach:
///
/// - `drover.test.audit` (Drover's test handler, in the worker's process): appends `job attempt
///   pid start` with one `O_APPEND` write, then works `ms` milliseconds, so that faults land in the
///   middle of jobs. Its end is estimated: the start plus `ms`, plus any time its process spent
///   stopped (`SIGSTOP`), cut short where the run killed the process (see ``Timeline``).
/// - `chaos.tick` (a command, `tick.sh`, declared under `handlers:`): appends `job attempt host
///   event realtime-ns pid` lines, one when it starts, one every 100 ms for `ticks` ticks, one at
///   its end, and `term` when it gets SIGTERM; an attempt lasts from its start to its last line.
final class ChaosRun {
    struct Row: CustomStringConvertible {
        let scenario: String
        var jobs = 0
        var faults = 0
        var lost = 0
        var duplicated = 0
        /// Jobs with two attempts running at the same time.
        var overlapping = 0
        var stuck = 0
        var failed = 0
        var leftovers = 0
        /// Whether every supervisor was running and had last said READY=1 to systemd, before the stop.
        var ready = true
        var recovery: Duration?
        /// Examples of what went wrong, for the failure message.
        var examples: [String] = []

        var clean: Bool {
            lost == 0 && duplicated == 0 && overlapping == 0 && stuck == 0 && failed == 0 && leftovers == 0 && ready
        }

        static let header =
            "scenario                                       jobs  faults  lost  dup>allowed  overlap  stuck  failed  leftover  ready  recover"
        var description: String {
            let recover = recovery.map { String(format: "%.1f s", $0.seconds) } ?? "-"
            return String(format: "%@ %6d %7d %5d %12d %8d %6d %7d %9d  %@  %@", scenario.padding(toLength: 44, withPad: " ", startingAt: 0),
                          jobs, faults, lost, duplicated, overlapping, stuck, failed, leftovers, ready ? "yes  " : "NO   ", recover)
        }
    }

    /// Scenario timings: heartbeats every 500 ms, dead after 3 s; crashes never fail a job (faults
    /// are the scenario's, not the job's); restarts unlimited.
    static func config(workers: Int = 3, threads: Int = 4, polling: String = "500ms", dispatcher: Bool = true,
                       extra: String = "") -> String {
        """
        workers:
          - queues: ["*"]
            threads: \(threads)
            processes: \(workers)
            polling_interval: \(polling)
        dispatchers:\(dispatcher ? "\n  - polling_interval: 200ms" : " []")
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
    static let heartbeatInterval: Duration = .milliseconds(500)

    enum Backend {
        /// A schema of its own on this PostgreSQL (default: the test server).
        case postgresql(url: String? = nil)
        case sqlite
    }

    let directory: TemporaryDirectory
    let database: ChaosDatabase
    private(set) var supervisors: [ChaosSupervisor] = []
    /// The first supervisor.
    var supervisor: ChaosSupervisor { supervisors[0] }
    let auditPath: String
    let tickAuditPath: String
    let tickScript: String
    var row: Row
    /// Every audited job enqueued.
    private(set) var ids: [Int] = []
    /// What the run did to processes, for the audit jobs' ends.
    var timeline = Timeline()
    /// Lines printed under the table.
    var notes: [String] = []

    static let tickClass = "chaos.tick"
    static let auditClass = "drover.test.audit"

    init(_ scenario: String, backend: Backend = .postgresql()) throws {
        directory = try TemporaryDirectory("drover-chaos")
        chmod(directory.url.path, 0o777)
        switch backend {
        case .postgresql(let url): database = try ChaosDatabase.postgresql(url: url)
        case .sqlite: database = try ChaosDatabase.sqlite(in: directory)
        }
        auditPath = directory.url.appendingPathComponent("audit").path
        tickAuditPath = directory.url.appendingPathComponent("ticks").path
        tickScript = try directory.file(Self.tickScriptText, named: "tick.sh", mode: 0o755)
        row = Row(scenario: scenario)
    }

    /// The scenarios of `make chaos` before issue 16: one supervisor on a schema of its own, ready.
    convenience init(_ scenario: String, config: String = ChaosRun.config(), databaseURL: String? = nil) throws {
        try self.init(scenario, backend: .postgresql(url: databaseURL))
        try addSupervisor("main", config: config)
    }

    /// Starts a `drover start` on the run's database (reached at `url`, else the database's own),
    /// and waits until it is ready.
    @discardableResult
    func addSupervisor(_ label: String, config: String, url: String? = nil, wrapper: [String] = [], wrapperForks: Bool = false,
                       environment: [String: String?] = [:], waitForReady: Bool = true) throws -> ChaosSupervisor {
        let started = try ChaosSupervisor(label, database: database, url: url, config: config, directory: directory,
                                          wrapper: wrapper, wrapperForks: wrapperForks, environment: environment)
        supervisors.append(started)
        if waitForReady { try started.waitForReady(timeout: .seconds(60)) }
        return started
    }

    /// The `handlers:` section that declares `chaos.tick` for host `host` (its name in the audit).
    func tickHandlers(host: String) -> String {
        """
        handlers:
          \(Self.tickClass):
            command: [\(tickScript)]
            grace_period: 2s
            max_attempts: 100
            env: {CHAOS_AUDIT: "\(tickAuditPath)", CHAOS_HOST: "\(host)"}
        """
    }

    static let tickScriptText = """
        #!/bin/sh
        # A chaos job: records its start, ticks every 100 ms for the number of ticks in its
        # arguments ({"ticks": N} on stdin), records its end; SIGTERM records "term" and exits.
        # Lines "job attempt host event realtime-ns pid", each one O_APPEND write.
        IFS= read -r args || true
        n=$(printf '%s' "$args" | tr -cd 0-9)
        rec() { printf '%s %s %s %s %s %s\\n' "$DROVER_JOB_ID" "$DROVER_ATTEMPT" "$CHAOS_HOST" "$1" "$(date +%s%N)" "$$" >> "$CHAOS_AUDIT"; }
        trap 'rec term; exit 143' TERM
        rec start
        i=0
        while [ "$i" -lt "${n:-0}" ]; do sleep 0.1; rec tick; i=$((i + 1)); done
        rec end

        """

    /// Enqueues `count` audited jobs that work `ms` milliseconds each.
    func enqueue(_ count: Int, ms: Int = 2) throws {
        for id in try enqueue(count, className: Self.auditClass, arguments: try JSON(encoding: AuditArguments(file: auditPath, ms: ms))) {
            auditWork[id] = ms
        }
    }

    /// How long each audit job works (ms).
    private var auditWork: [Int: Int] = [:]

    /// Enqueues `count` command jobs that tick for about `ticks` × 100 ms each.
    @discardableResult
    func enqueueTicks(_ count: Int, ticks: Int, queue: String = "default") throws -> [Int] {
        try enqueue(count, className: Self.tickClass, arguments: try JSON(encoding: ["ticks": ticks]), queue: queue)
    }

    @discardableResult
    private func enqueue(_ count: Int, className: String, arguments: JSON, queue: String = "default") throws -> [Int] {
        var left = count
        var added: [Int] = []
        while left > 0 {
            let batch = min(left, 5_000)
            added += try retrying {
                try database.admin.enqueue((0..<batch).map { _ in NewJob(className, arguments: arguments, queue: queue, maxAttempts: 100) })
            }
            left -= batch
        }
        ids += added
        row.jobs = ids.count
        return added
    }

    struct AuditArguments: Encodable { let file: String; let ms: Int }

    /// Audit jobs enqueued another way (in batches): the audit covers them.
    func addAudited(_ added: [Int], ms: Int = 2) {
        for id in added { auditWork[id] = ms }
        ids += added
        row.jobs = ids.count
    }

    /// How many of the audited jobs are finished (nil while the database cannot answer).
    func finishedCount() -> Int? {
        try? database.count("""
            SELECT count(*) AS n FROM \(database.table("jobs"))
            WHERE finished_at IS NOT NULL AND class_name IN (\(Self.auditClass), \(Self.tickClass))
            """)
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
        let probe = try retrying { try database.admin.enqueue([NewJob("drover.test.noop")])[0] }
        try waitUntil("a job enqueued after the last fault runs", timeout: timeout, interval: .milliseconds(20)) {
            (try? database.admin.job(probe)?.state) == .finished
        }
        if row.recovery == nil { row.recovery = .now - lastFault }
        try drain(timeout: timeout)
    }

    /// Waits until every audited job has finished (or `timeout` passes: the audit says what is left).
    func drain(timeout: Duration = .seconds(120)) throws {
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

    /// Leaves a supervisor that the scenario killed for good out of the audit's stop and readiness
    /// (its log is still saved).
    func retire(_ supervisor: ChaosSupervisor) {
        supervisors.removeAll { $0 === supervisor }
        retired.append(supervisor)
    }

    private(set) var retired: [ChaosSupervisor] = []

    /// The live worker processes of the first supervisor.
    func workerPIDs() -> [pid_t] { supervisor.workerPIDs() }

    /// How many jobs the process `pid` holds (claimed), by the database.
    func claims(ofPID pid: pid_t) -> Int? {
        try? database.count("""
            SELECT count(*) AS n FROM \(database.table("claimed_executions")) c
            JOIN \(database.table("processes")) p ON p.id = c.process_id WHERE p.pid = \(Int(pid))
            """)
    }

    // MARK: - Attempts

    /// One run of one job, as its audit lines tell it.
    struct Attempt: CustomStringConvertible {
        let job: Int
        let attempt: Int
        /// The host (tick jobs) or "worker" (audit jobs).
        let runner: String
        let pid: Int
        var start: Int64
        var end: Int64
        /// The tick job recorded its end (an audit job always counts as complete).
        var completed: Bool
        var termed = false
        var ticks = 0

        var description: String {
            let how = runner == "worker" ? "audit job, end estimated" : "\(ticks) ticks, " + (completed ? "end" : termed ? "term" : "cut")
            return "attempt \(attempt) on \(runner) pid \(pid) \(Self.clock(start))–\(Self.clock(end)) (\(how))"
        }

        static func clock(_ ns: Int64) -> String {
            let seconds = ns / 1_000_000_000
            let millis = (ns / 1_000_000) % 1000
            return String(format: "%02d:%02d:%02d.%03d", (seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60, millis)
        }

        func overlaps(_ other: Attempt) -> Bool { start < other.end && other.start < end }
    }

    /// The attempts of the tick jobs, by job, in order of start.
    func tickAttempts() -> [Int: [Attempt]] {
        var attempts: [Int: [String: Attempt]] = [:]
        let text = (try? String(contentsOfFile: tickAuditPath, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let job = Int(fields[0]), let attempt = Int(fields[1]), let at = Int64(fields[4]),
                  let pid = Int(fields[5]) else { continue }
            let host = String(fields[2])
            let key = "\(attempt) \(host) \(pid)"
            var record = attempts[job]?[key] ?? Attempt(job: job, attempt: attempt, runner: host, pid: pid, start: at, end: at, completed: false)
            record.start = min(record.start, at)
            record.end = max(record.end, at)
            switch fields[3] {
            case "end": record.completed = true
            case "term": record.termed = true
            case "tick": record.ticks += 1
            default: break
            }
            attempts[job, default: [:]][key] = record
        }
        return attempts.mapValues { $0.values.sorted { $0.start < $1.start } }
    }

    /// The attempts of the audit jobs, by job, in order of start; each ends by ``Timeline``.
    func auditAttempts() -> [Int: [Attempt]] {
        var attempts: [Int: [Attempt]] = [:]
        let text = (try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, let job = Int(fields[0]), let attempt = Int(fields[1]), let pid = Int(fields[2]),
                  let start = Int64(fields[3]) else { continue }
            let end = timeline.end(of: pid_t(pid), startedAt: start, working: Int64(auditWork[job] ?? 0) * 1_000_000)
            attempts[job, default: []].append(
                Attempt(job: job, attempt: attempt, runner: "worker", pid: pid, start: start, end: end, completed: true))
        }
        return attempts.mapValues { $0.sorted { $0.start < $1.start } }
    }

    // MARK: - Audit

    /// Stops every supervisor, then counts: jobs not finished (lost), runs beyond 1 + crashes
    /// (duplicated), jobs with two attempts running at once (overlapping), claims left behind
    /// (stuck), failed jobs, and processes left running or unreaped.
    func audit() throws -> Row {
        let stuckClaims = try retrying { try database.count("SELECT count(*) AS n FROM \(database.table("claimed_executions"))") }
        let stillReady = try retrying { try database.count("SELECT count(*) AS n FROM \(database.table("ready_executions"))") }
        let jobs = try retrying { try database.query("""
            SELECT id, class_name,
                   CASE WHEN finished_at IS NOT NULL THEN 1 ELSE 0 END AS finished,
                   CASE WHEN failed_at IS NOT NULL THEN 1 ELSE 0 END AS failed, crashes
            FROM \(database.table("jobs")) WHERE class_name IN (\(Self.auditClass), \(Self.tickClass))
            """) }
        let attempts = auditAttempts().merging(tickAttempts()) { $0 + $1 }
        var seen = Set<Int>()
        for job in jobs {
            let id = try job.decode("id", as: Int.self)
            seen.insert(id)
            let finished = try job.decode("finished", as: Int.self) != 0
            let failed = try job.decode("failed", as: Int.self) != 0
            let crashes = try job.decode("crashes", as: Int.self)
            let runs = attempts[id, default: []]
            func example(_ what: String) {
                if row.examples.count < 8 {
                    row.examples.append("job \(id) \(what), crashes \(crashes): " + runs.map(\.description).joined(separator: " | "))
                }
            }
            if failed {
                row.failed += 1
                example("failed")
            } else if !finished || !runs.contains(where: \.completed) {
                // Not finished, or finished without running to its end: lost work.
                row.lost += 1
                example(finished ? "finished without a complete run" : "never finished")
            }
            if runs.count > 1 + crashes {
                row.duplicated += 1
                example("ran \(runs.count) times")
            }
            let overlapping = runs.indices.contains { i in runs.indices.contains { j in i < j && runs[i].overlaps(runs[j]) } }
            if overlapping {
                row.overlapping += 1
                example("had attempts running at the same time")
            }
        }
        let reruns = attempts.values.filter { $0.count > 1 }.count
        if reruns > 0 { notes.append("\(reruns) jobs ran more than once") }
        row.lost += ids.filter { !seen.contains($0) }.count
        row.stuck = stuckClaims + (row.lost > 0 ? 0 : stillReady)

        // Every supervisor is up, READY as far as systemd knows, then stops cleanly and leaves nothing behind.
        row.ready = supervisors.allSatisfy(\.isReady)
        for supervisor in supervisors where supervisor.process.isRunning {
            let children = supervisor.descendants()
            let outcome = try supervisor.stop(SIGTERM, timeout: .seconds(60))
            if outcome.status != 0 {
                row.leftovers += 1
                row.examples.append("supervisor \(supervisor.label) exited with status \(outcome.status)")
            }
            row.leftovers += children.filter { ProcessTable.isAlive($0) }.count
        }
        return row
    }

    /// Where each supervisor's whole log is kept after the run.
    func saveLogs() -> [String] {
        (supervisors + retired).map { supervisor in
            let name = row.scenario.filter { $0.isLetter || $0.isNumber }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("drover-chaos-\(name)-\(supervisor.label).log").path
            try? supervisor.log.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    /// Audits, records the row in the table, and fails the test on anything off.
    func finish(expectFaults: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let row = try audit()
        ChaosTable.record(row, notes: notes)
        let logs = saveLogs()
        if expectFaults { #expect(row.faults > 0, "no fault was injected: \(row)", sourceLocation: sourceLocation) }
        #expect(row.clean, "\(row)\n\(row.examples.joined(separator: "\n"))\nthe logs: \(logs.joined(separator: " "))",
                sourceLocation: sourceLocation)
    }
}

/// What a run did to processes, with wall-clock times (CLOCK_REALTIME ns, as the audit files):
/// when each was stopped and continued, and when each died.
struct Timeline {
    private var pauses: [pid_t: [(stop: Int64, resume: Int64?)]] = [:]
    private var deaths: [pid_t: Int64] = [:]

    mutating func stopped(_ pid: pid_t, at time: Int64 = realtimeNanoseconds()) { pauses[pid, default: []].append((time, nil)) }

    mutating func resumed(_ pid: pid_t, at time: Int64 = realtimeNanoseconds()) {
        if let last = pauses[pid]?.indices.last, pauses[pid]![last].resume == nil { pauses[pid]![last].resume = time }
    }

    mutating func died(_ pid: pid_t, at time: Int64 = realtimeNanoseconds()) {
        if deaths[pid] == nil { deaths[pid] = time }
    }

    /// When a job that started at `start` in `pid` and works `working` ns ended: later by the time
    /// the process spent stopped meanwhile, earlier if the process died first.
    func end(of pid: pid_t, startedAt start: Int64, working: Int64) -> Int64 {
        let death = deaths[pid] ?? .max
        var end = start + working
        for pause in (pauses[pid] ?? []).sorted(by: { $0.stop < $1.stop }) where pause.stop < end && (pause.resume ?? .max) > start {
            let resume = min(pause.resume ?? death, death)
            if resume == .max { return .max / 2 }
            end += resume - max(pause.stop, start)
        }
        return min(end, death)
    }
}

/// The rows of every scenario so far, printed as a table after each.
enum ChaosTable {
    nonisolated(unsafe) static var rows: [ChaosRun.Row] = []
    nonisolated(unsafe) static var notes: [String] = []
    static let lock = NSLock()

    static func record(_ row: ChaosRun.Row, notes newNotes: [String] = []) {
        lock.lock()
        rows.append(row)
        notes += newNotes.map { "\(row.scenario): \($0)" }
        let all = rows
        let allNotes = notes
        lock.unlock()
        print("\n" + ChaosRun.Row.header)
        for row in all { print(row) }
        for note in allNotes { print("  " + note) }
        print("")
    }
}
