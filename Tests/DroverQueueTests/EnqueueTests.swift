import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Enqueue")
struct EnqueueTests {
    @Test("a due job is ready at once, a future one scheduled; ids come back in order")
    func dueAndFuture() throws {
        try withStore { store, db throws in
            let now = try store.enqueue(NewJob("SendReport", arguments: .object(#"{"id": 1}"#)), on: db)
            let later = try store.enqueue(NewJob("SendReport", runAt: Date().addingTimeInterval(3600)), on: db)
            let past = try store.enqueue(NewJob("SendReport", runAt: Date().addingTimeInterval(-3600)), on: db)
            let inAMinute = try store.enqueue(NewJob("SendReport", runIn: .seconds(60)), on: db)
            let runsAt = try #require(try store.job(inAMinute, on: db)?.nextRunAt)
            #expect((55...61).contains(runsAt.timeIntervalSinceNow))
            #expect(now < later && later < past)
            #expect(try state(store, now, db) == .ready)
            #expect(try state(store, later, db) == .scheduled)
            #expect(try state(store, past, db) == .ready)
            let job = try #require(try store.job(now, on: db))
            #expect(job.queue == "default" && job.className == "SendReport" && job.priority == 0 && job.maxAttempts == 5)
            #expect(job.arguments == .object(#"{"id": 1}"#))
            try expectInvariant(store, db)
        }
    }

    @Test("bulk enqueue writes many jobs in one statement and returns their ids in input order")
    func bulk() throws {
        try withStore { store, db throws in
            let jobs = (0..<1000).map { i in
                NewJob("Bulk", arguments: .object("[\(i)]"), queue: i % 2 == 0 ? "even" : "odd", priority: i % 7,
                       runAt: i % 10 == 0 ? Date().addingTimeInterval(600) : nil, maxAttempts: 1 + i % 3)
            }
            let ids = try store.enqueue(jobs, on: db)
            #expect(ids.count == 1000)
            #expect(ids == ids.sorted())
            let rows = try db.query("SELECT id, arguments, queue_name, priority, max_attempts FROM \(store.schema.qualifying("jobs")) ORDER BY id")
            for (i, row) in rows.enumerated() {
                #expect(try row.decode("id", as: Int.self) == ids[i])
                #expect(try row.decode("arguments", as: JSON.self) == .object("[\(i)]"))
                #expect(try row.decode("queue_name", as: String.self) == (i % 2 == 0 ? "even" : "odd"))
                #expect(try row.decode("priority", as: Int.self) == i % 7)
                #expect(try row.decode("max_attempts", as: Int.self) == 1 + i % 3)
            }
            #expect(try count(store, "scheduled_executions", db) == 100)
            #expect(try count(store, "ready_executions", db) == 900)
            try expectInvariant(store, db)
        }
    }

    @Test("enqueue wakes listeners once per queue per statement, not once per job")
    func oneNotificationPerQueue() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            let jobs = (0..<500).map { NewJob("Wake", queue: $0 % 2 == 0 ? "a" : "b") }
            try store.enqueue(jobs, on: db)
            var payloads: [String] = []
            try waitUntil("two notifications arrived") {
                payloads += try listener.waitForNotifications(timeout: .milliseconds(100)).map(\.payload)
                return payloads.count >= 2
            }
            // Anything more would have arrived with the first ones: they are sent together at commit.
            payloads += try listener.waitForNotifications(timeout: .milliseconds(200)).map(\.payload)
            #expect(payloads.sorted() == ["a", "b"])

            // Only scheduled jobs: nothing for a worker to do yet, so no wake-up.
            try store.enqueue([NewJob("Later", queue: "a", runAt: Date().addingTimeInterval(600))], on: db)
            #expect(try listener.waitForNotifications(timeout: .milliseconds(200)).isEmpty)
        }
    }

    @Test("enqueue inside the caller's transaction rolls back with it, and commits with it")
    func followsCallerTransaction() throws {
        struct Abort: Error {}
        try withStore { store, db throws in
            #expect(throws: Abort.self) {
                try db.withTransaction { db in
                    try store.enqueue(NewJob("Rolled"), on: db)
                    try store.enqueue([NewJob("Rolled"), NewJob("Back")], on: db)
                    throw Abort()
                }
            }
            #expect(try count(store, "jobs", db) == 0)
            #expect(try count(store, "ready_executions", db) == 0)
            let id = try db.withTransaction { db in try store.enqueue(NewJob("Kept"), on: db) }
            #expect(try state(store, id, TestDatabase.connect()) == .ready)
        }
    }

    @Test("a bad job throws before anything is sent, so the caller's transaction carries on")
    func validationKeepsCallerTransaction() throws {
        try withStore { store, db throws in
            try db.withTransaction { db in
                #expect(throws: QueueError.self) { try store.enqueue(NewJob("Bad Class"), on: db) }
                try store.enqueue(NewJob("Good"), on: db)
            }
            #expect(try count(store, "jobs", db) == 1)
            // In a batch, one bad job means none is written.
            let error = #expect(throws: QueueError.self) {
                try store.enqueue([NewJob("Good"), NewJob("Good", queue: "no spaces")], on: db)
            }
            #expect(error?.message.hasPrefix("job 2: queue") == true)
            #expect(try count(store, "jobs", db) == 1)
        }
    }
}

