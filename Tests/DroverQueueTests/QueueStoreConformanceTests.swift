import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// One scenario of the conformance suite: it runs on every backend's store.
protocol ConformanceScenario {
    func run<S: QueueStore>(_ store: S, _ db: S.Database) throws
}

/// The backends the suite runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case postgresql, sqlite
    var testDescription: String { rawValue }

    func run(_ scenario: some ConformanceScenario, retryPolicy: RetryPolicy = RetryPolicy()) throws {
        switch self {
        case .postgresql:
            try TestDatabase.withSchema { schema, db in
                try scenario.run(JobStore(schema: schema, retryPolicy: retryPolicy), db)
            }
        case .sqlite:
            let directory = try TemporaryDirectory("drover-conformance")
            let db = try SQLiteConnection(path: directory.url.appendingPathComponent("drover.sqlite3").path, schema: "drover")
            try Migrator(schema: "drover", migrations: DroverSchema.sqliteMigrations).migrate(on: db)
            try scenario.run(SQLiteJobStore(schema: "drover", retryPolicy: retryPolicy), db)
        }
    }
}

/// The queue's core state changes behave the same on PostgreSQL and on SQLite.
@Suite("Queue store conformance: PostgreSQL and SQLite")
struct QueueStoreConformanceTests {
    struct ClaimOrder: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([
                NewJob("A", queue: "default", priority: 5), NewJob("B", queue: "mail.out"), NewJob("C", queue: "critical"),
                NewJob("D", queue: "default", priority: -1), NewJob("E", queue: "mail.in"), NewJob("F", queue: "paused"),
                NewJob("G", queue: "MAIL.upper"), NewJob("Later", runIn: .seconds(3600)),
            ], on: db)
            #expect(ids.count == 8 && Set(ids).count == 8)
            _ = try db.fetch("INSERT INTO \(store.schema.qualifying("pauses")) (queue_name) VALUES ('paused')")
            let first = try store.claim(processID: 1, queues: ["critical", "default", "mail*"], limit: 3, on: db)
            #expect(first.map(\.className) == ["C", "D", "A"])
            let rest = try store.claim(processID: 1, queues: ["critical", "default", "mail*"], limit: 10, on: db)
            #expect(rest.map(\.className) == ["E", "B"], "prefixes in name order, case sensitive")
            let all = try store.claim(processID: 2, queues: ["*"], limit: 10, on: db)
            #expect(all.map(\.className) == ["G"], "paused and scheduled jobs are not claimed")
            #expect(first[0].attempt == 1 && first[0].queue == "critical")
            #expect(try store.job(ids[7], on: db)?.state == .scheduled)
            #expect(try store.job(ids[2], on: db)?.claimedBy == 1)
        }
    }

    struct FinishOnce: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue((0..<4).map { _ in NewJob("Work") }, on: db)
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 3, on: db).map(\.id)
            let outcome = try store.finish(claimed + [ids[3]], processID: 1, on: db)
            #expect(outcome.finished == claimed.sorted() && outcome.dropped == [ids[3]])
            #expect(try store.finish(claimed, processID: 1, on: db).dropped == claimed, "a second finish is dropped")
            #expect(try store.job(claimed[0], on: db)?.state == .finished)
            let other = try store.claim(processID: 2, queues: ["*"], limit: 1, on: db).map(\.id)
            #expect(try store.finish(other, processID: 1, on: db).dropped == other, "another process's job is not ours")
        }
    }

    struct FailRetryAndGiveUp: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([NewJob("Flaky", maxAttempts: 2), NewJob("Broken")], on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 2, on: db)
            let error = JobFailure(errorClass: "CommandFailed", message: "exit 3", exitStatus: 3, output: "tail")
            let before = Date()
            guard case .retryScheduled(let at, let attempts) = try store.fail(ids[0], processID: 1, error: error, permanent: false,
                                                                                maxAttempts: nil, on: db) else {
                Issue.record("the first failure should schedule a retry")
                return
            }
            #expect(attempts == 1)
            let delay = at.timeIntervalSince(before)
            #expect(delay >= 3.7 && delay <= 5.1, "5 s less up to 25 %: \(delay)")
            let retried = try #require(try store.job(ids[0], on: db))
            #expect(retried.state == .scheduled && retried.lastError?.exitStatus == 3 && retried.lastError?.output == "tail")
            #expect(try store.fail(ids[0], processID: 1, error: error, permanent: false, maxAttempts: nil, on: db) == .dropped,
                    "no longer claimed: dropped")
            #expect(try store.fail(ids[1], processID: 1, error: error, permanent: true, maxAttempts: nil, on: db) == .failed(attempts: 1))
            #expect(try store.job(ids[1], on: db)?.state == .failed)
        }
    }

    struct HandlerMaxAttempts: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let id = try store.enqueue([NewJob("Once", maxAttempts: 5)], on: db)[0]
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            let outcome = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "m"), permanent: false,
                                         maxAttempts: 1, on: db)
            #expect(outcome == .failed(attempts: 1))
            #expect(try store.job(id, on: db)?.maxAttempts == 1)
        }
    }

    struct ReleaseAndCrashes: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([NewJob("A"), NewJob("B")], on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 2, on: db)
            let graceful = try store.release(processID: 1, jobIDs: [ids[0]], reason: .graceful, on: db)
            #expect(graceful == ReleaseOutcome(released: [ids[0]], failed: []))
            #expect(try store.job(ids[0], on: db)?.state == .ready && store.job(ids[0], on: db)?.crashes == 0)
            let failure = JobFailure(errorClass: "WorkerCrashed", message: "killed", signal: 9)
            let first = try store.release(processID: 1, jobIDs: nil, reason: .crashed(failure, maxCrashes: 2), on: db)
            #expect(first == ReleaseOutcome(released: [ids[1]], failed: []))
            #expect(try store.job(ids[1], on: db)?.crashes == 1)
            _ = try store.claim(processID: 2, queues: ["*"], limit: 2, on: db)
            let second = try store.release(processID: 2, jobIDs: nil, reason: .crashed(failure, maxCrashes: 2), on: db)
            #expect(second == ReleaseOutcome(released: [ids[0]], failed: [ids[1]]), "the second crash is B's limit")
            let dead = try #require(try store.job(ids[1], on: db))
            #expect(dead.state == .failed && dead.lastError?.errorClass == "WorkerCrashed" && dead.lastError?.signal == 9)
        }
    }

    struct DispatchDue: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([NewJob("Soon", runIn: .milliseconds(200)), NewJob("Later", runIn: .seconds(3600))], on: db)
            #expect(try store.dispatchDue(batchSize: 10, on: db) == 0)
            try waitUntil("the first is due and dispatched") { try store.dispatchDue(batchSize: 10, on: db) == 1 }
            #expect(try store.job(ids[0], on: db)?.state == .ready && store.job(ids[1], on: db)?.state == .scheduled)
        }
    }

    struct UniqueKeys: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let first = try store.enqueue([NewJob("Report", uniqueKey: "day")], on: db)[0]
            let again = try store.enqueue([NewJob("Other"), NewJob("Report", uniqueKey: "day")], on: db)
            #expect(again[1] == first)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 5, on: db)
            _ = try store.finish([first], processID: 1, on: db)
            #expect(try store.enqueue([NewJob("Report", uniqueKey: "day")], on: db)[0] != first, "a finished job frees its key")
            let bad = #expect(throws: QueueError.self) { try store.enqueue([NewJob("Ok"), NewJob("bad class")], on: db) }
            #expect(bad?.message.hasPrefix("job 2: ") == true && bad?.field == "class")
        }
    }

    struct Processes: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let worker = try store.register(kind: .worker, name: "worker-a", pid: 101, hostname: "h1", supervisorID: nil,
                                            metadata: .emptyObject, on: db)
            let spared = try store.register(kind: .worker, name: "worker-b", pid: 102, hostname: "h1", supervisorID: nil,
                                            metadata: .emptyObject, on: db)
            let workerID = try worker.get("id", as: Int.self)
            let ids = try store.enqueue([NewJob("A"), NewJob("B"), NewJob("C")], on: db)
            _ = try store.claim(processID: workerID, queues: ["*"], limit: 2, on: db)
            #expect(try store.claimedJobIDs(processID: workerID, on: db) == [ids[0], ids[1]])

            // Heartbeats go through the record layer's withLock on either backend.
            try worker.withLock(on: db) { $0.set("last_heartbeat_at", to: Date().addingTimeInterval(-120)) }
            try spared.withLock(on: db) { $0.set("last_heartbeat_at", to: Date().addingTimeInterval(-120)) }
            #expect(try store.pruneDeadProcesses(olderThan: .seconds(300), sparing: [], maxCrashes: 3, on: db).isEmpty)
            let pruned = try store.pruneDeadProcesses(olderThan: .seconds(60), sparing: ["worker-b"], maxCrashes: 3, on: db)
            #expect(pruned.map(\.name) == ["worker-a"])
            #expect(pruned.first?.jobs == ReleaseOutcome(released: [ids[0], ids[1]], failed: []))
            #expect(try store.job(ids[0], on: db)?.crashes == 1 && store.job(ids[0], on: db)?.lastError?.errorClass == "ProcessLost")
            #expect(throws: DatabaseError.self) { try worker.withLock(on: db) { _ in } }

            // A claim whose process never registered is recovered.
            _ = try store.claim(processID: 999, queues: ["*"], limit: 1, on: db)
            let orphans = try store.recoverOrphanedClaims(maxCrashes: 3, on: db)
            #expect(orphans.released.count == 1)

            let sparedID = try spared.get("id", as: Int.self)
            _ = try store.claim(processID: sparedID, queues: ["*"], limit: 3, on: db)
            let stopped = try store.deregister(processID: sparedID, reason: .graceful, on: db)
            #expect(stopped.released.count == 3 && stopped.failed.isEmpty)
            #expect(try store.claimedJobIDs(processID: sparedID, on: db).isEmpty)
        }
    }

    struct Cancellation: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([NewJob("A"), NewJob("B", runIn: .seconds(3600)), NewJob("C"), NewJob("D")], on: db)
            #expect(try store.cancel(ids[0], on: db) == .discarded(was: .ready))
            #expect(try store.cancel(ids[1], on: db) == .discarded(was: .scheduled))
            #expect(try store.job(ids[0], on: db) == nil)
            let running = try store.claim(processID: 7, queues: ["*"], limit: 2, on: db).map(\.id)
            #expect(try store.cancel(running[0], on: db) == .requested(processID: 7))
            #expect(try store.cancelRequests(processID: 7, on: db) == [running[0]])
            // The worker stopped (or died) first: the cancelled job fails instead of running again.
            let outcome = try store.release(processID: 7, jobIDs: nil, reason: .graceful, on: db)
            #expect(outcome == ReleaseOutcome(released: [running[1]], failed: [running[0]]))
            #expect(try store.job(running[0], on: db)?.lastError?.errorClass == "Cancelled")
            let failedAlready = #expect(throws: QueueError.self) { try store.cancel(running[0], on: db) }
            #expect(failedAlready?.code == .wrongState)
            let missing = #expect(throws: QueueError.self) { try store.cancel(ids[0], on: db) }
            #expect(missing?.code == .jobNotFound)
        }
    }

    struct Listings: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            let ids = try store.enqueue([
                NewJob("Mail", queue: "mail"), NewJob("Mail", queue: "mail", runIn: .seconds(60)), NewJob("Report"), NewJob("Report"),
            ], on: db)
            _ = try store.claim(processID: 1, queues: ["default"], limit: 1, on: db)
            #expect(try store.listJobs(queue: nil, state: nil, className: nil, limit: 50, on: db).map(\.id) == ids.reversed())
            #expect(try store.listJobs(queue: "mail", state: nil, className: nil, limit: 50, on: db).map(\.id) == [ids[1], ids[0]])
            #expect(try store.listJobs(queue: nil, state: .scheduled, className: nil, limit: 50, on: db).map(\.id) == [ids[1]])
            #expect(try store.listJobs(queue: nil, state: .claimed, className: "Report", limit: 50, on: db).map(\.id) == [ids[2]])
            #expect(try store.listJobs(queue: nil, state: nil, className: nil, limit: 2, on: db).count == 2)
            let listed = try #require(try store.listJobs(queue: "mail", state: .ready, className: nil, limit: 50, on: db).first)
            #expect(listed.className == "Mail" && listed.arguments == nil, "listings leave the arguments out")
        }
    }

    struct Management: ConformanceScenario {
        func run<S: QueueStore>(_ store: S, _ db: S.Database) throws {
            #expect(try store.pause("mail", on: db) && !store.pause("mail", on: db))
            let ids = try store.enqueue([NewJob("M", queue: "mail"), NewJob("M", queue: "mail", runIn: .seconds(60)), NewJob("D")], on: db)
            #expect(try store.claim(processID: 1, queues: ["mail"], limit: 5, on: db).isEmpty, "paused")
            #expect(try store.resume("mail", on: db) && !store.resume("mail", on: db))
            #expect(try store.clear("mail", batchSize: 1000, on: db) == (ready: 1, scheduled: 1))
            #expect(try store.job(ids[0], on: db) == nil && store.job(ids[2], on: db)?.state == .ready)

            let failing = try store.enqueue([NewJob("F"), NewJob("G")], on: db)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 5, on: db)
            for id in failing {
                _ = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "m"), permanent: true, maxAttempts: nil, on: db)
            }
            let wrong = #expect(throws: QueueError.self) { try store.retryFailed([failing[0], ids[2]], on: db) }
            #expect(wrong?.code == .wrongState && wrong?.message == "only failed jobs can be retried: job \(ids[2]) is claimed; nothing was retried")
            let missing = #expect(throws: QueueError.self) { try store.discardFailed([999_999], on: db) }
            #expect(missing?.code == .jobNotFound)
            #expect(try store.retryFailed([failing[0]], on: db) == [failing[0]])
            let retried = try #require(try store.job(failing[0], on: db))
            #expect(retried.state == .ready && retried.attempts == 0)
            #expect(try store.discardFailed([failing[1]], on: db) == [failing[1]])
            #expect(try store.job(failing[1], on: db) == nil)
        }
    }

    @Test("management: pause, resume, clear; failed jobs retried or discarded, all or nothing", arguments: Backend.allCases)
    func management(_ backend: Backend) throws { try backend.run(Management()) }

    @Test("cancellation: waiting jobs deleted, running ones marked; a release fails them as cancelled", arguments: Backend.allCases)
    func cancellation(_ backend: Backend) throws { try backend.run(Cancellation()) }

    @Test("listings filter by queue, state and class, newest first", arguments: Backend.allCases)
    func listings(_ backend: Backend) throws { try backend.run(Listings()) }

    @Test("processes: register, heartbeat, prune the dead (sparing the living), recover orphaned claims, deregister",
          arguments: Backend.allCases)
    func processes(_ backend: Backend) throws { try backend.run(Processes()) }

    @Test("claim order: queue list, prefixes (case sensitive), priority, id; paused queues and future jobs wait", arguments: Backend.allCases)
    func claimOrder(_ backend: Backend) throws { try backend.run(ClaimOrder()) }

    @Test("finish happens once; a late or foreign finish is dropped", arguments: Backend.allCases)
    func finishOnce(_ backend: Backend) throws { try backend.run(FinishOnce()) }

    @Test("a failed attempt is retried after the backoff, then fails; permanent failures fail at once", arguments: Backend.allCases)
    func failRetry(_ backend: Backend) throws { try backend.run(FailRetryAndGiveUp()) }

    @Test("a handler's max_attempts replaces the job's", arguments: Backend.allCases)
    func handlerMaxAttempts(_ backend: Backend) throws { try backend.run(HandlerMaxAttempts()) }

    @Test("releases: graceful back to ready, crashes counted up to max_crashes", arguments: Backend.allCases)
    func release(_ backend: Backend) throws { try backend.run(ReleaseAndCrashes()) }

    @Test("due scheduled jobs become ready", arguments: Backend.allCases)
    func dispatchDue(_ backend: Backend) throws { try backend.run(DispatchDue()) }

    @Test("unique keys return the live job; a bad job in a batch names its position", arguments: Backend.allCases)
    func uniqueKeys(_ backend: Backend) throws { try backend.run(UniqueKeys()) }
}
