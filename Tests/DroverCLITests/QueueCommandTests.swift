import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// enqueue, jobs, failed and queues, run as real processes against a migrated schema.
@Suite("Queue commands")
struct QueueCommandTests {
    /// Runs `drover` against `schema` of the test database.
    private func drover(_ arguments: [String], schema: String) throws -> DroverBinary.Outcome {
        try DroverBinary.run(arguments + ["--schema", schema], environment: ["DROVER_DATABASE_URL": try TestDatabase.url()])
    }

    private func withSchema(_ body: (String, PostgresJobStore, Connection) throws -> Void) throws {
        try TestDatabase.withSchema { schema, db in try body(schema, try PostgresJobStore(schema: schema), db) }
    }

    @Test("enqueue --timeout limits each attempt; a timeout out of range is bad usage")
    func enqueueTimeout() throws {
        try withSchema { schema, store, db throws in
            let ok = try drover(["enqueue", "Slow", "--timeout", "1m30s"], schema: schema)
            #expect(ok.status == 0, "\(ok)")
            let id = try #require(Int(ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            #expect(claimed.first?.id == id && claimed.first?.timeout == .seconds(90))
            for bad in ["0s", "8d", "soon"] {
                let refused = try drover(["enqueue", "Slow", "--timeout", bad], schema: schema)
                #expect(refused.status == 64, "\(refused)")
                #expect(refused.stderr.contains("--timeout \"\(bad)\" is not a duration from 1s to 7d"))
            }
        }
    }

    @Test("enqueue --unique-key prints the live job's id instead of enqueueing another")
    func enqueueUniqueKey() throws {
        try withSchema { schema, store, db throws in
            let first = try drover(["enqueue", "Nightly", "--unique-key", "nightly:2026-11-27"], schema: schema)
            let second = try drover(["enqueue", "Nightly", "--unique-key", "nightly:2026-11-27"], schema: schema)
            #expect(first.status == 0 && second.status == 0, "\(first)\n\(second)")
            #expect(first.stdout == second.stdout)
            let empty = try drover(["enqueue", "Nightly", "--unique-key", ""], schema: schema)
            #expect(empty.status == 64, "\(empty)")
            #expect(empty.stderr.contains("unique_key must be 1 to 1000 characters"))
            #expect(try store.listJobs(on: db).count == 1)
        }
    }

    @Test("jobs cancel --json says what became of the job")
    func cancelJSON() throws {
        try withSchema { schema, store, db throws in
            let waiting = try store.enqueue(NewJob("Work"), on: db)
            let running = try store.enqueue(NewJob("Work"), on: db)
            _ = try store.cancel(waiting, on: db)  // leaves `running` first in line
            _ = try store.claim(processID: 42, queues: ["*"], limit: 1, on: db)
            let third = try store.enqueue(NewJob("Work"), on: db)
            let discarded = try drover(["jobs", "cancel", String(third), "--json"], schema: schema)
            #expect(discarded.stdout == #"{"id":\#(third),"outcome":"discarded","was":"ready"}"# + "\n", "\(discarded)")
            let stopping = try drover(["jobs", "cancel", String(running), "--json"], schema: schema)
            #expect(stopping.stdout == #"{"id":\#(running),"outcome":"stopping","process":42}"# + "\n", "\(stopping)")
        }
    }

