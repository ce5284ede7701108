import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Finishing and failing, exactly once")
struct FinalizeTests {
    @Test("finish moves claimed jobs to finished in one round trip; a late or foreign finish is dropped")
    func finish() throws {
        try withStore { store, db throws in
            let ids = try store.enqueue((0..<5).map { _ in NewJob("Work") }, on: db)
            let claimed = try store.claim(processID: 1, queues: ["default"], limit: 4, on: db).map(\.id)
            let outcome = try store.finish(claimed + [ids[4]], processID: 1, on: db)
            #expect(outcome.finished == claimed.sorted())
            #expect(outcome.dropped == [ids[4]], "a job this process never claimed is not finished")
            #expect(try state(store, ids[0], db) == .finished)
            #expect(try store.job(ids[0], on: db)?.finishedAt != nil)
            #expect(try state(store, ids[4], db) == .ready)
            let again = try store.finish(claimed, processID: 1, on: db)
            #expect(again.finished.isEmpty && again.dropped == claimed, "finishing twice does nothing the second time")
            let other = try store.claim(processID: 2, queues: ["default"], limit: 1, on: db).map(\.id)
            #expect(try store.finish(other, processID: 1, on: db).dropped == other, "another process's claim is not ours to finish")
            try expectInvariant(store, db)
        }
    }