/// The rules of JobRules (Swift) and of enqueue_many (SQL) must agree: each bad job is refused by
/// both, naming the same field, and each boundary job is accepted by both.
@Suite("Job rules, in Swift and in SQL")
struct JobRuleTests {
    static let megabyteString = String(repeating: "x", count: JobRules.maxArgumentsBytes - 8)

    static let bad: [(job: NewJob, json: String, field: String)] = [
        (NewJob(""), #"{"class": ""}"#, "class"),
        (NewJob("Send Report"), #"{"class": "Send Report"}"#, "class"),
        (NewJob("1Report"), #"{"class": "1Report"}"#, "class"),
        (NewJob(String(repeating: "C", count: 201)), #"{"class": "\#(String(repeating: "C", count: 201))"}"#, "class"),
        (NewJob("R", queue: ""), #"{"class": "R", "queue": ""}"#, "queue"),
        (NewJob("R", queue: "mail*"), #"{"class": "R", "queue": "mail*"}"#, "queue"),
        (NewJob("R", queue: "-x"), #"{"class": "R", "queue": "-x"}"#, "queue"),
        (NewJob("R", queue: "ünïcode"), #"{"class": "R", "queue": "ünïcode"}"#, "queue"),
        (NewJob("R", queue: String(repeating: "q", count: 101)), #"{"class": "R", "queue": "\#(String(repeating: "q", count: 101))"}"#, "queue"),
        (NewJob("R", arguments: .object("42")), #"{"class": "R", "arguments": 42}"#, "arguments"),
        (NewJob("R", arguments: .object(#""text""#)), #"{"class": "R", "arguments": "text"}"#, "arguments"),
        (NewJob("R", arguments: .object("[\"\(megabyteString)xxxxxxxxxx\"]")), #"{"class": "R", "arguments": ["\#(megabyteString)xxxxxxxxxx"]}"#, "arguments"),
        (NewJob("R", priority: 32768), #"{"class": "R", "priority": 32768}"#, "priority"),
        (NewJob("R", priority: -32769), #"{"class": "R", "priority": -32769}"#, "priority"),
        (NewJob("R", maxAttempts: 0), #"{"class": "R", "max_attempts": 0}"#, "max_attempts"),
        (NewJob("R", maxAttempts: 1001), #"{"class": "R", "max_attempts": 1001}"#, "max_attempts"),
        (NewJob("R", timeout: .milliseconds(999)), #"{"class": "R", "timeout": 0.999}"#, "timeout"),
        (NewJob("R", timeout: .seconds(604_801)), #"{"class": "R", "timeout": 604801}"#, "timeout"),
        (NewJob("R", uniqueKey: ""), #"{"class": "R", "unique_key": ""}"#, "unique_key"),
        (NewJob("R", uniqueKey: String(repeating: "é", count: 1001)), #"{"class": "R", "unique_key": "\#(String(repeating: "é", count: 1001))"}"#, "unique_key"),
    ]

    static let boundary: [(job: NewJob, json: String)] = [
        (NewJob("R", priority: 32767), #"{"class": "R", "priority": 32767}"#),
        (NewJob("R", priority: -32768), #"{"class": "R", "priority": -32768}"#),
        (NewJob("R", maxAttempts: 1), #"{"class": "R", "max_attempts": 1}"#),
        (NewJob("R", maxAttempts: 1000), #"{"class": "R", "max_attempts": 1000}"#),
        (NewJob("Mail::Deliver-v2.now", queue: "_x.y:z-0"), #"{"class": "Mail::Deliver-v2.now", "queue": "_x.y:z-0"}"#),
        (NewJob("R", queue: "0"), #"{"class": "R", "queue": "0"}"#),
        (NewJob(String(repeating: "C", count: 200), queue: String(repeating: "q", count: 100)),
         #"{"class": "\#(String(repeating: "C", count: 200))", "queue": "\#(String(repeating: "q", count: 100))"}"#),
        (NewJob("R", arguments: .object("[\"\(megabyteString)\"]")), #"{"class": "R", "arguments": ["\#(megabyteString)"]}"#),
        (NewJob("R", arguments: .object("[]")), #"{"class": "R", "arguments": []}"#),
        (NewJob("R", timeout: .seconds(1)), #"{"class": "R", "timeout": 1}"#),
        (NewJob("R", timeout: .milliseconds(1500)), #"{"class": "R", "timeout": 1.5}"#),
        (NewJob("R", timeout: .seconds(604_800)), #"{"class": "R", "timeout": 604800}"#),
        (NewJob("R", uniqueKey: String(repeating: "é", count: 1000)), #"{"class": "R", "unique_key": "\#(String(repeating: "é", count: 1000))"}"#),
    ]

    @Test("bad jobs are refused by both, naming the same field, and nothing is written")
    func badJobs() throws {
        try withStore { store, db throws in
            for (job, json, field) in Self.bad {
                let swift = #expect(throws: QueueError.self) { try store.enqueue(job, on: db) }
                #expect(swift?.code == .invalidJob)
                #expect(swift?.field == field, "Swift, \(json.prefix(60))")
                let sql = #expect(throws: DatabaseError.self) {
                    try db.query("SELECT \(store.schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: "[\(json)]")))")
                }
                #expect(sql?.sqlState == "22023")
                #expect(sql?.column == field, "SQL, \(json.prefix(60)): \(sql?.message ?? "")")
                #expect(sql?.message.contains(field) == true)
            }
            #expect(try count(store, "jobs", db) == 0)
        }
    }

    @Test("jobs at the edges of the rules are accepted by both")
    func boundaryJobs() throws {
        try withStore { store, db throws in
            for (job, json) in Self.boundary {
                #expect(throws: Never.self, "Swift, \(json.prefix(60))") { try store.enqueue(job, on: db) }
                #expect(throws: Never.self, "SQL, \(json.prefix(60))") {
                    try db.query("SELECT \(store.schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: "[\(json)]")))")
                }
            }
            // The job with a unique key was enqueued once: the second time it is the same job.
            #expect(try count(store, "jobs", db) == 2 * Self.boundary.count - 1)
        }
    }

    @Test("the SQL function refuses what only SQL callers can send: unknown keys, wrong types, bad times")
    func sqlOnlyMistakes() throws {
        try withStore { store, db throws in
            for (json, field) in [
                (#"[{"class": "R", "queu": "x"}]"#, "job"),
                (#"[42]"#, "job"),
                (#"[{"arguments": {}}]"#, "class"),
                (#"[{"class": "R", "priority": "high"}]"#, "priority"),
                (#"[{"class": "R", "priority": 1.5}]"#, "priority"),
                (#"[{"class": "R", "run_at": "tomorrow"}]"#, "run_at"),
                (#"[{"class": "R", "run_at": "2026-02-30 25:00"}]"#, "run_at"),
                (#"[{"class": "R", "timeout": "5m"}]"#, "timeout"),
                (#"[{"class": "R", "timeout": 1.0001}]"#, "timeout"),
                (#"[{"class": "R", "timeout": -3}]"#, "timeout"),
                (#"{"class": "R"}"#, "new_jobs"),
            ] {
                let error = #expect(throws: DatabaseError.self) {
                    try db.query("SELECT \(store.schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: json)))")
                }
                #expect(error?.column == field, "\(json): \(error?.message ?? "")")
            }
            // A batch with one bad job writes nothing.
            #expect(throws: DatabaseError.self) {
                try db.query("SELECT \(store.schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: #"[{"class": "A"}, {"class": "B", "queue": "bad queue"}]"#)))")
            }
            #expect(try count(store, "jobs", db) == 0)
        }
    }

    @Test("drover.enqueue works from psql, inside the caller's transaction")
    func fromPsql() throws {
        try withStore { store, db throws in
            let schema = store.schema.parts[0]
            let url = try TestDatabase.url()
            let psql = Process()
            psql.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            psql.arguments = [url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", """
                BEGIN;
                SELECT \(schema).enqueue('SendReport', '{"kind": "nightly", "note": null}', queue_name => 'mail', priority => -5);
                SELECT \(schema).enqueue('Later', run_at => now() + interval '1 hour', timeout => interval '90 seconds');
                SELECT count(*) FROM \(schema).enqueue_many('[{"class": "A"}, {"class": "B", "queue": "mail"}]');
                COMMIT;
                BEGIN;
                SELECT \(schema).enqueue('Discarded');
                ROLLBACK;
                """]
            let out = Pipe()
            psql.standardOutput = out
            try psql.run()
            psql.waitUntilExit()
            #expect(psql.terminationStatus == 0)
            let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .split(separator: "\n")
            #expect(printed.count == 4, "\(printed)")
            let first = try #require(Int(printed[0]))
            let job = try #require(try store.job(first, on: db))
            #expect(job.queue == "mail" && job.priority == -5 && job.state == .ready)
            #expect(job.arguments == .object(#"{"kind": "nightly", "note": null}"#))
            #expect(try state(store, try #require(Int(printed[1])), db) == .scheduled)
            let timeout = try db.query("SELECT extract(epoch FROM timeout)::float8 AS t FROM \(store.schema.qualifying("jobs")) WHERE id = \(try #require(Int(printed[1])))")
            #expect(try timeout[0].decode("t", as: Double.self) == 90)
            #expect(printed[2] == "2")
            #expect(try count(store, "jobs", db) == 4, "the rolled-back enqueue left nothing")
            try expectInvariant(store, db)
        }
    }
}