    @Test("enqueue prints the job id, or the job as JSON; --in and --at schedule it")
    func enqueue() throws {
        try withSchema { schema, store, db throws in
            let plain = try drover(["enqueue", "SendReport", "--args", #"{"kind": "nightly"}"#], schema: schema)
            #expect(plain.status == 0, "\(plain)")
            let id = try #require(Int(plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(plain)")
            let job = try #require(try store.job(id, on: db))
            #expect(job.state == .ready && job.queue == "default" && job.arguments?.text == #"{"kind": "nightly"}"#)

            let json = try drover(["enqueue", "Later", "--queue", "mail", "--priority", "-3", "--in", "1h30m",
                                   "--max-attempts", "9", "--json"], schema: schema)
            #expect(json.status == 0, "\(json)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["state"] as? String == "scheduled")
            #expect(object["queue"] as? String == "mail")
            #expect(object["priority"] as? Int == -3)
            #expect(object["max_attempts"] as? Int == 9)
            #expect(object["class"] as? String == "SendReport" || object["class"] as? String == "Later")
            let scheduled = try #require(try store.job(object["id"] as! Int, on: db))
            let delay = scheduled.nextRunAt!.timeIntervalSinceNow
            #expect((5300...5400).contains(delay), "runs in about 1h30m, not \(delay) s")

            let past = try drover(["enqueue", "Now", "--at", "2020-01-01T00:00:00Z"], schema: schema)
            #expect(try state(of: past, store, db) == .ready)
            let future = try drover(["enqueue", "Then", "--at", "2999-01-01 03:00"], schema: schema)
            #expect(try state(of: future, store, db) == .scheduled)
        }
    }

    private func state(of outcome: DroverBinary.Outcome, _ store: PostgresJobStore, _ db: Connection) throws -> JobState? {
        let id = try #require(Int(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(outcome)")
        return try store.job(id, on: db)?.state
    }

    @Test("enqueue refuses bad input with exit 64 and a message naming the field, writing nothing", arguments: [
        (["X", "--args", "{nope"], "--args is not valid JSON"),
        (["X", "--args", "42"], "arguments must be a JSON object or array"),
        (["Bad Class"], "class \"Bad Class\" is not a valid class name"),
        (["X", "--queue", "no spaces"], "queue \"no spaces\" is not a valid queue name"),
        (["X", "--priority", "40000"], "priority 40000 is not an integer from -32768 to 32767"),
        (["X", "--priority", "high"], "The value 'high' is invalid for '--priority <n>'"),
        (["X", "--max-attempts", "0"], "max_attempts 0 is not an integer from 1 to 1000"),
        (["X", "--at", "tomorrow"], "--at \"tomorrow\" is not a time"),
        (["X", "--in", "10"], "--in \"10\" is not a duration; use 500ms, 30s, 5m, 1h30m or 2d"),
        (["X", "--at", "2030-01-01T00:00:00Z", "--in", "5m"], "give --at or --in, not both"),
        ([], "give the job's class, as in: drover enqueue SendReport"),
    ])
    func enqueueValidation(_ arguments: [String], _ message: String) throws {
        try withSchema { schema, store, db throws in
            let outcome = try drover(["enqueue"] + arguments, schema: schema)
            #expect(outcome.status == 64, "\(outcome)")
            #expect(outcome.stderr.contains(message), "\(outcome)")
            #expect(outcome.stdout.isEmpty)
            #expect(try store.listJobs(on: db).isEmpty)
        }
    }

    /// A ready, a scheduled, a claimed, a failed and a finished job.
    private func variety(_ store: PostgresJobStore, _ db: Connection) throws -> (ready: Int, scheduled: Int, claimed: Int, failed: Int, finished: Int) {
        let ids = try store.enqueue([
            NewJob("Ready", queue: "a"), NewJob("Sched", queue: "a", runAt: Date().addingTimeInterval(600)),
            NewJob("Claimed", queue: "b"), NewJob("Failed", queue: "b", maxAttempts: 1), NewJob("Finished", queue: "c"),
        ], on: db)
        _ = try store.claim(processID: 4, queues: ["b", "c"], limit: 3, on: db)
        _ = try store.fail(ids[3], processID: 4, error: JobFailure(errorClass: "CommandFailed", message: "exit 3", exitStatus: 3, output: "disk full"), on: db)
        try store.finish([ids[4]], processID: 4, on: db)
        return (ids[0], ids[1], ids[2], ids[3], ids[4])
    }

    @Test("jobs list shows a table or JSON, filtered; jobs show shows one job")
    func jobsCommands() throws {
        try withSchema { schema, store, db throws in
            let ids = try variety(store, db)
            let table = try drover(["jobs", "list"], schema: schema)
            #expect(table.status == 0, "\(table)")
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("ID  QUEUE  CLASS     STATE") == true, "\(table.stdout)")
            #expect(lines.count == 6)
            #expect(table.stdout.contains("running in process 4"))
            #expect(table.stdout.contains("CommandFailed: exit 3"))
            #expect(table.stdout.contains("runs at "))

            let failed = try drover(["jobs", "list", "--state", "failed", "--json"], schema: schema)
            let array = try #require(try JSONSerialization.jsonObject(with: Data(failed.stdout.utf8)) as? [[String: Any]])
            #expect(array.count == 1 && array[0]["id"] as? Int == ids.failed)
            #expect((array[0]["last_error"] as? [String: Any])?["exit_status"] as? Int == 3)

            #expect(try drover(["jobs", "list", "--queue", "a", "--limit", "1", "--json"], schema: schema).stdout.contains("\"id\":\(ids.scheduled)"))
            #expect(try drover(["jobs", "list", "--class", "Nope"], schema: schema).stdout == "No jobs.\n")

            let show = try drover(["jobs", "show", String(ids.failed)], schema: schema)
            #expect(show.status == 0)
            #expect(show.stdout.contains("state:      failed"))
            #expect(show.stdout.contains("last error: CommandFailed: exit 3 (exit status 3)"))
            #expect(show.stdout.contains("output (end):\n  disk full"))
            let showJSON = try drover(["jobs", "show", String(ids.ready), "--json"], schema: schema)
            #expect(showJSON.stdout.hasPrefix("{\"arguments\":{}"), "\(showJSON)")

            let missing = try drover(["jobs", "show", "987654"], schema: schema)
            #expect(missing.status == 65 && missing.stderr.contains("no job with id 987654"), "\(missing)")
            let badState = try drover(["jobs", "list", "--state", "done"], schema: schema)
            #expect(badState.status == 64 && badState.stderr.contains("--state \"done\" is not a state; use one of scheduled, ready, claimed, blocked, waiting, failed, finished"))
            let badLimit = try drover(["jobs", "list", "--limit", "0"], schema: schema)
            #expect(badLimit.status == 64 && badLimit.stderr.contains("--limit 0 is not from 1 to 100000"), "\(badLimit)")
        }
    }

    @Test("failed list, retry and discard; retrying or discarding what has not failed is an error")
    func failedCommands() throws {
        try withSchema { schema, store, db throws in
            let ids = try variety(store, db)
            let list = try drover(["failed", "list"], schema: schema)
            #expect(list.status == 0 && list.stdout.split(separator: "\n").count == 2, "\(list)")

            let wrong = try drover(["failed", "retry", String(ids.failed), String(ids.claimed)], schema: schema)
            #expect(wrong.status == 65, "\(wrong)")
            #expect(wrong.stderr.contains("only failed jobs can be retried: job \(ids.claimed) is claimed; nothing was retried"))
            #expect(try store.job(ids.failed, on: db)?.state == .failed)

            let retry = try drover(["failed", "retry", String(ids.failed)], schema: schema)
            #expect(retry.status == 0 && retry.stdout == "retried 1 job: \(ids.failed)\n", "\(retry)")
            #expect(try store.job(ids.failed, on: db)?.state == .ready)

            let discardClaimed = try drover(["failed", "discard", String(ids.claimed)], schema: schema)
            #expect(discardClaimed.status == 65)
            #expect(discardClaimed.stderr.contains("only failed jobs can be discarded: job \(ids.claimed) is claimed"))

            // Fail two jobs, then the --all forms.
            let more = try store.enqueue([NewJob("F", maxAttempts: 1), NewJob("F", maxAttempts: 1)], on: db)
            _ = try store.claim(processID: 5, queues: ["default"], limit: 2, on: db)
            for id in more { _ = try store.fail(id, processID: 5, error: JobFailure(errorClass: "E", message: "m"), on: db) }
            let all = try drover(["failed", "retry", "--all", "--json"], schema: schema)
            #expect(all.stdout == "{\"count\":2,\"skipped\":0}\n", "\(all)")
            _ = try store.claim(processID: 5, queues: ["default"], limit: 10, on: db)
            for id in more { _ = try store.fail(id, processID: 5, error: JobFailure(errorClass: "E", message: "m"), on: db) }
            let discard = try drover(["failed", "discard", String(more[0])], schema: schema)
            #expect(discard.stdout == "discarded 1 job: \(more[0])\n", "\(discard)")
            let discardAll = try drover(["failed", "discard", "--all"], schema: schema)
            #expect(discardAll.stdout == "discarded 1 job\n", "\(discardAll)")

            for (arguments, message) in [
                (["failed", "retry"], "name the failed jobs by id, select them with filters (--queue, --class, --error, …), or pass --all"),
                (["failed", "discard", "1", "--all"], "give job ids, --all or filters, only one of them"),
                (["failed", "discard", "1", "--queue", "mail"], "give job ids, --all or filters, only one of them"),
                (["failed", "retry", "x"], "The value 'x' is invalid for '<ids>'"),
            ] {
                let outcome = try drover(arguments, schema: schema)
                #expect(outcome.status == 64 && outcome.stderr.contains(message), "\(outcome)")
            }
            let missing = try drover(["failed", "discard", "987654"], schema: schema)
            #expect(missing.status == 65 && missing.stderr.contains("no job with id 987654"))
        }
    }

    @Test("queues list, pause, resume and clear")
    func queuesCommands() throws {
        try withSchema { schema, store, db throws in
            _ = try variety(store, db)
            #expect(try drover(["queues", "pause", "a"], schema: schema).stdout == "paused queue a\n")
            #expect(try drover(["queues", "pause", "a"], schema: schema).stdout == "queue a was paused already\n")
            let table = try drover(["queues", "list"], schema: schema)
            #expect(table.status == 0)
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "QUEUE  READY  SCHEDULED  CLAIMED  BLOCKED  FAILED  OLDEST READY  PAUSED")
            #expect(lines.count == 3, "a and b (c has only a finished job)")
            #expect(lines[1].hasPrefix("a      1      1          0        0        0       ") && lines[1].hasSuffix("yes"), "\(lines[1])")
            #expect(lines[2].hasPrefix("b      0      0          1        0        1") && lines[2].hasSuffix("no"), "\(lines[2])")
            let json = try drover(["queues", "list", "--json"], schema: schema)
            let queues = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(queues.map { $0["name"] as? String } == ["a", "b"])
            #expect(queues[0]["paused"] as? Bool == true && queues[1]["claimed"] as? Int == 1)

            #expect(try drover(["queues", "resume", "a"], schema: schema).stdout == "resumed queue a\n")
            #expect(try drover(["queues", "resume", "a"], schema: schema).stdout == "queue a was not paused\n")
            let clear = try drover(["queues", "clear", "a"], schema: schema)
            #expect(clear.stdout == "cleared queue a: deleted 1 ready and 1 scheduled jobs\n", "\(clear)")
            #expect(try drover(["queues", "clear", "a", "--json"], schema: schema).stdout == "{\"queue\":\"a\",\"ready\":0,\"scheduled\":0}\n")
            let bad = try drover(["queues", "pause", "no spaces"], schema: schema)
            #expect(bad.status == 64 && bad.stderr.contains("queue \"no spaces\" is not a valid queue name"), "\(bad)")
            #expect(try drover(["queues", "list"], schema: TestDatabase.uniqueSchemaName()).status == 69)
        }
    }

