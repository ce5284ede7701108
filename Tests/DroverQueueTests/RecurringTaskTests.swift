import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Recurring tasks in the database")
struct RecurringTaskTests {
    static func task(_ key: String, _ schedule: String = "0 3 * * *", isStatic: Bool = false) -> RecurringTask {
        RecurringTask(key: key, schedule: schedule, className: "Report", arguments: try! JSON(validating: #"{"kind": "\#(key)"}"#),
                      isStatic: isStatic)
    }

    @Test("static tasks follow the configuration: added, updated (a new schedule is dated), removed; run-time tasks stay")
    func syncStatic() throws {
        try withStore { store, db throws in
            try store.addTask(Self.task("added-at-run-time"), on: db)
            try store.syncStaticTasks([Self.task("nightly"), Self.task("hourly", "@hourly")], on: db)
            var tasks = try store.tasks(on: db)
            #expect(tasks.map(\.key) == ["added-at-run-time", "hourly", "nightly"])
            #expect(tasks.map(\.isStatic) == [false, true, true])
            let before = try #require(tasks.first { $0.key == "nightly" }).scheduleChangedAt

            // Arguments change: the schedule's date does not. Schedule changes: it does.
            var nightly = Self.task("nightly")
            nightly.arguments = try JSON(validating: #"{"kind": "changed"}"#)
            try store.syncStaticTasks([nightly, Self.task("hourly", "*/30 * * * *")], on: db)
            tasks = try store.tasks(on: db)
            #expect(try #require(tasks.first { $0.key == "nightly" }).scheduleChangedAt == before)
            #expect(try #require(tasks.first { $0.key == "nightly" }).arguments.text == #"{"kind": "changed"}"#)
            #expect(try #require(tasks.first { $0.key == "hourly" }).scheduleChangedAt > before)

            try store.syncStaticTasks([Self.task("nightly")], on: db)
            #expect(try store.tasks(on: db).map(\.key) == ["added-at-run-time", "nightly"])
        }
    }

    @Test("run-time tasks are added, replaced and removed; configuration tasks are refused, and unknown ones named")
    func runTimeTasks() throws {
        try withStore { store, db throws in
            try store.syncStaticTasks([Self.task("from-config")], on: db)
            try store.addTask(Self.task("mine"), on: db)
            try store.addTask(Self.task("mine", "@daily"), on: db)
            #expect(try store.tasks(on: db).first { $0.key == "mine" }?.schedule == "@daily")
            let replace = #expect(throws: QueueError.self) { try store.addTask(Self.task("from-config", "@daily"), on: db) }
            #expect(replace?.code == .staticTask)
            let remove = #expect(throws: QueueError.self) { try store.removeTask("from-config", on: db) }
            #expect(remove?.code == .staticTask)
            #expect(remove?.message == "recurring task from-config is defined in the configuration file: remove it there and reload")
            #expect(try store.tasks(on: db).contains { $0.key == "from-config" && $0.schedule == "0 3 * * *" })
            let missing = #expect(throws: QueueError.self) { try store.removeTask("nobody", on: db) }
            #expect(missing?.code == .taskNotFound)
            let badKey = #expect(throws: QueueError.self) { try store.addTask(Self.task("two words"), on: db) }
            #expect(badKey?.field == "key")
            try store.removeTask("mine", on: db)
            #expect(try store.tasks(on: db).map(\.key) == ["from-config"])
        }
    }

    @Test("a run is enqueued once however many schedulers try at the same moment; the listing shows it")
    func runEnqueuedOnce() throws {
        try withStore { store, db throws in
            let task = Self.task("nightly")
            try store.syncStaticTasks([task], on: db)
            let runAt = Date(timeIntervalSince1970: 1_795_000_000)
            let results = try raceOnConnections(10) { connection in
                try store.enqueueRun(of: task, at: runAt, on: connection)
            }.map { (try? $0.get()) ?? nil }
            let jobs = results.compactMap { $0 }
            #expect(jobs.count == 1, "\(results)")
            #expect(try count(store, "jobs", db) == 1)
            #expect(try store.enqueueRun(of: task, at: runAt, on: db) == nil)
            #expect(try store.lastRun(of: "nightly", on: db) == runAt)
            let listed = try #require(try store.listTasks(on: db).first)
            #expect(listed.lastRunAt == runAt && listed.lastJobID == jobs.first && listed.lastJobState == .ready)
            let job = try #require(try store.job(jobs[0], on: db))
            #expect(job.className == "Report" && job.arguments?.text == #"{"kind": "nightly"}"#)
        }
    }

    @Test("retention deletes old run records but keeps each task's latest")
    func retention() throws {
        try withStore { store, db throws in
            try store.syncStaticTasks([Self.task("a"), Self.task("b")], on: db)
            let tasks = try store.tasks(on: db)
            let old = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 3 * 86_400).rounded())
            for hours in 0..<3 {
                _ = try store.enqueueRun(of: tasks[0], at: old.addingTimeInterval(Double(hours) * 3600), on: db)
            }
            _ = try store.enqueueRun(of: tasks[1], at: old, on: db)
            _ = try store.enqueueRun(of: tasks[1], at: Date(), on: db)
            #expect(try store.clearRecurringRuns(olderThan: .seconds(86_400), on: db) == 3)
            #expect(try store.lastRun(of: "a", on: db) == old.addingTimeInterval(2 * 3600))
            #expect(try count(store, "recurring_executions", db) == 2)
        }
    }
}
