import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Managing jobs and queues")
struct ManagementTests {
    /// One job in each state: returns their ids by state.
    private func oneOfEach(_ store: PostgresJobStore, _ db: Connection) throws -> [JobState: Int] {
        let ids = try store.enqueue([
            NewJob("Sched", queue: "a", runAt: Date().addingTimeInterval(3600)),
            NewJob("Ready", queue: "a"),
            NewJob("Claimed", queue: "b"),
            NewJob("Failed", queue: "b", maxAttempts: 1),
            NewJob("Finished", queue: "c"),
        ], on: db)
        _ = try store.claim(processID: 7, queues: ["b", "c"], limit: 3, on: db)
        _ = try store.fail(ids[3], processID: 7, error: JobFailure(errorClass: "E", message: "broke"), on: db)
        try store.finish([ids[4]], processID: 7, on: db)
        let blocked = try store.enqueue(NewJob("Blocked", queue: "a"), on: db)
        try db.execute("DELETE FROM \(store.schema.qualifying("ready_executions")) WHERE job_id = \(blocked)")
        try db.execute("""
            INSERT INTO \(store.schema.qualifying("blocked_executions")) (job_id, queue_name, concurrency_key, expires_at)
            VALUES (\(blocked), 'a', 'k', now() + interval '5 minutes')
            """)
        return [.scheduled: ids[0], .ready: ids[1], .claimed: ids[2], .failed: ids[3], .finished: ids[4], .blocked: blocked]
    }

    @Test("jobs list shows each job's state and filters by queue, state, class and limit")
    func listJobs() throws {
        try withStore { store, db throws in
            let ids = try oneOfEach(store, db)
            let all = try store.listJobs(on: db)
            #expect(all.map(\.id) == ids.values.sorted(by: >), "newest first")
            for job in all { #expect(ids[job.state] == job.id, "\(job.className) is \(job.state)") }
            for state in JobState.allCases {
                #expect(try store.listJobs(state: state, on: db).map(\.id) == [ids[state]!], "\(state)")
            }
            #expect(try store.listJobs(queue: "a", on: db).count == 3)
            #expect(try store.listJobs(className: "Claimed", on: db).map(\.claimedBy) == [7])
            #expect(try store.listJobs(limit: 2, on: db).count == 2)
            #expect(try store.listJobs(queue: "b", state: .failed, on: db).first?.lastError?.message == "broke")
            #expect(try store.listJobs(state: .scheduled, on: db).first?.nextRunAt != nil)
            #expect(try store.listJobs(on: db).allSatisfy { $0.arguments == nil }, "listings leave arguments out")
            #expect(try store.job(ids[.ready]!, on: db)?.arguments == JSON.emptyObject)
            #expect(try store.job(999_999, on: db) == nil)
        }
    }

    @Test("failed jobs can be retried with fresh attempts; anything else is a clear error that changes nothing")
    func retryFailed() throws {
        try withStore { store, db throws in
            let ids = try oneOfEach(store, db)
            let notFailed = #expect(throws: QueueError.self) { try store.retryFailed([ids[.failed]!, ids[.claimed]!], on: db) }
            #expect(notFailed?.code == .wrongState)
            #expect(notFailed?.jobIDs == [ids[.claimed]!])
            #expect(notFailed?.message.contains("job \(ids[.claimed]!) is claimed") == true)
            #expect(try state(store, ids[.failed]!, db) == .failed, "nothing changed")
            let missing = #expect(throws: QueueError.self) { try store.retryFailed([ids[.failed]!, 424242], on: db) }
            #expect(missing?.code == .jobNotFound && missing?.jobIDs == [424242])

            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            #expect(try store.retryFailed([ids[.failed]!], on: db) == [ids[.failed]!])
            #expect(try listener.waitForNotifications(timeout: .seconds(10)).map(\.payload) == ["b"], "workers are woken")
            let info = try #require(try store.job(ids[.failed]!, on: db))
            #expect(info.state == .ready && info.attempts == 0 && info.failedAt == nil && info.lastError?.message == "broke")
            try expectInvariant(store, db)
        }
    }

    @Test("retry --all and discard --all work through every failed job in batches")
    func allFailed() throws {
        try withStore { store, db throws in
            let ids = try store.enqueue((0..<7).map { _ in NewJob("F", maxAttempts: 1) }, on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 7, on: db)
            for id in ids { _ = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "x"), on: db) }
            #expect(try store.retryAllFailed(batchSize: 3, on: db) == 7)
            #expect(try count(store, "ready_executions", db) == 7)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 7, on: db)
            for id in ids { _ = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "x"), on: db) }
            #expect(try store.discardAllFailed(batchSize: 3, on: db) == 7)
            #expect(try count(store, "jobs", db) == 0)
        }
    }

    @Test("only failed jobs can be discarded; discarding deletes the job")
    func discardFailed() throws {
        try withStore { store, db throws in
            let ids = try oneOfEach(store, db)
            let claimed = #expect(throws: QueueError.self) { try store.discardFailed([ids[.claimed]!], on: db) }
            #expect(claimed?.code == .wrongState)
            #expect(claimed?.message.contains("only failed jobs can be discarded: job \(ids[.claimed]!) is claimed") == true)
            #expect(try store.discardFailed([ids[.failed]!], on: db) == [ids[.failed]!])
            #expect(try store.job(ids[.failed]!, on: db) == nil)
            #expect(try count(store, "failed_executions", db) == 0)
            try expectInvariant(store, db)
        }
    }

    @Test("queues list counts each state per queue, the oldest ready job's age, and pauses")
    func listQueues() throws {
        try withStore { store, db throws in
            _ = try oneOfEach(store, db)
            try store.pause("idle", on: db)
            try db.execute("UPDATE \(store.schema.qualifying("ready_executions")) SET created_at = now() - interval '90 seconds'")
            let queues = try store.listQueues(on: db)
            #expect(queues.map(\.name) == ["a", "b", "idle"])
            let a = queues[0], b = queues[1], idle = queues[2]
            #expect(a.ready == 1 && a.scheduled == 1 && a.blocked == 1 && a.claimed == 0 && a.failed == 0 && !a.paused)
            #expect((89...120).contains(a.oldestReadyAge ?? 0))
            #expect(b.claimed == 1 && b.failed == 1 && b.ready == 0 && b.oldestReadyAge == nil)
            #expect(idle.paused && idle.ready == 0)
        }
    }

    @Test("clearing a queue deletes its ready and scheduled jobs, not its running or failed ones")
    func clearQueue() throws {
        try withStore { store, db throws in
            let ids = try oneOfEach(store, db)
            try store.enqueue((0..<5).map { _ in NewJob("More", queue: "b") }, on: db)
            let cleared = try store.clear("b", batchSize: 2, on: db)
            #expect(cleared.ready == 5 && cleared.scheduled == 0)
            #expect(try state(store, ids[.claimed]!, db) == .claimed)
            #expect(try state(store, ids[.failed]!, db) == .failed)
            let a = try store.clear("a", on: db)
            #expect(a.ready == 1 && a.scheduled == 1)
            #expect(throws: QueueError.self) { try store.clear("not a queue", on: db) }
            try expectInvariant(store, db)
        }
    }
}