    @Test("with preserve_finished_jobs false, finishing deletes the job")
    func finishDeletes() throws {
        try withStore(preserveFinishedJobs: false) { store, db throws in
            try store.enqueue(NewJob("Work"), on: db)
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db).map(\.id)
            #expect(try store.finish(claimed, processID: 1, on: db).finished == claimed)
            #expect(try count(store, "jobs", db) == 0)
        }
    }

    @Test("a failed attempt is retried after a backoff within its bounds, as the same job row, until attempts run out")
    func retriesThenFails() throws {
        let policy = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0.5)
        try withStore(retryPolicy: policy) { store, db throws in
            let id = try store.enqueue(NewJob("Flaky", maxAttempts: 3), on: db)
            let error = JobFailure(errorClass: "CommandFailed", message: "exit 1", exitStatus: 1, output: "boom")
            for attempt in 1...3 {
                let job = try #require(try store.claim(processID: 1, queues: ["default"], limit: 1, on: db).first)
                #expect(job.id == id && job.attempt == attempt)
                let outcome = try store.fail(id, processID: 1, error: error, on: db)
                try expectInvariant(store, db)
                let info = try #require(try store.job(id, on: db))
                #expect(info.attempts == attempt)
                #expect(info.lastError == error)
                if attempt < 3 {
                    guard case .retryScheduled(let at, let attempts) = outcome else {
                        Issue.record("attempt \(attempt): expected a retry, got \(outcome)")
                        return
                    }
                    #expect(attempts == attempt && info.state == .scheduled && info.nextRunAt == at)
                    // The delay, measured against the database's own clock at the failure.
                    let delay = try db.query("""
                        SELECT extract(epoch FROM s.scheduled_at - j.updated_at)::float8 AS d
                        FROM \(store.schema.qualifying("scheduled_executions")) s JOIN \(store.schema.qualifying("jobs")) j ON j.id = s.job_id
                        """)[0].decode("d", as: Double.self)
                    #expect(policy.delayBounds(afterFailedAttempts: attempt).contains(delay), "attempt \(attempt): \(delay) s")
                    // Make it due now and let the dispatcher's operation move it back to ready.
                    try db.execute("UPDATE \(store.schema.qualifying("scheduled_executions")) SET scheduled_at = now()")
                    #expect(try store.dispatchDue(on: db) == 1)
                } else {
                    #expect(outcome == .failed(attempts: 3))
                    #expect(info.state == .failed && info.failedAt != nil)
                    let stored = try db.query("SELECT error FROM \(store.schema.qualifying("failed_executions"))")[0]
                        .decode("error", as: JSON.self).decode(JobFailure.self)
                    #expect(stored == error)
                }
            }
        }
    }

    @Test("a permanent failure goes to failed at once; a late failure is dropped")
    func permanentAndLate() throws {
        try withStore { store, db throws in
            let ids = try store.enqueue([NewJob("A"), NewJob("B")], on: db)
            _ = try store.claim(processID: 1, queues: ["default"], limit: 2, on: db)
            let failure = JobFailure(errorClass: "CommandFailed", message: "exit 100: permanent", exitStatus: 100)
            #expect(try store.fail(ids[0], processID: 1, error: failure, permanent: true, on: db) == .failed(attempts: 1))
            try store.release(processID: 1, reason: .graceful, on: db)
            #expect(try store.fail(ids[1], processID: 1, error: failure, on: db) == .dropped)
            let info = try #require(try store.job(ids[1], on: db))
            #expect(info.state == .ready && info.attempts == 0 && info.lastError == nil)
            try expectInvariant(store, db)
        }
    }

    @Test("a finish racing a release: the job ends finished or ready, never both, never lost")
    func finishRacesRelease() throws {
        try withStore { store, db throws in
            var finishedWins = 0
            var releaseWins = 0
            let finisher = try TestDatabase.connect()
            let releaser = try TestDatabase.connect()
            for _ in 0..<100 {
                let id = try store.enqueue(NewJob("Race"), on: db)
                _ = try store.claim(processID: 9, queues: ["default"], limit: 1, on: db)
                let gate = Gate()
                let finish = BackgroundWork { [finisher = UncheckedBox(finisher)] () -> FinishOutcome in
                    gate.wait()
                    return try store.finish([id], processID: 9, on: finisher.value)
                }
                let release = BackgroundWork { [releaser = UncheckedBox(releaser)] () -> ReleaseOutcome in
                    gate.wait()
                    return try store.release(processID: 9, reason: .graceful, on: releaser.value)
                }
                gate.open()
                let finished = try finish.value().finished == [id]
                let released = try release.value().released == [id]
                #expect(finished != released, "exactly one of them acted on job \(id)")
                #expect(try state(store, id, db) == (finished ? .finished : .ready))
                if finished { finishedWins += 1 } else { releaseWins += 1 }
                if !finished {
                    // Clean up so the next round's claim takes the new job.
                    _ = try store.claim(processID: 10, queues: ["default"], limit: 1, on: db)
                    try store.finish([id], processID: 10, on: db)
                }
            }
            #expect(finishedWins + releaseWins == 100)
            try expectInvariant(store, db)
        }
    }

    @Test("the backoff doubles from its base up to its cap, less at most the jitter")
    func backoffBounds() {
        let policy = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0.25)
        #expect(policy.delayBounds(afterFailedAttempts: 1) == 3.75...5)
        #expect(policy.delayBounds(afterFailedAttempts: 2) == 7.5...10)
        #expect(policy.delayBounds(afterFailedAttempts: 4) == 30...40)
        #expect(policy.delayBounds(afterFailedAttempts: 5) == 45...60)
        #expect(policy.delayBounds(afterFailedAttempts: 500) == 45...60)
        #expect(RetryPolicy(jitter: 0).delayBounds(afterFailedAttempts: 1) == 5...5)
    }

    @Test("a failure keeps only the last 4 KiB of output, cut at a character boundary")
    func outputTail() {
        let long = String(repeating: "é", count: 3000) + "THE END"
        let failure = JobFailure(errorClass: "CommandFailed", message: "exit 1", output: long)
        let kept = failure.output!
        #expect(kept.utf8.count <= JobFailure.maxOutputBytes)
        #expect(kept.hasSuffix("THE END") && kept.hasPrefix("é"))
    }
}