    @Test("classes pause, list and resume; a name that is no job class is bad usage")
    func classesCommands() throws {
        try withSchema { schema, store, db throws in
            _ = try store.enqueue([NewJob("Sync", queue: "a"), NewJob("Sync", queue: "b"), NewJob("Mail", queue: "a")], on: db)
            #expect(try drover(["classes", "list"], schema: schema).stdout == "No job class is paused.\n")
            #expect(try drover(["classes", "pause", "Sync"], schema: schema).stdout == "paused class Sync\n")
            #expect(try drover(["classes", "pause", "Sync"], schema: schema).stdout == "class Sync was paused already\n")
            let table = try drover(["classes", "list"], schema: schema).stdout.split(separator: "\n").map(String.init)
            #expect(table.count == 2 && table[0].hasPrefix("CLASS") && table[1].hasPrefix("Sync") && table[1].hasSuffix(" 2"), "\(table)")
            let json = try drover(["classes", "list", "--json"], schema: schema)
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
            #expect(entries.count == 1 && entries[0]["class"] as? String == "Sync" && entries[0]["ready"] as? Int == 2)
            #expect(try store.claim(processID: 1, queues: ["*"], limit: 10, on: db).map(\.className) == ["Mail"])
            #expect(try drover(["classes", "resume", "Sync"], schema: schema).stdout == "resumed class Sync\n")
            #expect(try drover(["classes", "resume", "Sync"], schema: schema).stdout == "class Sync was not paused\n")
            #expect(try store.claim(processID: 1, queues: ["*"], limit: 10, on: db).map(\.className) == ["Sync", "Sync"])
            let bad = try drover(["classes", "pause", "no spaces"], schema: schema)
            #expect(bad.status == 64 && bad.stderr.contains("no spaces"), "\(bad)")
        }
    }

