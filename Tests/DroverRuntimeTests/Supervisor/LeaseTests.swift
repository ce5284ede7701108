import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Leases and fencing with real processes: a frozen worker, heartbeats that cannot be stored, a
/// database that went away, a host whose clock is wrong. Each asserts what a user would see: the
/// job taken back in time, its first attempt's command gone before the second starts, the crash
/// counted, the worker replaced.
@Suite("Leases: a hung or cut-off worker gives up its jobs before anyone else may run them", .serialized)
struct LeaseTests {
    enum Backend: String, CaseIterable, CustomStringConvertible {
        case postgresql, sqlite
        var description: String { rawValue }
    }

    /// One `drover start` on either backend, seen the same way.
    final class Host {
        let log: () -> String
        let enqueue: (String, Int) throws -> Int
        let enqueueJob: (NewJob) throws -> Int
        let job: (Int) throws -> JobInfo?
        let workers: () throws -> [ProcessSummary]
        let stop: () throws -> DroverBinary.Outcome
        let directory: TemporaryDirectory
        /// PostgreSQL's harness, for what only PostgreSQL has (row locks).
        private(set) var harness: SupervisorHarness?
        private let keep: [AnyObject]

        /// `config` may say `$DIR` for a directory of the test's.
        init(_ backend: Backend, config: String) throws {
            let directory = try TemporaryDirectory("drover-lease")
            chmod(directory.url.path, 0o777)
            self.directory = directory
            let text = config.replacingOccurrences(of: "$DIR", with: directory.url.path)
            switch backend {
            case .postgresql:
                let h = try SupervisorHarness(config: text)
                try h.waitForReady()
                log = { h.log }
                enqueue = { try h.store.enqueue(NewJob($0, maxAttempts: $1), on: h.db) }
                enqueueJob = { try h.store.enqueue($0, on: h.db) }
                job = { try h.state($0) }
                workers = { try h.registeredChildren().filter { $0.kind == .worker } }
                stop = { try h.stop() }
                harness = h
                keep = [h]
            case .sqlite:
                let run = try SQLiteRuntimeTests.Run(config: text)
                try run.waitForReady()
                let (store, db) = try run.open()
                log = { run.process.stderrSoFar }
                enqueue = { try store.enqueue(NewJob($0, maxAttempts: $1), on: db) }
                enqueueJob = { try store.enqueue($0, on: db) }
                job = { try store.job($0, on: db) }
                workers = { try run.workers(on: db) }
                stop = { try run.stop() }
                keep = [run, db]
            }
        }

        /// The attempts a `Recorded` job wrote: (attempt, pid of its command).
        func attempts() -> [(attempt: Int, pid: pid_t)] {
            let text = (try? String(contentsOfFile: directory.url.appendingPathComponent("attempts").path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let attempt = Int(parts[0]), let pid = pid_t(parts[1]) else { return nil }
                return (attempt, pid)
            }
        }
    }

    /// Heartbeats every 500 ms, dead after 3 s: a worker fences at 2.5 s, kills its commands at
    /// 2.75 s, and its supervisor kills it if it still runs them at 2.875 s.
    static func config(threads: Int = 1) -> String {
        """
        workers:
          - queues: ["*"]
            threads: \(threads)
            polling_interval: 200ms
        dispatchers: []
        supervisor:
          heartbeat_interval: 500ms
          alive_threshold: 3s
          shutdown_timeout: 2s
          max_crashes: 5
        handlers:
          Recorded:
            command: ["/bin/sh", "-c", "echo $DROVER_ATTEMPT $$ >> $DIR/attempts; exec sleep 60"]
        """
    }

    @Test("a worker frozen with SIGSTOP under a single supervisor is killed before its lease ends; its command dies with it, the job runs again once, with a crash counted", arguments: Backend.allCases)
    func frozenWorker(backend: Backend) throws {
        let host = try Host(backend, config: Self.config())
        let id = try host.enqueue("Recorded", 5)
        try waitUntil("the first attempt runs", timeout: .seconds(20)) { !host.attempts().isEmpty }
        let first = host.attempts()[0]
        let worker = try #require(try host.workers().first { $0.claimedJobs > 0 })
        let frozenAt = Date()
        kill(pid_t(worker.pid), SIGSTOP)
        try waitUntil("the supervisor killed the frozen worker", timeout: .seconds(10)) {
            host.log().contains("killing it (SIGKILL)") && !ProcessTable.isAlive(pid_t(worker.pid))
        }
        // By the supervisor's own log line: when it decided, not when this test looked.
        let killedAt = try #require(Self.loggedTime(of: "killing it (SIGKILL)", in: host.log()))
        let killedAfter = killedAt.timeIntervalSince(frozenAt)
        #expect(killedAfter < 3, "killed \(killedAfter) s after it froze: alive_threshold is 3 s, so its lease had run out")
        try waitUntil("its command died with it", timeout: .seconds(5)) { !ProcessTable.isAlive(first.pid) }
        try waitUntil("the job runs again", timeout: .seconds(20)) { host.attempts().count == 2 }
        #expect(!ProcessTable.isAlive(first.pid), "the first attempt's command outlived its worker")
        #expect(host.attempts().map(\.attempt) == [1, 1], "a crash is not an attempt: the job's attempt number stays")
        let info = try #require(try host.job(id))
        #expect(info.crashes == 1 && info.state == .claimed, "\(info)")
        #expect(try host.workers().contains { $0.pid != worker.pid }, "the frozen worker was replaced")
        #expect(host.log().contains("heartbeat_age="))
        #expect(try host.stop().status == 0)
    }

