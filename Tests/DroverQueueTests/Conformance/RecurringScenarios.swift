import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: recurring tasks, on every backend")
struct RecurringScenarios {
    static func task(_ key: String, _ schedule: String = "0 3 * * *", isStatic: Bool = false) -> RecurringTask {
        RecurringTask(key: key, schedule: schedule, className: "Report", arguments: .object(#"{"kind": "\#(key)"}"#), isStatic: isStatic)
    }

    @Test("static tasks follow the configuration: added, updated (a new schedule is dated), removed; run-time tasks stay",
          arguments: Backend.allCases)
    func syncStatic(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.addTask(Self.task("added-at-run-time"))
            try s.syncStaticTasks([Self.task("nightly"), Self.task("hourly", "@hourly")])
            var tasks = try s.tasks()
            #expect(tasks.map(\.key) == ["added-at-run-time", "hourly", "nightly"])
            #expect(tasks.map(\.isStatic) == [false, true, true])
            #expect(tasks.allSatisfy { $0.scheduleChangedAt == clock.now })
            clock.advance(by: 60)
            var nightly = Self.task("nightly")
            nightly.arguments = .object(#"{"kind": "changed"}"#)
            try s.syncStaticTasks([nightly, Self.task("hourly", "*/30 * * * *")])
            tasks = try s.tasks()
            let changed = try #require(tasks.first { $0.key == "nightly" })
            #expect(changed.scheduleChangedAt == clock.now.addingTimeInterval(-60), "arguments change: the schedule's date does not")
            #expect(try changed.arguments.decode([String: String].self) == ["kind": "changed"])
            #expect(try #require(tasks.first { $0.key == "hourly" }).scheduleChangedAt == clock.now, "a schedule change is dated")
            try s.syncStaticTasks([Self.task("nightly")])
            #expect(try s.tasks().map(\.key) == ["added-at-run-time", "nightly"])
            try s.syncStaticTasks([])
            #expect(try s.hasTasks() && s.tasks().map(\.key) == ["added-at-run-time"])
        }
    }

    @Test("run-time tasks are added, replaced and removed; configuration tasks are refused, and unknown ones named",
          arguments: Backend.allCases)
    func runTimeTasks(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncStaticTasks([Self.task("from-config")])
            try s.addTask(Self.task("mine"))
            try s.addTask(Self.task("mine", "@daily"))
            #expect(try s.tasks().first { $0.key == "mine" }?.schedule == "@daily")
            let replace = #expect(throws: QueueError.self) { try s.addTask(Self.task("from-config", "@daily")) }
            #expect(replace?.code == .staticTask)
            #expect(replace?.message == "recurring task from-config is defined in the configuration file: change it there and reload")
            let remove = #expect(throws: QueueError.self) { try s.removeTask("from-config") }
            #expect(remove?.message == "recurring task from-config is defined in the configuration file: remove it there and reload")
            #expect(try s.tasks().contains { $0.key == "from-config" && $0.schedule == "0 3 * * *" })
            let missing = #expect(throws: QueueError.self) { try s.removeTask("nobody") }
            #expect(missing?.code == .taskNotFound && missing?.message == "no recurring task named nobody")
            let badKey = #expect(throws: QueueError.self) { try s.addTask(Self.task("two words")) }
            #expect(badKey?.field == "key")
            try s.removeTask("mine")
            #expect(try s.tasks().map(\.key) == ["from-config"])
        }
    }

    @Test("a run is enqueued once however many schedulers try at once; the listing shows it", arguments: Backend.allCases)
    func runEnqueuedOnce(_ backend: Backend) throws {
        try backend.withStore { s in
            let task = Self.task("nightly")
            try s.syncStaticTasks([task])
            let runAt = Date(timeIntervalSince1970: 1_795_000_000.5)
            let stores = try (0..<8).map { _ in UncheckedBox(try s.connectAgain()) }
            let gate = Gate()
            let work = stores.map { store in
                BackgroundWork { () -> Int? in
                    gate.wait()
                    return try store.value.enqueueRun(of: task, at: runAt)
                }
            }
            gate.open()
            let jobs = try work.compactMap { try $0.value(timeout: .seconds(60)) }
            #expect(try jobs.count == 1 && s.count("jobs") == 1)
            #expect(try s.enqueueRun(of: task, at: runAt) == nil)
            #expect(try s.lastRun(of: "nightly") == runAt)
            let listed = try #require(try s.listTasks().first)
            #expect(listed.lastRunAt == runAt && listed.lastJobID == jobs.first && listed.lastJobState == .ready)
            let job = try #require(try s.job(jobs[0]))
            #expect(job.className == "Report" && job.queue == "default")
        }
    }

    @Test("retention deletes old run records but keeps each task's latest", arguments: Backend.allCases)
    func retention(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncStaticTasks([Self.task("a"), Self.task("b")])
            let tasks = try s.tasks()
            let old = clock.now.addingTimeInterval(-3 * 86_400)
            for hours in 0..<3 { _ = try s.enqueueRun(of: tasks[0], at: old.addingTimeInterval(Double(hours) * 3600)) }
            _ = try s.enqueueRun(of: tasks[1], at: old)
            _ = try s.enqueueRun(of: tasks[1], at: clock.now)
            #expect(try s.clearRecurringRuns(olderThan: .seconds(86_400), batchSize: 1) == 3)
            #expect(try s.lastRun(of: "a") == old.addingTimeInterval(2 * 3600))
            #expect(try s.count("recurring_executions") == 2)
        }
    }
}

@Suite("Store: retention and dispatching, on every backend")
struct RetentionScenarios {
    @Test("finished jobs older than the retention are deleted in batches; newer and live ones stay", arguments: Backend.allCases)
    func clearFinished(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try s.enqueue((0..<10).map { _ in NewJob("W") })
            let claimed = try s.claim(1, ["default"], limit: 8).map(\.id)
            try s.finish(Array(claimed.prefix(5)))
            clock.advance(by: 86_400)
            try s.finish(Array(claimed.suffix(3)))
            clock.advance(by: 1)
            #expect(try s.clearFinished(olderThan: .seconds(86_400), batchSize: 2) == 5)
            #expect(try s.count("jobs") == 5)
            #expect(try s.clearFinished(olderThan: .seconds(86_400), batchSize: 2) == 0)
            #expect(try s.state(ids[9]) == .ready)
        }
    }

    @Test("dispatching moves only due scheduled jobs, earliest first, a batch at a time", arguments: Backend.allCases)
    func dispatchDue(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            _ = try s.enqueue((0..<5).map { _ in NewJob("Later", runAt: clock.now.addingTimeInterval(3600)) })
            let soon = try s.enqueue((0..<3).map { i in NewJob("Soon", runAt: clock.now.addingTimeInterval(60 - Double(i))) })
            #expect(try s.dispatchDue() == 0)
            clock.advance(by: 59)
            #expect(try s.dispatchDue(batchSize: 2) == 2)
            #expect(try s.list(state: .ready).map(\.id).sorted() == [soon[1], soon[2]], "earliest first")
            #expect(try s.dispatchDue(batchSize: 2) == 0, "the last is not due yet")
            clock.advance(by: 1)
            #expect(try s.dispatchDue(batchSize: 2) == 1)
            #expect(try s.list(state: .ready).map(\.id).sorted() == soon)
        }
    }
}
