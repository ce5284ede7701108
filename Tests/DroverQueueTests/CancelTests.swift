import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Cancelling jobs")
struct CancelTests {
    @Test("a ready, scheduled or blocked job is deleted at once")
    func waitingJobsAreDeleted() throws {
        try withStore { store, db throws in
            let ready = try store.enqueue(NewJob("Work"), on: db)
            let scheduled = try store.enqueue(NewJob("Work", runIn: .seconds(3600)), on: db)
            #expect(try store.cancel(ready, on: db) == .discarded(was: .ready))
            #expect(try store.cancel(scheduled, on: db) == .discarded(was: .scheduled))
            // Blocked jobs come with concurrency limits; the row is enough to show the state.
            let blocked = try store.enqueue(NewJob("Work"), on: db)
            try db.execute("DELETE FROM \(store.schema.qualifying("ready_executions")) WHERE job_id = \(blocked)")
            try db.execute("""
                INSERT INTO \(store.schema.qualifying("blocked_executions")) (job_id, queue_name, concurrency_key, expires_at)
                VALUES (\(blocked), 'default', 'k', now() + interval '1 minute')
                """)
            #expect(try store.cancel(blocked, on: db) == .discarded(was: .blocked))
            #expect(try count(store, "jobs", db) == 0)
        }
    }

    @Test("a running job is marked on its claim and its worker is notified; it fails as cancelled, not retried")
    func runningJobIsRequested() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            let id = try store.enqueue(NewJob("Work", maxAttempts: 5), on: db)
            _ = try listener.waitForNotifications(timeout: .milliseconds(200))
            _ = try store.claim(processID: 7, queues: ["*"], limit: 1, on: db)
            #expect(try store.cancelRequests(processID: 7, on: db).isEmpty)
            #expect(try store.cancel(id, on: db) == .requested(processID: 7))
            #expect(try store.cancelRequests(processID: 7, on: db) == [id])
            let payloads = try listener.waitForNotifications(timeout: .seconds(2)).map(\.payload)
            #expect(payloads == ["cancel 7"])
            #expect(PostgresDriver.cancelledProcess(inNotification: "cancel 7") == 7)
            #expect(PostgresDriver.cancelledProcess(inNotification: "default") == nil)
            // Asking twice changes nothing.
            #expect(try store.cancel(id, on: db) == .requested(processID: 7))
            try expectInvariant(store, db)
        }
    }

    @Test("a cancelled job whose worker stops or dies before stopping it fails as cancelled instead of running again")
    func releaseHonoursCancellation() throws {
        try withStore { store, db throws in
            let graceful = try store.enqueue(NewJob("Work"), on: db)
            let crashed = try store.enqueue(NewJob("Work"), on: db)
            let other = try store.enqueue(NewJob("Work"), on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            _ = try store.claim(processID: 2, queues: ["*"], limit: 2, on: db)
            _ = try store.cancel(graceful, on: db)
            _ = try store.cancel(crashed, on: db)
            let first = try store.release(processID: 1, reason: .graceful, on: db)
            #expect(first.failed == [graceful] && first.released.isEmpty)
            let failure = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            let second = try store.release(processID: 2, reason: .crashed(failure, maxCrashes: 3), on: db)
            #expect(second.failed == [crashed] && second.released == [other])
            for id in [graceful, crashed] {
                let job = try #require(try store.job(id, on: db))
                #expect(job.state == .failed)
                #expect(job.lastError?.errorClass == "Cancelled")
            }
            #expect(try state(store, other, db) == .ready)
            try expectInvariant(store, db)
        }
    }

    @Test("finished, failed and unknown jobs cannot be cancelled, and say why")
    func nothingToCancel() throws {
        try withStore { store, db throws in
            let id = try store.enqueue(NewJob("Work"), on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            _ = try store.finish([id], processID: 1, on: db)
            let finished = #expect(throws: QueueError.self) { try store.cancel(id, on: db) }
            #expect(finished?.code == .wrongState)
            #expect(finished?.message == "job \(id) is finished: only waiting or running jobs can be cancelled")
            let missing = #expect(throws: QueueError.self) { try store.cancel(999_999, on: db) }
            #expect(missing?.code == .jobNotFound)
        }
    }

    @Test("a handler's max_attempts replaces the job's when an attempt fails")
    func maxAttemptsOverride() throws {
        try withStore { store, db throws in
            let id = try store.enqueue(NewJob("Work", maxAttempts: 5), on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            let outcome = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "m"), maxAttempts: 1, on: db)
            #expect(outcome == .failed(attempts: 1))
            #expect(try store.job(id, on: db)?.maxAttempts == 1)
        }
    }
}