@Suite("Releasing claimed jobs")
struct ReleaseTests {
    @Test("a graceful release puts jobs back in ready with no counter changed, and wakes workers")
    func graceful() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            try store.enqueue([NewJob("A", queue: "q1"), NewJob("B", queue: "q2"), NewJob("C", queue: "q2")], on: db)
            _ = try listener.waitForNotifications(timeout: .seconds(5))
            _ = try listener.waitForNotifications(timeout: .milliseconds(100))
            let claimed = try store.claim(processID: 3, queues: ["*"], limit: 3, on: db).map(\.id)
            let outcome = try store.release(processID: 3, reason: .graceful, on: db)
            #expect(outcome == ReleaseOutcome(released: claimed.sorted(), failed: []))
            for id in claimed {
                let info = try #require(try store.job(id, on: db))
                #expect(info.state == .ready && info.attempts == 0 && info.crashes == 0)
            }
            var woken: [String] = []
            try waitUntil("both queues were woken") {
                woken += try listener.waitForNotifications(timeout: .milliseconds(100)).map(\.payload)
                return Set(woken) == ["q1", "q2"]
            }
            try expectInvariant(store, db)
        }
    }

    @Test("a crash counts against each job; at max_crashes the job fails with the crash as its error")
    func crashes() throws {
        try withStore { store, db throws in
            let id = try store.enqueue(NewJob("Poison"), on: db)
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "the worker died (signal 9)", signal: 9)
            for round in 1...3 {
                _ = try store.claim(processID: round, queues: ["default"], limit: 1, on: db)
                let outcome = try store.release(processID: round, reason: .crashed(crash, maxCrashes: 3), on: db)
                let info = try #require(try store.job(id, on: db))
                #expect(info.crashes == round && info.attempts == 0)
                #expect(info.lastError?.errorClass == "WorkerCrashed")
                if round < 3 {
                    #expect(outcome == ReleaseOutcome(released: [id], failed: []))
                    #expect(info.state == .ready)
                } else {
                    #expect(outcome == ReleaseOutcome(released: [], failed: [id]))
                    #expect(info.state == .failed)
                }
                try expectInvariant(store, db)
            }
            let stored = try db.query("SELECT error FROM \(store.schema.qualifying("failed_executions"))")[0].decode("error", as: JSON.self)
            #expect(stored.text.contains("\"crashes\": 3"))
        }
    }

    @Test("a release can name the jobs it gives back; the others stay claimed")
    func releaseSome() throws {
        try withStore { store, db throws in
            try store.enqueue((0..<3).map { _ in NewJob("W") }, on: db)
            let claimed = try store.claim(processID: 5, queues: ["default"], limit: 3, on: db).map(\.id)
            let outcome = try store.release(processID: 5, jobIDs: [claimed[1]], reason: .graceful, on: db)
            #expect(outcome.released == [claimed[1]])
            #expect(try count(store, "claimed_executions", db) == 2)
            try expectInvariant(store, db)
        }
    }
}