    /// Removes the shared memory libfaketime left for processes that are gone.
    static func removeFaketimeLeftovers() {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
        for entry in entries {
            guard let prefix = ["faketime_shm_", "sem.faketime_sem_"].first(where: entry.hasPrefix),
                  let pid = pid_t(entry.dropFirst(prefix.count)), !ProcessTable.isAlive(pid) else { continue }
            try? FileManager.default.removeItem(atPath: "/dev/shm/" + entry)
        }
    }

    /// The time of the first log line that contains `fragment`.
    static func loggedTime(of fragment: String, in log: String) -> Date? {
        guard let line = log.split(separator: "\n").first(where: { $0.contains(fragment) }),
              let stamp = line.split(separator: " ").first(where: { $0.hasPrefix("time=") }) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: String(stamp.dropFirst(5)))
    }

    @Test("heartbeats that cannot be stored (its row locked past alive_threshold) make a worker fence: its command is stopped before the lease ends, it exits 76, and the job counts a crash")
    func heartbeatsFailing() throws {
        // PostgreSQL only: a row lock held by another session is PostgreSQL's; SQLite's write lock
        // held past alive_threshold is in the chaos scenarios (it stops every process at once).
        let host = try Host(.postgresql, config: Self.config())
        let h = try #require(host.harness)
        let id = try host.enqueue("Recorded", 5)
        try waitUntil("the first attempt runs", timeout: .seconds(20)) { !host.attempts().isEmpty }
        let first = host.attempts()[0]
        let worker = try #require(try host.workers().first { $0.claimedJobs > 0 })
        let holder = try TestDatabase.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT * FROM \(h.store.schema.qualifying("processes")) WHERE id = \(worker.id) FOR UPDATE")
        let lockedAt = ContinuousClock.now
        try waitUntil("the command was stopped", timeout: .seconds(10)) { !ProcessTable.isAlive(first.pid) }
        let stoppedAfter = ContinuousClock.now - lockedAt
        #expect(stoppedAfter < .seconds(3), "the command ran \(stoppedAfter) after the last heartbeat: past the lease")
        try waitUntil("the worker fenced and exited 76", timeout: .seconds(10)) {
            host.log().contains("could not renew the lease") && host.log().contains("exited with status 76")
        }
        try holder.execute("COMMIT")
        try waitUntil("the job runs again", timeout: .seconds(20)) { host.attempts().count == 2 }
        let info = try #require(try host.job(id))
        #expect(info.crashes == 1, "the attempt the fence stopped is a crash, not a failure: \(info)")
        #expect(info.lastError == nil || info.lastError?.errorClass != "LeaseLost", "the fence's stop is never reported as a failure")
        #expect(try host.stop().status == 0)
    }

    @Test("an outage counts toward the lease: with PostgreSQL stopped, a worker stops its command before alive_threshold, and the job runs again when it is back")
    func outageFences() throws {
        // A server to stop: PostgreSQL's; SQLite has no outage of this kind.
        let cluster = try PrivateCluster()
        let directory = try TemporaryDirectory("drover-lease-outage")
        chmod(directory.url.path, 0o777)
        let h = try SupervisorHarness(config: Self.config().replacingOccurrences(of: "$DIR", with: directory.url.path), databaseURL: cluster.url)
        try h.waitForReady()
        let attemptsFile = directory.url.appendingPathComponent("attempts").path
        func attempts() -> [Substring] { ((try? String(contentsOfFile: attemptsFile, encoding: .utf8)) ?? "").split(separator: "\n") }
        let id = try h.store.enqueue(NewJob("Recorded", maxAttempts: 5), on: h.db)
        try waitUntil("the first attempt runs", timeout: .seconds(20)) { !attempts().isEmpty }
        let firstPID = try #require(pid_t(attempts()[0].split(separator: " ")[1]))
        try cluster.stop()
        let downAt = ContinuousClock.now
        try waitUntil("the command was stopped", timeout: .seconds(10)) { !ProcessTable.isAlive(firstPID) }
        #expect(ContinuousClock.now - downAt < .seconds(3), "the command outlived the lease")
        try waitUntil("the worker fenced", timeout: .seconds(10)) { h.log.contains("could not renew the lease") }
        try cluster.start()
        try waitUntil("the job runs again", timeout: .seconds(30)) { attempts().count == 2 }
        let db = try Connection(cluster.url, applicationName: "drover-tests")
        let crashes = try db.query("SELECT crashes FROM \(h.store.schema.qualifying("jobs")) WHERE id = \(id)")[0].decode("crashes", as: Int.self)
        #expect(crashes == 1)
        #expect(try h.stop().status == 0)
    }

