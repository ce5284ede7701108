import Drover
import DroverPostgresNIO
import DroverQueue
import DroverTestSupport
import DroverTesting
import Foundation
import InMemoryTracing
import PostgresNIO
import Testing
import Tracing

// A time limit: these tests await postgres-nio, whose queries wait for a connection without end;
// past it the test is cancelled and fails rather than holding up the whole run.
@Suite("DroverPostgresNIO: typed jobs enqueued in a postgres-nio transaction", .timeLimit(.minutes(5)))
struct PostgresNIOEnqueueTests {
    let logger = NIODatabase.logger

    @Test("committed: the job exists with its type's defaults, beside the app's row, and runs")
    func commitKeepsJobWithDefaults() async throws {
        try await NIOScene.with { scene, db in
            let (noteID, jobID) = try await scene.client.withTransaction(logger: logger) { connection in
                let noteID = try await scene.insertNote("hello", on: connection)
                let jobID = try await connection.enqueue(PublishNote(noteID: noteID, text: "hello"), schema: scene.schema)
                return (noteID, jobID)
            }
            let job = try #require(try scene.store.job(jobID, on: db))
            #expect(job.className == "PublishNote" && job.queue == "notes" && job.priority == 7 && job.maxAttempts == 3)
            #expect(job.state == .ready)
            #expect(try scene.row(jobID, db)["timeout"] == "45.000000")
            #expect(try job.arguments?.decode(PublishNote.self).noteID == noteID)

            let ledger = Ledger()
            let summary = try await JobDrain(url: try TestDatabase.url(), schema: scene.schema, jobs: [PublishNote.self], services: ledger).run()
            #expect(summary.finished == [jobID], "\(summary)")
            #expect(ledger.all == ["published \(noteID): hello"])
        }
    }

