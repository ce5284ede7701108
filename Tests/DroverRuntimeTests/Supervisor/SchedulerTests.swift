import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Schedulers: recurring runs exactly once across supervisors")
struct SchedulerTests {
    static let config = """
        workers: []
        dispatchers: []
        recurring:
          tick: {class: drover.test.noop, schedule: "* * * * * *", args: {from: config}}
        \(SupervisorHarness.fastSupervisor)
        """

    /// (run time, job id) of every recorded run of `task`, oldest first.
    func runs(_ h: SupervisorHarness, _ task: String = "tick") throws -> [(Date, Int?)] {
        try h.db.query("""
            SELECT run_at, job_id FROM \(h.store.schema.qualifying("recurring_executions")) WHERE task_key = \(task) ORDER BY run_at
            """).map { (try $0.decode("run_at", as: Date.self), try $0.decode("job_id", as: Int?.self)) }
    }

    @Test("three supervisors' schedulers enqueue every run of an every-second task once, with no gap, even when one is killed")
    func threeSchedulers() throws {
        let h = try SupervisorHarness(config: Self.config)
        try h.waitForReady()
        let url = try TestDatabase.url()
        var others: [RunningProcess] = []
        defer {
            for other in others where other.isRunning {
                kill(other.pid, SIGKILL)
                _ = try? other.wait(timeout: .seconds(10))
            }
        }
        for _ in 0..<2 {
            others.append(try DroverBinary.start(
                ["start", "--config", h.configPath, "--database-url", url, "--schema", h.schema],
                environment: ["DROVER_TEST_HANDLERS": "1", "NOTIFY_SOCKET": nil]))
        }
        try waitUntil("three schedulers run", timeout: .seconds(20)) {
            try h.store.listProcesses(on: h.db).filter { $0.kind == .scheduler }.count == 3
        }
        let start = try runs(h).count
        try waitUntil("5 more runs", timeout: .seconds(20)) { try runs(h).count >= start + 5 }
        // One scheduler dies; the two others carry on.
        let victim = try #require(try h.store.listProcesses(on: h.db).first { $0.kind == .scheduler })
        kill(pid_t(victim.pid), SIGKILL)
        let afterKill = try runs(h).count
        try waitUntil("5 runs more after the kill", timeout: .seconds(20)) { try runs(h).count >= afterKill + 5 }
        for other in others {
            kill(other.pid, SIGTERM)
            #expect(try other.wait(timeout: .seconds(30)).status == 0)
        }
        #expect(try h.stop().status == 0)

        let recorded = try runs(h)
        let jobs = try h.store.listJobs(limit: 10_000, on: h.db)
        #expect(recorded.count >= 10)
        #expect(jobs.count == recorded.count, "one job per run, no more")
        #expect(Set(recorded.compactMap(\.1)) == Set(jobs.map(\.id)))
        // Every second from the first run to the last, once.
        let times = recorded.map(\.0.timeIntervalSince1970)
        #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 == 1 }, "\(times)")
        #expect(jobs.allSatisfy { $0.className == "drover.test.noop" })
        // The schedulers logged what they enqueued (whichever won each run: any one may win none).
        #expect(([h.log] + others.map(\.stderrSoFar)).contains { $0.contains("msg=\"enqueued a recurring run\" task=tick") })
    }

    @Test("a reload applies the file's recurring tasks: a changed schedule from then on, a removed task gone")
    func reload() throws {
        let h = try SupervisorHarness(config: """
            workers: []
            dispatchers: []
            recurring:
              tick: {class: drover.test.noop, schedule: "* * * * * *"}
              nightly: {class: drover.test.noop, schedule: "0 3 * * *", time_zone: Europe/Berlin}
            \(SupervisorHarness.fastSupervisor)
            """)
        try h.waitForReady()
        try waitUntil("tick runs") { try runs(h).count >= 2 }
        try h.rewriteConfig("""
            workers: []
            dispatchers: []
            recurring:
              tick: {class: drover.test.noop, schedule: "*/2 * * * * *"}
            \(SupervisorHarness.fastSupervisor)
            """)
        kill(h.pid, SIGHUP)
        try h.waitForReady(after: 1)
        try waitUntil("the file's tasks are in the database") {
            try h.store.tasks(on: h.db).map(\.key) == ["tick"] && h.store.tasks(on: h.db)[0].schedule == "*/2 * * * * *"
        }
        let changedAt = try h.store.tasks(on: h.db)[0].scheduleChangedAt
        let before = try runs(h).count
        try waitUntil("4 runs on the new schedule", timeout: .seconds(20)) { try runs(h).count >= before + 4 }
        #expect(try h.stop().status == 0)
        let after = try runs(h).map(\.0).filter { $0 > changedAt }
        #expect(after.allSatisfy { Int($0.timeIntervalSince1970) % 2 == 0 }, "runs after the change follow */2: \(after)")
        let times = try runs(h).map(\.0)
        #expect(Set(times).count == times.count)
    }

    @Test("a supervisor without recurring tasks starts no scheduler until a task is added at run time")
    func schedulerOnDemand() throws {
        let h = try SupervisorHarness(config: SupervisorHarness.oneWorker)
        try h.waitForReady()
        #expect(try h.store.listProcesses(on: h.db).allSatisfy { $0.kind != .scheduler })
        let added = try DroverBinary.run([
            "recurring", "add", "ping", "--class", "drover.test.noop", "--schedule", "every 1s",
            "--database-url", try TestDatabase.url(), "--schema", h.schema,
        ])
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout.hasPrefix("Recurring task ping runs drover.test.noop on \"every 1s\" (UTC); next run "))
        try waitUntil("a scheduler started and the task ran", timeout: .seconds(20)) { try runs(h, "ping").count >= 1 }
        try waitUntil("its job finished") {
            try h.store.listJobs(state: .finished, className: "drover.test.noop", on: h.db).count >= 1
        }
        #expect(try h.stop().status == 0)
    }
}