    @Test("a worker fenced during an outage keeps the result of a job that finished meanwhile, waits without spinning, and reports it when the database is back: the job is finished once, never run again")
    func fencedWorkerReportsLater() throws {
        // A server to stop: PostgreSQL's (the SQLite lock-held case is in make chaos).
        let cluster = try PrivateCluster()
        let directory = try TemporaryDirectory("drover-lease-report")
        chmod(directory.url.path, 0o777)
        let config = Self.config().replacingOccurrences(of: "$DIR", with: directory.url.path) + """

              Short:
                command: ["/bin/sh", "-c", "echo $DROVER_ATTEMPT $$ >> \(directory.url.path)/short; sleep 1"]
            """
        let h = try SupervisorHarness(config: config, databaseURL: cluster.url)
        try h.waitForReady()
        let file = directory.url.appendingPathComponent("short").path
        func runs() -> Int { ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").count }
        let id = try h.store.enqueue(NewJob("Short", maxAttempts: 5), on: h.db)
        try waitUntil("the job runs", timeout: .seconds(20)) { runs() == 1 }
        let worker = try #require(try h.registeredChildren().first { $0.kind == .worker })
        try cluster.stop()
        // It finishes after 1 s, with nobody to tell; the worker fences at 2.5 s with its result.
        try waitUntil("the worker fenced", timeout: .seconds(10)) { h.log.contains("could not renew the lease") }
        let before = ProcessTable.cpuTime(pid_t(worker.pid))
        Thread.sleep(forTimeInterval: 2)  // the outage goes on: measure what the fenced worker burns meanwhile
        let burned = ProcessTable.cpuTime(pid_t(worker.pid)) - before
        #expect(burned < 0.3, "a fenced worker waiting for the database used \(burned) s of CPU in 2 s")
        #expect(ProcessTable.isAlive(pid_t(worker.pid)), "it waits to report, rather than exit with its result")
        try cluster.start()
        try waitUntil("the worker reported and exited 76", timeout: .seconds(20)) { !ProcessTable.isAlive(pid_t(worker.pid)) }
        let db = try Connection(cluster.url, applicationName: "drover-tests")
        try waitUntil("the job is finished", timeout: .seconds(10)) {
            try db.query("SELECT finished_at IS NOT NULL AS done FROM \(h.store.schema.qualifying("jobs")) WHERE id = \(id)")[0]
                .decode("done", as: Bool.self)
        }
        Thread.sleep(forTimeInterval: 1)
        #expect(runs() == 1, "a job whose result was kept ran again")
        #expect(h.log.contains("exited with status 76"))
        #expect(try h.stop().status == 0)
    }

    @Test("a supervisor whose host clock is 90 s behind, beside one whose clock is right: neither prunes the other's live processes; a killed host's job is taken back on time")
    func skewedClock() throws {
        // Two hosts' clocks differ only across hosts; a SQLite file has one host, so this is PostgreSQL's.
        let library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
        try #require(FileManager.default.fileExists(atPath: library), "faketime is not installed (make test installs it)")
        let skew: [String: String?] = ["LD_PRELOAD": library, "FAKETIME": "-90s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"]
        // libfaketime gives each process a shared-memory segment it removes at exit, but not when
        // the process is killed, as some are here.
        defer { Self.removeFaketimeLeftovers() }
        let behind = try SupervisorHarness(config: Self.config().replacingOccurrences(of: "$DIR", with: "/tmp"), environment: skew)
        do {
            try behind.waitForReady()
        } catch {
            let outcome = try? behind.process.wait(timeout: .seconds(2))
            Issue.record("the skewed supervisor did not start: \(error)\n\(behind.log)\n\(outcome.map { "\($0)" } ?? "still running")")
            throw error
        }
        // Its own log's timestamps show the skew took.
        let firstLine = behind.log.split(separator: "\n").first.map(String.init) ?? ""
        let logged = try #require(Self.loggedTime(of: "time=", in: firstLine))
        #expect(Date().timeIntervalSince(logged) > 80, "faketime did not take: \(firstLine)")

        let other = try DroverBinary.start(
            ["start", "--config", try behind.directory.file(Self.config(), named: "right.yml"),
             "--database-url", try TestDatabase.url(), "--schema", behind.schema],
            environment: ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": nil])
        defer {
            kill(other.pid, SIGKILL)
            _ = try? other.wait(timeout: .seconds(10))
        }
        try waitUntil("the right-clocked supervisor registered", timeout: .seconds(20)) {
            try behind.store.listProcesses(on: behind.db).filter { $0.kind == .supervisor }.count == 2
        }
        // Three alive_thresholds side by side: nobody is pruned, nobody loses its registration.
        let until = ContinuousClock.now + .seconds(9)
        while ContinuousClock.now < until {
            for process in try behind.store.listProcesses(on: behind.db) {
                #expect(process.heartbeatAge < 3, "\(process.name) looks \(process.heartbeatAge) s old by the database's clock")
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        for log in [behind.log, other.stderrSoFar] {
            #expect(!log.contains("pruned a process"), "a live process was pruned:\n\(log)")
            #expect(!log.contains("registration is gone"))
        }
        #expect(ProcessTable.isAlive(behind.pid) && ProcessTable.isAlive(other.pid))

        // The skewed host dies with a job: the other takes it back within alive_threshold and a pruning pass.
        let id = try behind.store.enqueue(NewJob("drover.test.sleep", arguments: try JSON(encoding: ["ms": 60_000])), on: behind.db)
        try waitUntil("the job runs", timeout: .seconds(20)) { try behind.state(id)?.state == .claimed }
        let holder = try #require(try behind.state(id)?.claimedBy)
        let processes = try behind.store.listProcesses(on: behind.db)
        let holderHost = processes.first { $0.id == holder }?.supervisorID
        let behindID = processes.first { $0.pid == Int(behind.pid) && $0.kind == .supervisor }?.id
        let victim = holderHost == behindID ? behind.pid : other.pid
        for child in ProcessTable.children(of: victim) { kill(child.pid, SIGKILL) }
        kill(victim, SIGKILL)
        let killedAt = ContinuousClock.now
        try waitUntil("the job was taken back", timeout: .seconds(15)) { try behind.state(id)?.claimedBy != holder }
        #expect(ContinuousClock.now - killedAt < .seconds(6), "recovered after \(ContinuousClock.now - killedAt)")
    }

    @Test("a supervisor whose database thread hangs (its PostgreSQL backend frozen) stops feeding systemd's watchdog, and feeds it again once the thread is back")
    func stuckDatabaseThread() throws {
        // A backend to freeze is PostgreSQL's: over a Unix socket no keepalive or timeout of the
        // client's can notice it, which is what systemd's watchdog is for.
        let h = try SupervisorHarness(config: Self.config().replacingOccurrences(of: "$DIR", with: "/tmp"), environment: ["WATCHDOG_USEC": "400000"])
        try h.waitForReady()
        try h.listener.waitFor("WATCHDOG=1") { $0.fields["WATCHDOG"] == "1" }
        let name = try #require(try h.store.listProcesses(on: h.db).first { $0.kind == .supervisor && $0.pid == Int(h.pid) }?.name)
        let backend = try #require(try h.db.query("""
            SELECT pid FROM pg_stat_activity WHERE application_name = \("drover supervisor \(name)")
            """).first?.decode("pid", as: Int32.self))
        kill(backend, SIGSTOP)
        defer { kill(backend, SIGCONT) }
        let frozenAt = Date()
        try waitUntil("the supervisor says its database thread is stuck", timeout: .seconds(10)) {
            h.log.contains("the database thread is stuck")
        }
        // No WATCHDOG=1 after it said so (it sent them every 200 ms until then).
        let saidAt = try #require(Self.loggedTime(of: "the database thread is stuck", in: h.log))
        #expect(saidAt.timeIntervalSince(frozenAt) > 2.5, "it gave up on its database thread before alive_threshold")
        let stoppedFeeding = Date()
        Thread.sleep(forTimeInterval: 1)  // five watchdog intervals with nothing sent
        #expect(!h.listener.messages.contains { $0.fields["WATCHDOG"] == "1" && $0.receivedAt > stoppedFeeding },
                "WATCHDOG=1 kept coming while the database thread was stuck")
        kill(backend, SIGCONT)
        let thawed = Date()
        try h.listener.waitFor("WATCHDOG=1 again", timeout: .seconds(10)) { $0.fields["WATCHDOG"] == "1" && $0.receivedAt > thawed }
        #expect(try h.stop().status == 0)
    }
}
