import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The rules of JobRules (Swift) and of enqueue_many (SQL) must agree: each bad job is refused by
/// both, naming the same field, and each boundary job is accepted by both.
@Suite("PostgreSQL only: the SQL enqueue functions keep the rules of JobRules")
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
        // Values past the edge of every type: a usage error (22023) naming the field, never a
        // trap in Swift nor another SQLSTATE in SQL.
        (NewJob("R", priority: .max), #"{"class": "R", "priority": 9223372036854775807}"#, "priority"),
        (NewJob("R", priority: .min), #"{"class": "R", "priority": -99999999999999999999999}"#, "priority"),
        (NewJob("R", maxAttempts: .max), #"{"class": "R", "max_attempts": 1e300}"#, "max_attempts"),
        (NewJob("R", timeout: .seconds(Int64.max)), #"{"class": "R", "timeout": 1e300}"#, "timeout"),
        (NewJob("R", runAt: Date(timeIntervalSince1970: 253_402_300_800)), #"{"class": "R", "run_at": "10000-01-01T00:00:00Z"}"#, "run_at"),
        (NewJob("R", runAt: Date(timeIntervalSince1970: 1e300)), #"{"class": "R", "run_at": "infinity"}"#, "run_at"),
        (NewJob("R", runAt: Date(timeIntervalSince1970: -1e300)), #"{"class": "R", "run_at": "-infinity"}"#, "run_at"),
        (NewJob("R", runAt: Date(timeIntervalSince1970: -62_135_596_801)), #"{"class": "R", "run_at": "0001-12-31T23:59:59Z BC"}"#, "run_at"),
        (NewJob("R", timeout: .seconds(604_801)), #"{"class": "R", "timeout": 604801}"#, "timeout"),
        (NewJob("R", uniqueKey: ""), #"{"class": "R", "unique_key": ""}"#, "unique_key"),
        (NewJob("R", uniqueKey: String(repeating: "é", count: 1001)), #"{"class": "R", "unique_key": "\#(String(repeating: "é", count: 1001))"}"#, "unique_key"),
        // Keys and values together, in bytes (migration 8): one byte over.
        (NewJob("R", traceContext: ["b": String(repeating: "é", count: JobRules.maxTraceContextBytes / 2)]),
         #"{"class": "R", "trace_context": {"b": "\#(String(repeating: "é", count: JobRules.maxTraceContextBytes / 2))"}}"#, "trace_context"),
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
        (NewJob("R", runAt: Date(timeIntervalSince1970: 253_402_300_799)), #"{"class": "R", "run_at": "9999-12-31T23:59:59Z"}"#),
        (NewJob("R", runAt: Date(timeIntervalSince1970: -62_135_596_800)), #"{"class": "R", "run_at": "0001-01-01T00:00:00Z"}"#),
        (NewJob("R", uniqueKey: String(repeating: "é", count: 1000)), #"{"class": "R", "unique_key": "\#(String(repeating: "é", count: 1000))"}"#),
        (NewJob("R", traceContext: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1"]),
         #"{"class": "R", "trace_context": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=1"}}"#),
        (NewJob("R", traceContext: ["b": String(repeating: "x", count: JobRules.maxTraceContextBytes - 1)]),
         #"{"class": "R", "trace_context": {"b": "\#(String(repeating: "x", count: JobRules.maxTraceContextBytes - 1))"}}"#),
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
                (#"[{"class": "R", "trace_context": "traceparent=00-…"}]"#, "trace_context"),
                (#"[{"class": "R", "trace_context": null}]"#, "trace_context"),
                (#"[{"class": "R", "trace_context": [["traceparent", "x"]]}]"#, "trace_context"),
                (#"[{"class": "R", "trace_context": {"traceparent": "x", "sampled": true}}]"#, "trace_context"),
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
            // Every insert counts as enqueued (a statement trigger), whoever makes it; a rollback counts nothing.
            let metrics = try store.metrics(on: db)
            #expect(metrics.count(.enqueued, queue: "mail", className: "SendReport") == 1)
            #expect(metrics.count(.enqueued, queue: "mail", className: "B") == 1)
            #expect(metrics.total(.enqueued) == 4)
            try expectInvariant(store, db)
        }
    }

    // PostgreSQL only: the SQL functions are PostgreSQL's (SQLite has no stored functions).
    @Test("enqueue_batch enqueues a batch and its jobs from SQL, in the caller's transaction; its callback comes once it is done; bad batches are refused")
    func batchFromSQL() throws {
        try withStore { store, db throws in
            let rows = try db.query("""
                SELECT batch_id, job_id FROM \(store.schema).enqueue_batch(
                    '{"description": "album 7", "on_complete": "NotifyAlbum", "callback_queue": "hooks"}',
                    '[{"class": "Thumb", "arguments": {"n": 1}}, {"class": "Thumb", "arguments": {"n": 2}, "queue": "img"}]')
                """)
            #expect(rows.count == 2)
            let batch = try rows[0].decode("batch_id", as: Int.self)
            let ids = try rows.map { try $0.decode("job_id", as: Int.self) }
            let info = try #require(try store.batch(batch, on: db))
            #expect(info.total == 2 && info.pending == 2 && info.description == "album 7" && info.onComplete == "NotifyAlbum")
            #expect(try ids.map { try store.job($0, on: db)?.batchID } == [batch, batch])
            _ = try store.claim(processID: 1, queues: ["*"], limit: 2, on: db)
            try store.finish(ids, processID: 1, on: db)
            let callback = try #require(try store.listJobs(queue: "hooks", limit: 10, on: db).first)
            let completeJob = try store.batch(batch, on: db)?.completeJobID
            #expect(callback.className == "NotifyAlbum" && completeJob == callback.id)
            for (batchJSON, jobs, message) in [
                (#"{"on_complete": "no spaces"}"#, #"[{"class": "A"}]"#, "on_complete: \"no spaces\" is not a valid class name"),
                (#"{"colour": "red"}"#, #"[{"class": "A"}]"#, "unknown key colour"),
                (#"{}"#, #"[]"#, "a batch needs at least one job"),
                (#"{}"#, #"[{"class": "A", "unique_key": "k"}]"#, "cannot have a unique key"),
                (#"{}"#, #"[{"class": "A"}, {"class": "bad class"}]"#, "is not a valid class name"),
            ] {
                do {
                    _ = try db.query("SELECT * FROM \(store.schema).enqueue_batch(\(DatabaseValue(type: .jsonb, text: batchJSON)), \(DatabaseValue(type: .jsonb, text: jobs)))")
                    Issue.record("\(batchJSON) \(jobs) was enqueued")
                } catch let error as DatabaseError {
                    #expect(error.message.contains(message) && error.sqlState == "22023", "\(error.message)")
                }
            }
            #expect(try count(store, "batches", db) == 1, "a refused batch writes nothing")
            try expectInvariant(store, db)
        }
    }

    @Test("a job with a concurrency key enqueued through SQL is admitted by the dispatcher, by the store's rules (migration 5)")
    func keyedJobsThroughSQL() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules(
                [ConcurrencyRule(className: "Sync", keyTemplate: "account:{account}", maxRunning: 1, duration: .seconds(60))], on: db)
            let ids = try db.query("""
                SELECT id FROM \(store.schema).enqueue_many(\(DatabaseValue(type: .jsonb, text: #"[{"class": "Sync", "arguments": {"account": 1}}, {"class": "Sync", "arguments": {"account": 1}}, {"class": "Plain"}]"#))) AS id
                """).map { try $0.decode("id", as: Int.self) }
            #expect(try ids.map { try state(store, $0, db) } == [.scheduled, .scheduled, .ready], "the keyed ones wait for the dispatcher")
            #expect(try store.dispatchDue(on: db) == 2)
            #expect(try ids.map { try state(store, $0, db) } == [.ready, .blocked, .ready])
            #expect(try store.concurrencyKeys(on: db).map(\.key) == ["account:1"])
            try expectInvariant(store, db)
        }
    }
}