@Suite("Retention and dispatching")
struct RetentionTests {
    @Test("the tables claims walk are vacuumed once their dead rows reach the threshold, and only by a role that may")
    func vacuumHotTables() throws {
        try withStore { store, db throws in
            // Autovacuum stays out of it: this vacuum would skip a table autovacuum is working on.
            for table in PostgresDriver.hotTables {
                try db.execute("ALTER TABLE \(store.schema.qualifying(table)) SET (autovacuum_enabled = false)")
            }
            let ids = try store.enqueue((0..<3_000).map { _ in NewJob("W") }, on: db)
            let claimed = try store.claim(processID: 1, queues: ["default"], limit: 3_000, on: db).map(\.id)
            #expect(claimed.count == ids.count)
            try store.finish(claimed, processID: 1, on: db)
            _ = try db.query("SELECT pg_stat_force_next_flush()")
            let schema = store.schema.parts[0]
            func stats(_ table: String) throws -> (dead: Int, vacuums: Int) {
                let row = try db.query("""
                    SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables WHERE schemaname = \(schema) AND relname = \(table)
                    """)[0]
                return (try row.decode("n_dead_tup", as: Int.self), try row.decode("vacuum_count", as: Int.self))
            }
            try waitUntil("the statistics count the dead rows") { try stats("ready_executions").dead >= 3_000 }

            #expect(try store.vacuumHotTables(minimumDeadRows: 1_000_000, on: db).isEmpty, "below the threshold")
            #expect(try stats("ready_executions").vacuums == 0)

            // A role that does not own the tables may not vacuum them: they are left alone.
            let role = "drover_not_owner_" + String(UInt32.random(in: 0 ... .max), radix: 36)
            try db.execute("CREATE ROLE \(SQLIdentifier(role)) NOLOGIN")
            defer { _ = try? db.execute("DROP ROLE \(SQLIdentifier(role))") }
            try db.execute("GRANT USAGE ON SCHEMA \(SQLIdentifier(schema)) TO \(SQLIdentifier(role))")
            try db.execute("SET ROLE \(SQLIdentifier(role))")
            let asOther = try store.vacuumHotTables(minimumDeadRows: 1, on: db)
            try db.execute("RESET ROLE")
            try db.execute("REVOKE ALL ON SCHEMA \(SQLIdentifier(schema)) FROM \(SQLIdentifier(role))")
            #expect(asOther.isEmpty)

            let vacuumed = try store.vacuumHotTables(minimumDeadRows: 1_000, on: db)
            #expect(vacuumed.map(\.table) == ["claimed_executions", "ready_executions"])
            #expect(vacuumed.allSatisfy { $0.deadRows >= 3_000 })
            // (Whether it could remove the dead rows depends on the oldest snapshot of every other
            // session, which other tests hold: the vacuum itself is what is checked.)
            try waitUntil("the vacuum is counted") { try stats("ready_executions").vacuums == 1 && stats("claimed_executions").vacuums == 1 }
            try expectInvariant(store, db)
        }
    }

    @Test("finished jobs older than the retention are deleted in batches; newer and live ones stay")
    func clearFinished() throws {
        try withStore { store, db throws in
            let ids = try store.enqueue((0..<10).map { _ in NewJob("W") }, on: db)
            let claimed = try store.claim(processID: 1, queues: ["default"], limit: 8, on: db).map(\.id)
            try store.finish(claimed, processID: 1, on: db)
            // Five of them finished two days ago.
            try db.execute("UPDATE \(store.schema.qualifying("jobs")) SET finished_at = now() - interval '2 days' WHERE id = ANY(\(Array(claimed.prefix(5))))")
            #expect(try store.clearFinished(olderThan: .seconds(86_400), batchSize: 2, on: db) == 5)
            #expect(try count(store, "jobs", db) == 5)
            #expect(try store.clearFinished(olderThan: .seconds(86_400), on: db) == 0)
            #expect(try state(store, ids[9], db) == .ready)
            try expectInvariant(store, db)
        }
    }

    @Test("dispatching moves only due scheduled jobs, earliest first, a batch at a time")
    func dispatchDue() throws {
        try withStore { store, db throws in
            try store.enqueue((0..<5).map { _ in NewJob("Later", runAt: Date().addingTimeInterval(3600)) }, on: db)
            let soon = try store.enqueue((0..<3).map { _ in NewJob("Soon", runAt: Date().addingTimeInterval(3600)) }, on: db)
            #expect(try store.dispatchDue(on: db) == 0)
            try db.execute("UPDATE \(store.schema.qualifying("scheduled_executions")) SET scheduled_at = now() - interval '1 second' WHERE job_id = ANY(\(soon))")
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            #expect(try store.dispatchDue(batchSize: 2, on: db) == 2)
            #expect(try listener.waitForNotifications(timeout: .seconds(10)).map(\.payload) == ["default"], "workers are woken")
            #expect(try store.dispatchDue(batchSize: 2, on: db) == 1)
            #expect(try store.listJobs(state: .ready, on: db).map(\.id).sorted() == soon)
            try expectInvariant(store, db)
        }
    }
}

/// Hands a non-Sendable value to one other thread, which the test then waits for.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
