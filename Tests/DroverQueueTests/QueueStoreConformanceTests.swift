import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// One scenario of the conformance suite: it runs on every backend's store.
protocol ConformanceScenario {
    func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws
}

/// The backends the suite runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case postgresql, sqlite
    var testDescription: String { rawValue }

    func run(_ scenario: some ConformanceScenario, retryPolicy: RetryPolicy = RetryPolicy()) throws {
        switch self {
        case .postgresql:
            try TestDatabase.withSchema { schema, db in
                try scenario.run(PostgresJobStore(schema: schema, retryPolicy: retryPolicy), db)
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
            let id = try store.enqueue([NewJob("Once", maxAttempts: 5)], on: db)[0]
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            let outcome = try store.fail(id, processID: 1, error: JobFailure(errorClass: "E", message: "m"), permanent: false,
                                         maxAttempts: 1, on: db)
            #expect(outcome == .failed(attempts: 1))
            #expect(try store.job(id, on: db)?.maxAttempts == 1)
        }
    }

    struct ReleaseAndCrashes: ConformanceScenario {
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
            let ids = try store.enqueue([NewJob("Soon", runIn: .milliseconds(200)), NewJob("Later", runIn: .seconds(3600))], on: db)
            #expect(try store.dispatchDue(batchSize: 10, on: db) == 0)
            try waitUntil("the first is due and dispatched") { try store.dispatchDue(batchSize: 10, on: db) == 1 }
            #expect(try store.job(ids[0], on: db)?.state == .ready && store.job(ids[1], on: db)?.state == .scheduled)
        }
    }

    struct UniqueKeys: ConformanceScenario {
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
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

    struct ConcurrencyLimits: ConformanceScenario {
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
            try store.syncConcurrencyRules([
                ConcurrencyRule(className: "Sync", keyTemplate: "account:{account.id}", maxRunning: 1, duration: .seconds(60)),
                ConcurrencyRule(className: "Once", keyTemplate: "once", maxRunning: 1, duration: .seconds(60), onConflict: .discard),
            ], on: db)
            #expect(try store.concurrencyRules(on: db).map(\.className) == ["Once", "Sync"])
            let args = try JSON(validating: #"{"account": {"id": 7}}"#)
            let ids = try store.enqueue([NewJob("Sync", arguments: args), NewJob("Sync", arguments: args, priority: 5),
                                         NewJob("Sync", arguments: args, priority: -1)], on: db)
            #expect(try ids.map { try store.job($0, on: db)?.state } == [.blocked, .blocked, .ready],
                    "one slot for account:7, to the batch's job of highest priority")
            let other = try store.enqueue([NewJob("Sync", arguments: try JSON(validating: #"{"account": {"id": 8}}"#))], on: db)[0]
            #expect(try store.job(other, on: db)?.state == .ready, "another key has its own slot")
            do {
                _ = try store.enqueue([NewJob("Plain"), NewJob("Sync", arguments: .emptyObject)], on: db)
                Issue.record("a job lacking its key's arguments was enqueued")
            } catch let error as QueueError {
                #expect(error.code == .invalidJob && error.field == "arguments")
                #expect(error.message == "job 2: arguments lack what the concurrency key account:{account.id} of Sync needs")
            }
            #expect(try store.listJobs(queue: nil, state: nil, className: "Plain", limit: 10, on: db).isEmpty, "nothing half-enqueued")

            // Finishing gives the slot to the blocked job of highest priority (lowest number).
            let first = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            #expect(Set(first.map(\.id)) == [ids[2], other])
            _ = try store.finish([ids[2]], processID: 1, on: db)
            #expect(try store.job(ids[0], on: db)?.state == .ready && store.job(ids[1], on: db)?.state == .blocked)
            // A failure (retried later) gives it back too; cancelling a blocked job frees nothing.
            let second = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            #expect(second.map(\.id) == [ids[0]])
            _ = try store.fail(ids[0], processID: 1, error: JobFailure(errorClass: "E", message: "m"), permanent: false,
                               maxAttempts: nil, on: db)
            #expect(try store.job(ids[1], on: db)?.state == .ready)
            let keys = try store.concurrencyKeys(on: db)
            #expect(keys.first { $0.key == "account:7" }.map { ($0.holding, $0.blocked, $0.maxRunning) }! == (1, 0, 1))

            // on_conflict: discard finishes the second job at once.
            let once = try store.enqueue([NewJob("Once"), NewJob("Once")], on: db)
            #expect(try once.map { try store.job($0, on: db)?.state } == [.ready, .finished])
            #expect(try store.job(once[1], on: db)?.lastError?.errorClass == "Discarded")

            // A slot lost (its semaphore reset by hand) comes back when the key is counted again.
            _ = try db.fetch("UPDATE \(store.schema.qualifying("semaphores")) SET value = 0")
            let blockedOnce = try store.enqueue([NewJob("Sync", arguments: try JSON(validating: #"{"account": {"id": 9}}"#))], on: db)[0]
            #expect(try store.job(blockedOnce, on: db)?.state == .ready)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            _ = try store.finish(try store.claimedJobIDs(processID: 1, on: db), processID: 1, on: db)
            _ = try db.fetch("UPDATE \(store.schema.qualifying("semaphores")) SET expires_at = '2000-01-01 00:00:00+00'")
            _ = try store.expireConcurrency(batchSize: 100, on: db)
            #expect(try store.concurrencyKeys(on: db).allSatisfy { $0.holding <= $0.maxRunning })
            try store.syncConcurrencyRules([], on: db)
            #expect(try store.concurrencyRules(on: db).isEmpty)
        }
    }

    struct Recurring: ConformanceScenario {
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
            try store.syncStaticTasks([RecurringTask(key: "nightly", schedule: "0 3 * * *", className: "Report", isStatic: true)], on: db)
            try store.addTask(RecurringTask(key: "hourly", schedule: "@hourly", className: "Ping", queue: "pings"), on: db)
            do {
                try store.addTask(RecurringTask(key: "nightly", schedule: "@daily", className: "Other"), on: db)
                Issue.record("a run-time task replaced a static one")
            } catch let error as QueueError {
                #expect(error.code == .staticTask)
            }
            #expect(try store.hasTasks(on: db))
            #expect(try store.tasks(on: db).map(\.key) == ["hourly", "nightly"])
            let hourly = try #require(try store.tasks(on: db).first { $0.key == "hourly" })
            #expect(!hourly.isStatic && hourly.queue == "pings")
            let runAt = Date(timeIntervalSince1970: 1_790_000_000)
            let job = try #require(try store.enqueueRun(of: hourly, at: runAt, on: db))
            #expect(try store.enqueueRun(of: hourly, at: runAt, on: db) == nil, "each run once")
            #expect(try store.lastRun(of: "hourly", on: db) == runAt)
            let listed = try #require(try store.listTasks(on: db).first { $0.task.key == "hourly" })
            #expect(listed.lastJobID == job && listed.lastJobState == .ready && listed.lastRunAt == runAt)
            try store.removeTask("hourly", on: db)
            do {
                try store.removeTask("nightly", on: db)
                Issue.record("a static task was removed at run time")
            } catch let error as QueueError {
                #expect(error.code == .staticTask)
            }
            try store.syncStaticTasks([], on: db)
            #expect(try !store.hasTasks(on: db))
        }
    }

    struct QueueAndProcessListings: ConformanceScenario {
        func run<D: StoreDriver>(_ store: JobStore<D>, _ db: D.Database) throws {
            _ = try store.enqueue([NewJob("A"), NewJob("B", queue: "mail"), NewJob("C", queue: "mail", runIn: .seconds(600))], on: db)
            _ = try store.pause("idle", on: db)
            let supervisor = try store.register(kind: .supervisor, name: "s", pid: 10, hostname: "h", supervisorID: nil,
                                                metadata: .emptyObject, on: db)
            let supervisorID = try supervisor.get("id", as: Int.self)
            let worker = try store.register(kind: .worker, name: "w", pid: 11, hostname: "h", supervisorID: supervisorID,
                                            metadata: try JSON(validating: #"{"running": 2, "finished": 5, "failed": 1}"#), on: db)
            let workerID = try worker.get("id", as: Int.self)
            _ = try store.claim(processID: workerID, queues: ["mail"], limit: 1, on: db)
            let queues = try store.listQueues(on: db)
            #expect(queues.map(\.name) == ["default", "idle", "mail"])
            #expect(queues[0].ready == 1 && (queues[0].oldestReadyAge ?? -1) >= 0 && queues[0].oldestReadyAge! < 60)
            #expect(queues[1].paused && queues[2].claimed == 1 && queues[2].scheduled == 1)
            let processes = try store.listProcesses(on: db)
            #expect(processes.map(\.name) == ["s", "w"] && processes[1].claimedJobs == 1 && processes[1].heartbeatAge < 60)
            #expect(try store.processNames(supervisorID: supervisorID, on: db) == ["w"])
            #expect(try store.processTotals(supervisorID: supervisorID, on: db) == ProcessTotals(running: 2, finished: 5, failed: 1))
            #expect(try store.processID(named: "w", on: db) == workerID)
        }
    }

    @Test("a concurrency key is rendered in Swift (SQLite) exactly as PostgreSQL's concurrency_key function renders it")
    func keyRendering() throws {
        let cases: [(String, String)] = [
            ("account:{account.id}", #"{"account": {"id": 7}}"#), ("{name}-{n}", #"{"name": "ünï cödé", "n": 1.5}"#),
            ("{flag}/{big}", #"{"flag": true, "big": 9007199254740993}"#), ("{missing}", #"{"a": 1}"#),
            ("{a}", #"{"a": null}"#), ("static", "{}"), ("{a.b.c}", #"{"a": {"b": "x"}}"#), ("{unclosed", #"{"unclosed": 1}"#),
        ]
        try TestDatabase.withSchema { schema, db in
            for (template, arguments) in cases {
                let rule = ConcurrencyRule(className: "C", keyTemplate: template, maxRunning: 1, duration: .seconds(1))
                let expected = try db.query("""
                    SELECT \(SQLIdentifier(schema)).concurrency_key(\(template), \(DatabaseValue(type: .jsonb, text: arguments))) AS k
                    """)[0].decode("k", as: String?.self)
                #expect(rule.key(for: try JSON(validating: arguments)) == expected, "\(template) over \(arguments)")
            }
        }
    }

    @Test("concurrency limits: keys from arguments, one slot per key, blocked in priority order, discard, recount", arguments: Backend.allCases)
    func concurrencyLimits(_ backend: Backend) throws { try backend.run(ConcurrencyLimits()) }

    @Test("recurring tasks: static and run-time, each run enqueued once, last runs listed", arguments: Backend.allCases)
    func recurring(_ backend: Backend) throws { try backend.run(Recurring()) }

    @Test("queue and process listings, a supervisor's children and their totals", arguments: Backend.allCases)
    func queueAndProcessListings(_ backend: Backend) throws { try backend.run(QueueAndProcessListings()) }

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
