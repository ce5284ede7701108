import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Moving live jobs from SQLite to PostgreSQL")
struct MoveToPostgresTests {
    @Test("a file with jobs waiting for others, or a batch not complete, is refused with what to do, and nothing is moved")
    func workflowsAreRefused() throws {
        let directory = try TemporaryDirectory("drover-move-flow")
        let (source, sqlite) = try SQLiteDriver.open(
            url: "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path, options: StoreOptions())
        let first = try source.enqueue(NewJob("A"), on: sqlite)
        let waiting = try source.enqueue(NewJob("B", after: [first]), on: sqlite)
        _ = try source.enqueueBatch(NewBatch(onComplete: "C"), jobs: [NewJob("D")], on: sqlite)
        try TestDatabase.withSchema { schema, db in
            let destination = try PostgresJobStore(schema: schema)
            #expect {
                try MoveToPostgres(from: source, to: destination).run(from: sqlite, to: db)
            } throws: { error in
                let message = (error as? QueueError)?.message ?? ""
                return message.contains("1 job waiting for other jobs and 1 batch not complete") && message.contains("nothing was moved")
            }
            #expect(try destination.listJobs(limit: 10, on: db).isEmpty)
            #expect(try source.job(waiting, on: sqlite)?.state == .waiting, "the SQLite file is as it was")
        }
    }

    @Test("every job that is not finished arrives in its state (a claimed one as ready) with its history, and leaves SQLite")
    func moveLiveJobs() throws {
        let directory = try TemporaryDirectory("drover-move")
        let (source, sqlite) = try SQLiteDriver.open(
            url: "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path, options: StoreOptions())
        let arguments = try JSON(validating: #"{"to": "ada@example.com", "n": [1, 2]}"#)
        let ids = try source.enqueue([
            NewJob("Ready", arguments: arguments, queue: "mail", priority: -2),
            NewJob("Later", runIn: .seconds(3600)),
            NewJob("Running", timeout: .seconds(90), uniqueKey: "once", traceContext: ["traceparent": "00-abc-def-01"]),
            NewJob("Broken"),
            NewJob("Done"),
        ], on: sqlite)
        let claimed = try source.claim(processID: 1, queues: ["default"], limit: 3, on: sqlite).map(\.id)
        #expect(claimed == [ids[2], ids[3], ids[4]])
        _ = try source.fail(ids[3], processID: 1, error: JobFailure(errorClass: "E", message: "boom", exitStatus: 3), permanent: true,
                            maxAttempts: nil, on: sqlite)
        _ = try source.finish([ids[4]], processID: 1, on: sqlite)

        try TestDatabase.withSchema { schema, db in
            let destination = try PostgresJobStore(schema: schema)
            let report = try MoveToPostgres(from: source, to: destination).run(from: sqlite, to: db)
            #expect(report.moved == [.ready: 2, .scheduled: 1, .failed: 1] && report.total == 4)
            let moved = try destination.listJobs(limit: 10, on: db)
            #expect(Set(moved.map(\.className)) == ["Ready", "Later", "Running", "Broken"])
            func find(_ name: String) throws -> JobInfo {
                let listed = try #require(moved.first { $0.className == name })
                return try #require(try destination.job(listed.id, on: db))
            }
            let ready = try find("Ready")
            #expect(ready.state == .ready && ready.queue == "mail" && ready.priority == -2)
            struct Arguments: Decodable, Equatable { let to: String; let n: [Int] }
            #expect(try ready.arguments?.decode(Arguments.self) == Arguments(to: "ada@example.com", n: [1, 2]))
            #expect(try find("Later").state == .scheduled)
            #expect(try find("Later").nextRunAt.map { $0.timeIntervalSinceNow > 3500 } == true)
            #expect(try find("Running").state == .ready, "its process is gone: it runs again")
            let broken = try find("Broken")
            #expect(broken.state == .failed && broken.attempts == 1 && broken.lastError?.exitStatus == 3)
            // The unique key, the timeout and the trace context came along.
            #expect(try destination.enqueue(NewJob("Running", uniqueKey: "once"), on: db) == find("Running").id)
            let claimedThere = try destination.claim(processID: 9, queues: ["default"], limit: 5, on: db)
            let running = claimedThere.first { $0.className == "Running" }
            #expect(running?.timeout == .seconds(90) && running?.traceContext == ["traceparent": "00-abc-def-01"])
        }
        // Only the finished job stays in SQLite.
        #expect(try source.listJobs(limit: 10, on: sqlite).map(\.className) == ["Done"])
    }
}
