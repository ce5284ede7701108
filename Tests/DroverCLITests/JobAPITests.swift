import Drover
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Typed jobs of the `Drover` library, enqueued through `Connection.enqueue` (and `SQLiteConnection.enqueue`).
@Suite("The Swift Job API: enqueueing typed jobs")
struct JobAPITests {
    struct Resize: Job {
        static let queue = "images"
        static let priority = -3
        static let maxAttempts = 7
        static let timeout: Duration? = .seconds(90)
        var path: String
        var widths: [Int]
        func perform(_ context: JobContext) async throws {}
    }

    struct Daily: Job {
        var day: String
        var uniqueKey: String? { "daily:\(day)" }
        func perform(_ context: JobContext) async throws {}
    }

    struct Plain: Job {
        var note: String?
        func perform(_ context: JobContext) async throws {}
    }

    @Test("a typed job is stored under its class name, with its type's defaults and its properties as arguments")
    func defaultsFromTheType() throws {
        try TestDatabase.withSchema { schema, db in
            let id = try db.enqueue(Resize(path: "/img/ä b.png", widths: [64, 128]), schema: schema)
            let job = try #require(try PostgresJobStore(schema: schema).job(id, on: db))
            #expect(job.className == "Resize" && job.queue == "images" && job.priority == -3 && job.maxAttempts == 7)
            #expect(try job.arguments?.decode(Resize.self).widths == [64, 128])
            let timeout = try db.query("SELECT extract(epoch FROM timeout)::float8 AS t FROM \(SQLIdentifier(schema, "jobs")) WHERE id = \(id)")
            #expect(try timeout[0].decode("t", as: Double?.self) == 90)
            let plain = try db.enqueue(Plain(note: nil), queue: "other", priority: 4, runIn: .seconds(60), maxAttempts: 2, schema: schema)
            let other = try #require(try PostgresJobStore(schema: schema).job(plain, on: db))
            #expect(other.className == "Plain" && other.queue == "other" && other.priority == 4 && other.maxAttempts == 2)
            #expect(other.state == .scheduled)
        }
    }

    @Test("inside the caller's transaction a typed job commits or rolls back with it")
    func followsTheTransaction() throws {
        try TestDatabase.withSchema { schema, db in
            struct Abort: Error {}
            try db.withTransaction { tx in _ = try tx.enqueue(Plain(note: "kept"), schema: schema) }
            #expect(throws: Abort.self) {
                try db.withTransaction { tx in
                    _ = try tx.enqueue([Plain(note: "a"), Plain(note: "b")], schema: schema)
                    throw Abort()
                }
            }
            let jobs = try PostgresJobStore(schema: schema).listJobs(on: db)
            #expect(jobs.count == 1)
            let first = try #require(jobs.first)
            let kept = try #require(try PostgresJobStore(schema: schema).job(first.id, on: db))
            #expect(try kept.arguments?.decode(Plain.self).note == "kept")
        }
    }

    @Test("on a SQLite file: typed jobs follow the caller's transaction, unique keys hold, recurring tasks are added and removed")
    func sqlite() throws {
        let directory = try TemporaryDirectory("drover-job-api")
        let (_, db) = try SQLiteDriver.open(
            url: "sqlite://" + directory.url.appendingPathComponent("app.sqlite3").path, options: StoreOptions())
        struct Abort: Error {}
        let id = try db.withTransaction { tx in try tx.enqueue(Resize(path: "/a.png", widths: [32])) }
        #expect(throws: Abort.self) {
            try db.withTransaction { tx in
                _ = try tx.enqueue(Plain(note: "rolled back"))
                throw Abort()
            }
        }
        let store = try SQLiteJobStore()
        let jobs = try store.listJobs(queue: nil, state: nil, className: nil, limit: 10, on: db)
        #expect(jobs.map(\.id) == [id] && jobs[0].queue == "images" && jobs[0].priority == -3 && jobs[0].state == .ready)
        let daily = try db.enqueue(Daily(day: "2026-11-27"))
        #expect(try db.enqueue(Daily(day: "2026-11-27")) == daily)
        try db.addRecurringTask("nightly", schedule: "0 3 * * *", job: Plain(note: "n"))
        #expect(try store.tasks(on: db).map(\.key) == ["nightly"])
        try db.removeRecurringTask("nightly")
        #expect(try store.tasks(on: db).isEmpty)
    }

    @Test("a job type's unique key makes a second enqueue return the live job")
    func uniqueKey() throws {
        try TestDatabase.withSchema { schema, db in
            let first = try db.enqueue(Daily(day: "2026-11-27"), schema: schema)
            #expect(try db.enqueue(Daily(day: "2026-11-27"), schema: schema) == first)
            #expect(try db.enqueue(Daily(day: "2026-11-28"), schema: schema) != first)
        }
    }

    @Test("recurring tasks of a job type are added and removed at run time; a bad schedule is refused")
    func recurringTasks() throws {
        try TestDatabase.withSchema { schema, db in
            try db.addRecurringTask("daily-report", schedule: "0 7 * * *", timeZone: "Europe/Berlin", job: Daily(day: "any"),
                                    catchUp: true, schema: schema)
            let task = try #require(try PostgresJobStore(schema: schema).tasks(on: db).first)
            #expect(task.className == "Daily" && task.timeZone == "Europe/Berlin" && task.catchUp && !task.isStatic)
            #expect(task.arguments.text == #"{"day": "any"}"#)
            let error = #expect(throws: ScheduleError.self) {
                try db.addRecurringTask("bad", schedule: "every never", job: Plain(), schema: schema)
            }
            #expect(error?.description.hasPrefix("schedule \"every never\"") == true)
            let never = #expect(throws: ScheduleError.self) {
                try db.addRecurringTask("never", schedule: "0 0 30 2 *", job: Plain(), schema: schema)
            }
            #expect(never?.description == "schedule \"0 0 30 2 *\" can never run: February has no day 30")
            try db.removeRecurringTask("daily-report", schema: schema)
            #expect(try PostgresJobStore(schema: schema).tasks(on: db).isEmpty)
        }
    }

    @Test("a bad option is refused before anything is sent, naming the field")
    func badOptions() throws {
        try TestDatabase.withSchema { schema, db in
            let error = #expect(throws: QueueError.self) { try db.enqueue(Plain(), queue: "bad queue", schema: schema) }
            #expect(error?.field == "queue")
            let timeout = #expect(throws: QueueError.self) { try db.enqueue(Plain(), timeout: .milliseconds(10), schema: schema) }
            #expect(timeout?.field == "timeout")
        }
    }
}
