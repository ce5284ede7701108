@testable import DroverQueue
import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

@Suite("Claiming")
struct ClaimTests {
    /// Enqueues one job per (queue, priority) and returns "queue/priority" labels by id.
    private func enqueue(_ specs: [(String, Int)], _ store: PostgresJobStore, _ db: Connection) throws -> [Int: String] {
        let ids = try store.enqueue(specs.map { NewJob("Work", queue: $0.0, priority: $0.1) }, on: db)
        return Dictionary(uniqueKeysWithValues: zip(ids, specs.map { "\($0.0)/\($0.1)" }))
    }

    @Test("queues in list order, a prefix in name order, then priority, then id")
    func order() throws {
        try withStore { store, db throws in
            let labels = try enqueue([
                ("mail_b", 0), ("default", 5), ("critical", 1), ("other", -9), ("mail_a", 3), ("default", 0),
                ("critical", 0), ("mail_a", 1), ("default", 0), ("mailXa", 0),
            ], store, db)
            let claimed = try store.claim(processID: 1, queues: ["critical", "default", "mail_*"], limit: 100, on: db)
            #expect(claimed.map { labels[$0.id]! } == [
                "critical/0", "critical/1", "default/0", "default/0", "default/5", "mail_a/1", "mail_a/3", "mail_b/0",
            ])
            let twoDefaults = claimed.filter { $0.queue == "default" && $0.priority == 0 }.map(\.id)
            #expect(twoDefaults == twoDefaults.sorted(), "equal priorities go by id")
            // "mail_*" is a prefix: its _ is not a LIKE wildcard, so mailXa stays; so does "other".
            #expect(try store.listJobs(state: .ready, on: db).map(\.queue).sorted() == ["mailXa", "other"])
            try expectInvariant(store, db)
        }
    }

    @Test("* takes every queue by priority, then id")
    func wildcard() throws {
        try withStore { store, db throws in
            let labels = try enqueue([("b", 2), ("a", 1), ("c", 1), ("a", -1)], store, db)
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 10, on: db)
            #expect(claimed.map { labels[$0.id]! } == ["a/-1", "a/1", "c/1", "b/2"])
        }
    }

    @Test("the limit is respected and the claim records the process; the job says which attempt this is")
    func limitAndProcess() throws {
        try withStore { store, db throws in
            try store.enqueue((0..<10).map { _ in NewJob("Work", arguments: .object(#"{"k": 1}"#)) }, on: db)
            let first = try store.claim(processID: 41, queues: ["default"], limit: 3, on: db)
            let second = try store.claim(processID: 42, queues: ["default"], limit: 100, on: db)
            #expect(first.count == 3 && second.count == 7)
            #expect(try count(store, "claimed_executions", db, where: "process_id = 41") == 3)
            #expect(try count(store, "claimed_executions", db, where: "process_id = 42") == 7)
            #expect(first[0].attempt == 1 && first[0].crashes == 0 && first[0].arguments == .object(#"{"k": 1}"#))
            #expect(try store.claim(processID: 43, queues: ["default"], limit: 5, on: db).isEmpty)
            #expect(try store.claim(processID: 43, queues: ["default"], limit: 0, on: db).isEmpty)
            try expectInvariant(store, db)
        }
    }

    @Test("paused queues are skipped until resumed")
    func pauses() throws {
        try withStore { store, db throws in
            try store.enqueue([NewJob("W", queue: "a"), NewJob("W", queue: "b"), NewJob("W", queue: "b")], on: db)
            #expect(try store.pause("b", on: db))
            #expect(try !store.pause("b", on: db), "pausing twice says it was paused already")
            #expect(try store.claim(processID: 1, queues: ["*"], limit: 10, on: db).map(\.queue) == ["a"])
            #expect(try store.claim(processID: 1, queues: ["b"], limit: 10, on: db).isEmpty)
            #expect(try store.resume("b", on: db))
            #expect(try !store.resume("b", on: db))
            let resumed = try store.claim(processID: 1, queues: ["b*"], limit: 10, on: db)
            #expect(resumed.map(\.queue) == ["b", "b"])
        }
    }

    @Test("queue lists and patterns are validated")
    func selections() throws {
        #expect(throws: QueueError.self) { try QueueSelection([]) }
        for bad in ["*mail", "ma*il", "bad queue", "**", ""] {
            let error = #expect(throws: QueueError.self) { try QueueSelection([bad]) }
            #expect(error?.code == .invalidQueue, "\(bad)")
        }
        #expect(try QueueSelection(["a", "b*", "*", "a"]).patterns == [.exact("a"), .prefix("b"), .all])
        #expect(PostgresJobStore.prefixUpperBound("mail_x") == "mail_y" && PostgresJobStore.prefixUpperBound("a9") == "a:")
    }

    @Test("8 concurrent claimers on separate connections over 10,000 ready jobs claim every job exactly once")
    func concurrentClaimers() throws {
        try withStore { store, db throws in
            try store.enqueue((0..<10_000).map { NewJob("Work", queue: $0 % 3 == 0 ? "a" : "b", priority: $0 % 5) }, on: db)
            let gate = Gate()
            let claimers = (1...8).map { worker in
                BackgroundWork("claimer \(worker)") { () -> [Int] in
                    let connection = try TestDatabase.connect()
                    gate.wait()
                    var mine: [Int] = []
                    while true {
                        let batch = try store.claim(processID: worker, queues: ["a", "b"], limit: 37, on: connection)
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.id)
                    }
                }
            }
            gate.open()
            let claimed = try claimers.map { try $0.value(timeout: .seconds(120)) }
            let all = claimed.flatMap { $0 }
            #expect(all.count == 10_000)
            #expect(Set(all).count == 10_000, "no job was claimed twice")
            #expect(claimed.filter { !$0.isEmpty }.count > 1, "the work was shared")
            #expect(try count(store, "ready_executions", db) == 0)
            for (worker, ids) in zip(1..., claimed) {
                #expect(try count(store, "claimed_executions", db, where: "process_id = \(worker)") == ids.count)
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
}

/// Lets several threads start at the same moment.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    func wait() {
        condition.lock()
        while !isOpen { condition.wait() }
        condition.unlock()
    }
    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }
}
