@testable import DroverQueue
import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

/// What only PostgreSQL has: LISTEN/NOTIFY wake-ups, `SKIP LOCKED` across connections, query
/// plans, VACUUM, and the SQL functions other languages call. Every other behaviour of the store
/// is in the conformance suite (Conformance/), on every backend.
@Suite("PostgreSQL only: notifications, SKIP LOCKED, plans, vacuum")
struct PostgresOnlyTests {
    /// Every payload on the store's channel within `timeout` of quiet.
    private func drain(_ listener: Connection, quiet: Duration = .milliseconds(200)) throws -> [String] {
        var payloads: [String] = []
        while true {
            let batch = try listener.waitForNotifications(timeout: quiet).map(\.payload)
            if batch.isEmpty { return payloads }
            payloads += batch
        }
    }

    @Test("enqueue wakes listeners once per queue per statement, not once per job; scheduled jobs wake nobody")
    func enqueueNotifiesOncePerQueue() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            try store.enqueue((0..<500).map { NewJob("Wake", queue: $0 % 2 == 0 ? "a" : "b") }, on: db)
            var payloads: [String] = []
            try waitUntil("two notifications arrived") {
                payloads += try listener.waitForNotifications(timeout: .milliseconds(100)).map(\.payload)
                return payloads.count >= 2
            }
            // Anything more would have come with the first ones: they are sent together at commit.
            payloads += try drain(listener)
            #expect(payloads.sorted() == ["a", "b"])
            try store.enqueue([NewJob("Later", queue: "a", runAt: Date().addingTimeInterval(600))], on: db)
            #expect(try drain(listener).isEmpty)
        }
    }

    @Test("every change that makes jobs ready wakes their queues' workers: release, dispatch, retry, resume, admission")
    func readyJobsNotify() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            try store.enqueue([NewJob("A", queue: "q1"), NewJob("B", queue: "q2")], on: db)
            _ = try drain(listener)
            _ = try store.claim(processID: 3, queues: ["*"], limit: 2, on: db)
            try store.release(processID: 3, reason: .graceful, on: db)
            #expect(Set(try drain(listener)) == ["q1", "q2"], "release")
            let later = try store.enqueue(NewJob("L", queue: "q3", runAt: Date().addingTimeInterval(600)), on: db)
            try db.execute("UPDATE \(store.table("scheduled_executions")) SET scheduled_at = now() - interval '1 second'")
            #expect(try store.dispatchDue(on: db) == 1)
            #expect(try drain(listener) == ["q3"], "dispatch")
            _ = try store.claim(processID: 3, queues: ["q3"], limit: 1, on: db)
            _ = try store.fail(later, processID: 3, error: JobFailure(errorClass: "E", message: "m"), permanent: true, on: db)
            _ = try store.retryFailed([later], on: db)
            #expect(try drain(listener) == ["q3"], "retry")
            try store.pause("q4", on: db)
            try store.resume("q4", on: db)
            #expect(try drain(listener) == ["q4"], "resume")
            try store.syncConcurrencyRules([ConcurrencyRule(className: "K", keyTemplate: "k", maxRunning: 1, duration: .seconds(60))], on: db)
            let keyed = try store.enqueue([NewJob("K", queue: "q5"), NewJob("K", queue: "q6")], on: db)
            #expect(try drain(listener) == ["q5"], "admission")
            _ = try store.cancel(keyed[0], on: db)
            #expect(try drain(listener) == ["q6"], "a blocked job let through")
        }
    }

    @Test("cancelling a running job tells its worker on the store's channel: cancel <process id>")
    func cancelNotifies() throws {
        try withStore { store, db throws in
            let listener = try TestDatabase.connect()
            try listener.listen(store.wakeChannel)
            let id = try store.enqueue(NewJob("Work"), on: db)
            _ = try store.claim(processID: 7, queues: ["*"], limit: 1, on: db)
            _ = try drain(listener)
            #expect(try store.cancel(id, on: db) == .requested(processID: 7))
            #expect(try drain(listener) == ["cancel 7"])
            #expect(PostgresDriver.cancelledProcess(inNotification: "cancel 7") == 7)
            #expect(PostgresDriver.cancelledProcess(inNotification: "default") == nil)
        }
    }

    @Test("a claim passes over the rows another open claim holds instead of waiting for them (SKIP LOCKED)")
    func claimSkipsLockedRows() throws {
        try withStore { store, db throws in
            try store.enqueue((0..<6).map { _ in NewJob("Work") }, on: db)
            let holder = try TestDatabase.connect()
            let other = try TestDatabase.connect()
            // If the second claim waited for the first's rows, it would fail after 2 s.
            try other.setSessionSetting("lock_timeout", to: "2s")
            try holder.withTransaction { holder in
                let first = try store.claim(processID: 1, queues: ["*"], limit: 3, on: holder)
                let second = try store.claim(processID: 2, queues: ["default"], limit: 10, on: other)
                #expect(first.count == 3 && second.count == 3)
                #expect(Set(first.map(\.id)).isDisjoint(with: second.map(\.id)))
            }
            try expectInvariant(store, db)
        }
    }

    @Test("at 1M ready jobs in one queue every claim statement is an index scan in claim order, with no sort, under the runtime's settings")
    func claimUsesIndexes() throws {
        try withStore { store, db throws in
            // One queue holds every job, as in most deployments: the planner then estimates that
            // `queue_name <> ALL (paused queues)` keeps one row, and without the runtime's settings
            // reads and sorts every ready row (0.6 s per claim at 900,000 ready jobs).
            try db.execute("""
                INSERT INTO \(store.schema.qualifying("jobs")) (queue_name, class_name, priority)
                SELECT 'default', 'Work', i % 10 FROM generate_series(1, 1000000) AS i
                """)
            try db.execute("""
                INSERT INTO \(store.schema.qualifying("ready_executions")) (job_id, queue_name, priority)
                SELECT id, queue_name, priority FROM \(store.schema.qualifying("jobs"))
                """)
            try db.execute("ANALYZE \(store.schema.qualifying("ready_executions"))")
            try db.execute("ANALYZE \(store.schema.qualifying("pauses"))")
            // As Drover's processes run them.
            for (name, value) in PostgresDriver.plannerSettings { try db.setSessionSetting(name, to: value) }
            for pattern in [QueueSelection.Pattern.exact("default"), .prefix("def"), .all] {
                let statement = store.driver.claimStatement(pattern, processID: 1, limit: 50, now: store.now(), in: store)
                let plan = try db.query("EXPLAIN (COSTS OFF) " + statement).map { try $0.decode(at: 0, as: String.self) }
                let text = plan.joined(separator: "\n")
                // The picking; the final ORDER BY sorts only the (at most 50) claimed rows.
                let picking = text.components(separatedBy: "CTE picked").last!.components(separatedBy: "CTE moved").first!
                let index = pattern == .all ? "ready_executions_claim_all" : "ready_executions_claim_by_queue"
                #expect(picking.contains("Index Scan using \(index) "), "\(pattern):\n\(text)")
                #expect(!picking.contains("Seq Scan on ready_executions"), "\(pattern):\n\(text)")
                #expect(!picking.contains("Sort"), "\(pattern):\n\(text)")
            }
            // The generic plans of the prepared claims, which plan_cache_mode makes the runtime use
            // whatever the values: the same index walks.
            for (index, pattern) in [QueueSelection.Pattern.exact("default"), .prefix("def"), .all].enumerated() {
                let statement = store.driver.claimStatement(pattern, processID: 1, limit: 50, now: store.now(), in: store)
                let types = try statement.binds.map { bind in
                    try db.query("SELECT format_type(\(Int(bind.type.rawValue)), NULL) AS t")[0].decode("t", as: String.self)
                }
                let values = statement.binds.map { "'" + ($0.text ?? "").replacingOccurrences(of: "'", with: "''") + "'" }
                try db.execute(SQL(unsafeRaw: "PREPARE generic_claim_\(index) (\(types.joined(separator: ", "))) AS \(statement.text)"))
                let plan = try db.query(SQL(unsafeRaw: "EXPLAIN (COSTS OFF) EXECUTE generic_claim_\(index) (\(values.joined(separator: ", ")))"))
                    .map { try $0.decode(at: 0, as: String.self) }.joined(separator: "\n")
                let picking = plan.components(separatedBy: "CTE picked").last!.components(separatedBy: "CTE moved").first!
                let index = pattern == .all ? "ready_executions_claim_all" : "ready_executions_claim_by_queue"
                #expect(picking.contains("Index Scan using \(index) "), "generic \(pattern):\n\(plan)")
                #expect(!picking.contains("Seq Scan on ready_executions") && !picking.contains("Sort"), "generic \(pattern):\n\(plan)")
            }
            // Run, not only planned: without JIT compilation (a disabled node's cost would trigger it).
            struct Rollback: Error {}
            var analyzed = ""
            do {
                try db.withTransaction { tx in
                    analyzed = try tx.query("EXPLAIN (ANALYZE, COSTS OFF) " + store.driver.claimStatement(.all, processID: 1, limit: 50, now: store.now(), in: store))
                        .map { try $0.decode(at: 0, as: String.self) }.joined(separator: "\n")
                    throw Rollback()
                }
            } catch is Rollback {}
            #expect(!analyzed.isEmpty && !analyzed.contains("JIT"), "\(analyzed)")
            // And it claims, fast enough not to notice: 50 jobs from the million.
            #expect(try store.claim(processID: 1, queues: ["def*"], limit: 50, on: db).count == 50)
        }
    }

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

    @Test("a concurrency key is rendered in Swift exactly as PostgreSQL's concurrency_key function (its SQL enqueue) renders it")
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
}