    /// The listing reads `rateLimitRules` and `rateLimitKeys`, whose store scenarios run on both
    /// backends; this is the command's table and JSON over either, here on a SQLite file too.
    @Test("rate-limits lists the rules and each key's starts and waiting jobs, as a table and as JSON, on either database")
    func rateLimitsCommand() throws {
        func check(_ store: some QueueStoreForTests, run: ([String]) throws -> DroverBinary.Outcome) throws {
            #expect(try run(["rate-limits"]).stdout == "No rate limits.\n")
            try store.sync([RateLimitRule(className: "Call", keyTemplate: "api:{region}", limit: 2, period: .seconds(60))])
            let ids = try store.enqueue((0..<5).map { _ in NewJob("Call", arguments: try JSON(validating: #"{"region": "eu"}"#)) })
            #expect(try store.claimAll() == 2)
            let lines = try run(["rate-limits", "list"]).stdout.split(separator: "\n").map(String.init)
            // The rules, a blank line, the keys in use.
            try #require(lines.count == 4, "\(lines)")
            #expect(lines[0].hasPrefix("CLASS") && lines[1].hasPrefix("Call") && lines[1].contains("api:{region}") && lines[1].hasSuffix("1m"))
            #expect(lines[2].hasPrefix("KEY") && lines[3].hasPrefix("api:eu"), "\(lines)")
            #expect(lines[3].split(separator: " ", omittingEmptySubsequences: true).prefix(5) == ["api:eu", "2", "2", "1m", "3"], "\(lines[3])")
            let json = try run(["rate-limits", "--json"])
            let listing = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let keys = try #require(listing["keys"] as? [[String: Any]])
            #expect(keys.count == 1 && keys[0]["key"] as? String == "api:eu" && keys[0]["started"] as? Int == 2 && keys[0]["waiting"] as? Int == 3)
            #expect(keys[0]["last_waiting_at"] as? String != nil)
            #expect((listing["rules"] as? [[String: Any]])?.first?["period_seconds"] as? Double == 60)
            // jobs show says what a waiting job waits for.
            let shown = try run(["jobs", "show", String(ids[4])])
            #expect(shown.stdout.contains("state:      scheduled") && shown.stdout.contains("waits for:  its start under the rate limit of key api:eu"),
                    "\(shown)")
            let shownJSON = try run(["jobs", "show", String(ids[4]), "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(shownJSON.stdout.utf8)) as? [String: Any])
            #expect((object["rate_limit"] as? [String: Any])?["key"] as? String == "api:eu", "\(shownJSON)")
            #expect(!(try run(["jobs", "show", String(ids[0])]).stdout.contains("waits for")))
        }
        try withSchema { schema, store, db throws in
            try check(Bound(store: store, db: db)) { try drover($0, schema: schema) }
        }
        let directory = try TemporaryDirectory("drover-rate-cli")
        let url = "sqlite://" + directory.url.appendingPathComponent("drover.sqlite3").path
        let (store, db) = try SQLiteDriver.open(url: url, options: StoreOptions(migrating: .always))
        try check(Bound(store: store, db: db)) { try DroverBinary.run($0, environment: ["DROVER_DATABASE_URL": url]) }
    }

    @Test("a schema that was never migrated is named, with the command that fixes it")
    func notMigrated() throws {
        let outcome = try drover(["jobs", "list"], schema: TestDatabase.uniqueSchemaName())
        #expect(outcome.status == 69, "\(outcome)")
        #expect(outcome.stderr.contains("does not have Drover's tables") && outcome.stderr.contains("run: drover migrate"))
    }
}

/// A store and its connection, of either backend, for the commands' tests.
protocol QueueStoreForTests {
    func sync(_ rules: [RateLimitRule]) throws
    func enqueue(_ jobs: [NewJob]) throws -> [Int]
    /// Claims as a worker would; returns how many started.
    func claimAll() throws -> Int
}

struct Bound<Driver: StoreDriver>: QueueStoreForTests {
    let store: JobStore<Driver>
    let db: Driver.Database
    func sync(_ rules: [RateLimitRule]) throws { try store.syncRateLimitRules(rules, on: db) }
    func enqueue(_ jobs: [NewJob]) throws -> [Int] { try store.enqueue(jobs, on: db) }
    func claimAll() throws -> Int { try store.claim(processID: 1, queues: ["*"], limit: 10, on: db).count }
}