    @Test("rolled back (the closure throws): neither the app's row nor the job exists")
    func rollbackLeavesNothing() async throws {
        struct Abandon: Error {}
        try await NIOScene.with { (scene: NIOScene, db: Connection) async throws -> Void in
            let error = await #expect(throws: PostgresTransactionError.self) {
                try await scene.client.withTransaction(logger: logger) { connection in
                    let noteID = try await scene.insertNote("draft", on: connection)
                    try await connection.enqueue(PublishNote(noteID: noteID, text: "draft"), schema: scene.schema)
                    throw Abandon()
                }
            }
            #expect(error?.closureError is Abandon && error?.rollbackError == nil)
            #expect(try scene.count("notes", db) == 0)
            #expect(try scene.count("jobs", db) == 0)
            #expect(try scene.count("ready_executions", db) == 0)
        }
    }

    @Test("options given to enqueue win over the type's defaults; runIn schedules")
    func overridesWin() async throws {
        try await NIOScene.with { scene, db in
            let ids = try await scene.client.withTransaction(logger: logger) { connection in
                [
                    try await connection.enqueue(
                        PublishNote(noteID: 1, text: "x"), queue: "urgent", priority: -3, maxAttempts: 9, timeout: .milliseconds(1500),
                        schema: scene.schema, logger: logger),
                    try await connection.enqueue(PublishNote(noteID: 2, text: "y"), runIn: .seconds(3600), schema: scene.schema),
                    try await connection.enqueue(Plain(n: 1), schema: scene.schema),
                ]
            }
            let first = try scene.row(ids[0], db)
            #expect(first["queue_name"] == "urgent" && first["priority"] == "-3" && first["max_attempts"] == "9")
            #expect(first["timeout"] == "1.500000")
            let later = try #require(try scene.store.job(ids[1], on: db))
            #expect(later.state == .scheduled && later.queue == "notes")
            let nextRun = try #require(later.nextRunAt)
            #expect(abs(nextRun.timeIntervalSinceNow - 3600) < 120)
            let plain = try scene.row(ids[2], db)
            #expect(plain["queue_name"] == "default" && plain["priority"] == "0" && plain["max_attempts"] == "5" && plain["timeout"] == "none")
        }
    }

    @Test("a unique key held by a live job returns that job's id, in the same batch and in a later transaction")
    func uniqueKeyReturnsLiveJob() async throws {
        try await NIOScene.with { scene, db in
            let batch = try await scene.client.withTransaction(logger: logger) { connection in
                try await connection.enqueue([
                    PublishNote(noteID: 1, text: "a", key: "note:1"), PublishNote(noteID: 2, text: "b"),
                    PublishNote(noteID: 1, text: "again", key: "note:1"),
                ], schema: scene.schema)
            }
            #expect(batch.count == 3 && batch[0] == batch[2] && batch[1] != batch[0])
            let later = try await scene.client.withTransaction(logger: logger) { connection in
                try await connection.enqueue(PublishNote(noteID: 1, text: "later", key: "note:1"), schema: scene.schema)
            }
            #expect(later == batch[0])
            #expect(try scene.count("jobs", db) == 2)
            #expect(try scene.row(batch[0], db)["unique_key"] == "note:1")
            // Once that job is done, the key is free again.
            _ = try await JobDrain(url: try TestDatabase.url(), schema: scene.schema, jobs: [PublishNote.self], services: Ledger()).run()
            let fresh = try await scene.client.enqueue(PublishNote(noteID: 1, text: "new", key: "note:1"), schema: scene.schema)
            #expect(fresh != batch[0])
        }
    }

    @Test("a job that breaks the rules throws QueueError naming the field before anything is sent: the same transaction commits its other work")
    func invalidJobKeepsTransaction() async throws {
        try await NIOScene.with { scene, db in
            let huge = String(repeating: "x", count: JobRules.maxArgumentsBytes)
            let cases: [(String, (PostgresConnection) async throws -> Int)] = [
                ("queue", { try await $0.enqueue(Plain(n: 1), queue: "no spaces", schema: scene.schema) }),
                ("queue", { try await $0.enqueue(Plain(n: 1), queue: "mail*", schema: scene.schema) }),
                ("priority", { try await $0.enqueue(Plain(n: 1), priority: 40_000, schema: scene.schema) }),
                ("max_attempts", { try await $0.enqueue(Plain(n: 1), maxAttempts: 0, schema: scene.schema) }),
                ("timeout", { try await $0.enqueue(Plain(n: 1), timeout: .milliseconds(10), schema: scene.schema) }),
                ("run_at", { try await $0.enqueue(Plain(n: 1), runAt: Date(timeIntervalSince1970: 1e15), schema: scene.schema) }),
                ("arguments", { try await $0.enqueue(PublishNote(noteID: 1, text: huge), schema: scene.schema) }),
                ("arguments", { try await $0.enqueue(PublishNote(noteID: 1, text: "a\u{0}b"), schema: scene.schema) }),
                ("unique_key", { try await $0.enqueue(PublishNote(noteID: 1, text: "k", key: ""), schema: scene.schema) }),
                ("unique_key", { try await $0.enqueue(NULKey(), schema: scene.schema) }),
            ]
            let noteID = try await scene.client.withTransaction(logger: logger) { connection in
                for (field, enqueue) in cases {
                    let error = await #expect(throws: QueueError.self, "\(field)") { try await enqueue(connection) }
                    #expect(error?.code == .invalidJob && error?.field == field, "\(error?.message ?? "")")
                    #expect(error?.message.isEmpty == false)
                }
                // The third job of a batch: the error says which, and nothing of the batch is sent.
                let batch = await #expect(throws: QueueError.self) {
                    try await connection.enqueue([Plain(n: 1), Plain(n: 2)], priority: 99_999, schema: scene.schema)
                }
                #expect(batch?.message.hasPrefix("job 1: priority 99999") == true, "\(batch?.message ?? "")")
                // A schema name that is not a plain identifier is refused before anything is sent too.
                let schema = await #expect(throws: DatabaseError.self) {
                    try await connection.enqueue(Plain(n: 1), schema: "drover\"; DROP TABLE x; --")
                }
                #expect(schema?.code == .invalidIdentifier)
                return try await scene.insertNote("kept", on: connection)
            }
            #expect(noteID > 0)
            #expect(try scene.count("notes", db) == 1)
            #expect(try scene.count("jobs", db) == 0)
        }
    }

    @Test("what only the SQL function checks (a concurrency key the arguments lack) comes back as QueueError naming the field")
    func functionRefusalBecomesQueueError() async throws {
        try await NIOScene.with { scene, db in
            try scene.store.syncConcurrencyRules(
                [ConcurrencyRule(className: "PublishNote", keyTemplate: "note:{missing}", maxRunning: 1, duration: .seconds(60))], on: db)
            let error = await #expect(throws: PostgresTransactionError.self) {
                try await scene.client.withTransaction(logger: logger) { connection in
                    _ = try await scene.insertNote("n", on: connection)
                    try await connection.enqueue(PublishNote(noteID: 1, text: "n"), schema: scene.schema)
                }
            }
            let refusal = try #require(error?.closureError as? QueueError, "\(String(describing: error?.closureError))")
            #expect(refusal.code == .invalidJob && refusal.field == "arguments")
            #expect(refusal.message == "arguments lack what the concurrency key note:{missing} of PublishNote needs", "\(refusal.message)")
            #expect(try scene.count("notes", db) == 0)
            #expect(try scene.count("jobs", db) == 0)

            // In a batch, the message names the job; through the client (no transaction of the caller).
            let batch = await #expect(throws: QueueError.self) {
                try await scene.client.enqueue([Plain(n: 1), Plain(n: 2)].map { _ in PublishNote(noteID: 2, text: "m") }, schema: scene.schema)
            }
            #expect(batch?.message.hasPrefix("job 1: arguments lack") == true, "\(batch?.message ?? "")")
        }
    }

    @Test("a job of a class with a concurrency limit waits for the dispatcher, as every SQL-enqueued one does, and is admitted by the store's rules")
    func concurrencyAdmission() async throws {
        try await NIOScene.with { scene, db in
            try scene.store.syncConcurrencyRules(
                [ConcurrencyRule(className: "PublishNote", keyTemplate: "note:{noteID}", maxRunning: 1, duration: .seconds(60))], on: db)
            let ids = try await scene.client.enqueue(
                [PublishNote(noteID: 5, text: "a"), PublishNote(noteID: 5, text: "b")], schema: scene.schema)
            #expect(try ids.map { try scene.store.job($0, on: db)?.state } == [.scheduled, .scheduled])
            #expect(try scene.store.dispatchDue(on: db) == 2)
            #expect(try ids.map { try scene.store.job($0, on: db)?.state } == [.ready, .blocked])
            #expect(try scene.row(ids[0], db)["concurrency_key"] == "note:5")
        }
    }

    @Test("hostile argument values are stored and handed to perform byte for byte")
    func hostileValuesRoundTrip() async throws {
        let values = [
            #"it's "quoted" \ back\slash"#, "'); DROP TABLE jobs; --", "emoji 🐄🚜 and é", "<script>alert(1)</script>",
            "line\nbreak\ttab\r", #"\u0000 as text"#, "$1 $$ dollar $$", "\u{1}\u{1F}", String(repeating: "ü", count: 5000),
        ]
        try await NIOScene.with { scene, db in
            let ids = try await scene.client.withTransaction(logger: logger) { connection in
                try await connection.enqueue(values.enumerated().map { PublishNote(noteID: $0.offset, text: $0.element, key: String($0.element.prefix(1000))) },
                                             schema: scene.schema)
            }
            for (id, value) in zip(ids, values) {
                let stored = try #require(try scene.store.job(id, on: db)?.arguments?.decode(PublishNote.self))
                #expect(Array(stored.text.utf8) == Array(value.utf8), "\(value)")
                #expect(try scene.row(id, db)["unique_key"] == String(value.prefix(1000)))
            }
            let ledger = Ledger()
            let summary = try await JobDrain(url: try TestDatabase.url(), schema: scene.schema, jobs: [PublishNote.self], services: ledger).run()
            #expect(summary.finished.count == values.count, "\(summary)")
            #expect(Set(ledger.all) == Set(values.enumerated().map { "published \($0.offset): \($0.element)" }))
            #expect(try scene.count("jobs", db) == values.count, "jobs is still there")
        }
    }

    @Test("the same job through postgres-nio and through the libpq Swift API makes equal rows")
    func sameRowsAsLibpq() async throws {
        try await NIOScene.with { scene, db in
            let jobs = [
                PublishNote(noteID: 1, text: "defaults"),
                PublishNote(noteID: 2, text: "ключ ✓ \"q\"", key: "k:ü"),
            ]
            for (i, job) in jobs.enumerated() {
                let options: (String?, Int?, Int?, Duration?) = i == 0 ? (nil, nil, nil, nil) : ("other", 12, 2, .milliseconds(2500))
                let viaNIO = try await scene.client.withTransaction(logger: logger) { connection in
                    try await connection.enqueue(job, queue: options.0, priority: options.1, maxAttempts: options.2, timeout: options.3,
                                                 schema: scene.schema)
                }
                let nioRow = try scene.row(viaNIO, db)
                // A unique key is held by the first: free it before the second enqueue.
                try db.execute("UPDATE \(SQLIdentifier(scene.schema, "jobs")) SET finished_at = now() WHERE id = \(viaNIO)")
                let viaLibpq = try db.withTransaction { tx in
                    try tx.enqueue(job, queue: options.0, priority: options.1, maxAttempts: options.2, timeout: options.3,
                                   schema: scene.schema)
                }
                #expect(viaLibpq != viaNIO)
                let libpqRow = try scene.row(viaLibpq, db)
                #expect(nioRow == libpqRow)
            }
        }
    }

    @Test("the enqueuer's trace context is stored with the job and restored around perform, under a span that is a child of the enqueuer's")
    func traceContextTravels() async throws {
        try await NIOScene.with { scene, db in
            let tracer = InMemoryTracer()
            let (id, summary) = try await withTracer(tracer) {
                let id = try await tracer.withSpan("POST /notes") { _ in
                    try await scene.client.withTransaction(logger: logger) { connection in
                        try await connection.enqueue(PublishNote(noteID: 1, text: "traced"), schema: scene.schema)
                    }
                }
                let summary = try await JobDrain(url: try TestDatabase.url(), schema: scene.schema, jobs: [PublishNote.self],
                                                 services: Ledger()).run()
                return (id, summary)
            }
            #expect(summary.finished == [id], "\(summary)")
            #expect(try scene.row(id, db)["trace_context"] != "none")
            let spans = tracer.finishedSpans
            let request = try #require(spans.first { $0.operationName == "POST /notes" })
            let perform = try #require(spans.first { $0.operationName == "perform PublishNote" }, "\(spans.map(\.operationName))")
            #expect(perform.traceID == request.traceID && perform.parentSpanID == request.spanID)
            #expect(perform.attributes["drover.job.id"]?.toSpanAttribute() == .int64(Int64(id)))

            // Without a current context nothing is stored.
            let plain = try await scene.client.enqueue(PublishNote(noteID: 2, text: "plain"), schema: scene.schema)
            #expect(try scene.row(plain, db)["trace_context"] == "none")
        }
    }

    @Test("a schema that is not migrated, or migrated before version 8, gets an error that says to migrate")
    func unmigratedSchema() async throws {
        try await NIOScene.with { scene, db in
            let missing = TestDatabase.uniqueSchemaName()
            let none = await #expect(throws: DatabaseError.self) { try await scene.client.enqueue(Plain(n: 1), schema: missing) }
            #expect(none?.code == .migrationFailed && none?.message.contains("drover migrate --schema \(missing)") == true, "\(none?.message ?? "")")

            let old = TestDatabase.uniqueSchemaName()
            defer { _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(old)) CASCADE") }
            try db.execute("CREATE SCHEMA \(SQLIdentifier(old))")
            try Migrator(schema: old, migrations: Array(DroverSchema.migrations.prefix(7))).migrate(on: db)
            let tracer = InMemoryTracer()
            let stale = await #expect(throws: DatabaseError.self) {
                try await withTracer(tracer) {
                    try await tracer.withSpan("request") { _ in try await scene.client.enqueue(Plain(n: 1), schema: old) }
                }
            }
            #expect(stale?.code == .migrationFailed && stale?.message.contains("before 8") == true, "\(stale?.message ?? "")")
            // Without a trace context, the old function takes the job as it is.
            #expect(try await scene.client.enqueue(Plain(n: 1), schema: old) > 0)
            _ = scene
        }
    }

    @Test("a database failure is a DatabaseError with the server's SQLSTATE and message, and no error says the URL or a password")
    func databaseErrorsHoldNoSecrets() async throws {
        try await NIOScene.with { scene, db in
            var errors: [any Error] = []
            do { try await scene.client.enqueue(Plain(n: 1), schema: TestDatabase.uniqueSchemaName()) } catch { errors.append(error) }
            try await scene.client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                _ = try? await connection.query("SELECT 1/0", logger: logger)  // the transaction can only roll back now
                do { try await connection.enqueue(Plain(n: 1), schema: scene.schema) } catch { errors.append(error) }
                try await connection.query("ROLLBACK", logger: logger)
            }
            let aborted = try #require(errors.last as? DatabaseError, "\(errors)")
            #expect(aborted.sqlState == "25P02" && aborted.code == .serverError, "\(aborted)")
            #expect(aborted.message.contains("current transaction is aborted"), "\(aborted)")
            #expect(errors.count == 2)
            let url = try TestDatabase.url()
            for error in errors {
                let text = "\(error)"
                #expect(!text.contains(url) && !text.contains("postgresql://") && !text.lowercased().contains("password"), "\(text)")
            }
            #expect(try scene.count("jobs", db) == 0)
        }
    }
}
