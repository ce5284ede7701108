import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Concurrency limits in the database")
struct ConcurrencyTests {
    static let sync = ConcurrencyRule(className: "Sync", keyTemplate: "account:{account}", maxRunning: 2, duration: .seconds(300))

    func job(_ account: Int, priority: Int = 0, runIn: Duration? = nil) -> NewJob {
        let arguments = try! JSON(validating: #"{"account": \#(account)}"#)
        if let runIn { return NewJob("Sync", arguments: arguments, priority: priority, runIn: runIn) }
        return NewJob("Sync", arguments: arguments, priority: priority)
    }

    func states(_ store: PostgresJobStore, _ ids: [Int], _ db: Connection) throws -> [JobState?] {
        try ids.map { try state(store, $0, db) }
    }

    @Test("at enqueue, jobs beyond the limit of their key wait in blocked; other keys and classes are not held up")
    func admitAndBlock() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([Self.sync], on: db)
            let ids = try store.enqueue([job(1), job(1), job(1), job(2), NewJob("Other")], on: db)
            #expect(try states(store, ids, db) == [.ready, .ready, .blocked, .ready, .ready])
            #expect(try store.job(ids[0], on: db).map { _ in true } == true)
            let keys = try store.concurrencyKeys(on: db)
            #expect(keys.map(\.key) == ["account:1", "account:2"])
            #expect(keys[0].holding == 2 && keys[0].blocked == 1 && keys[0].maxRunning == 2)
            try expectInvariant(store, db)
        }
    }

    @Test("a finished, failed or retried job gives its slot to the next blocked job, in priority order; a released one keeps it")
    func slotsPassOn() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([Self.sync], on: db)
            let first = try store.enqueue([job(1), job(1)], on: db)
            let low = try store.enqueue(job(1, priority: 5), on: db)
            let high = try store.enqueue(job(1, priority: -5), on: db)
            let last = try store.enqueue(job(1), on: db)
            #expect(try states(store, [low, high, last], db) == [.blocked, .blocked, .blocked])
            let claimed = try store.claim(processID: 1, queues: ["*"], limit: 2, on: db).map(\.id)
            #expect(Set(claimed) == Set(first))

            _ = try store.finish([first[0]], processID: 1, on: db)
            #expect(try state(store, high, db) == .ready, "the higher priority runs first")
            #expect(try state(store, low, db) == .blocked)

            // A failed attempt waiting for its retry holds no slot.
            _ = try store.fail(first[1], processID: 1, error: JobFailure(errorClass: "E", message: "m"), on: db)
            #expect(try state(store, first[1], db) == .scheduled)
            #expect(try state(store, last, db) == .ready)

            // A graceful release puts the job back in ready with its slot: nothing else is let through.
            _ = try store.claim(processID: 2, queues: ["*"], limit: 2, on: db)
            _ = try store.release(processID: 2, reason: .graceful, on: db)
            #expect(try state(store, low, db) == .blocked)
            let key = try #require(try store.concurrencyKeys(on: db).first)
            #expect(key.holding == 2 && key.blocked == 1)
            try expectInvariant(store, db)
        }
    }

    @Test("a due retry, a cancelled ready job, a cleared queue and a retried failed job keep the count right")
    func otherPaths() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([Self.sync], on: db)
            let a = try store.enqueue([job(1), job(1), job(1)], on: db)
            #expect(try states(store, a, db) == [.ready, .ready, .blocked])
            _ = try store.cancel(a[0], on: db)
            #expect(try state(store, a[2], db) == .ready, "cancelling a ready job frees its slot")
            // A scheduled job with a key is admitted when it falls due.
            let later = try store.enqueue(job(1, runIn: .milliseconds(200)), on: db)
            #expect(try state(store, later, db) == .scheduled)
            try waitUntil("it is due and dispatched") {
                try store.dispatchDue(on: db)
                return try state(store, later, db) != .scheduled
            }
            #expect(try state(store, later, db) == .blocked)
            _ = try store.clear("default", on: db)
            #expect(try state(store, later, db) == .ready, "clearing ready jobs frees their slots")
            // A failed job retried by hand takes a slot or waits.
            _ = try store.claim(processID: 3, queues: ["*"], limit: 1, on: db)
            _ = try store.fail(later, processID: 3, error: JobFailure(errorClass: "E", message: "m"), permanent: true, on: db)
            let b = try store.enqueue([job(1), job(1)], on: db)
            #expect(try states(store, b, db) == [.ready, .ready])
            _ = try store.retryFailed([later], on: db)
            #expect(try state(store, later, db) == .blocked)
            try expectInvariant(store, db)
        }
    }

    @Test("on_conflict discard finishes the extra job at once, saying why")
    func discard() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([ConcurrencyRule(className: "Once", keyTemplate: "once", maxRunning: 1, duration: .seconds(60),
                                                            onConflict: .discard)], on: db)
            let ids = try store.enqueue([NewJob("Once"), NewJob("Once")], on: db)
            #expect(try state(store, ids[0], db) == .ready)
            let discarded = try #require(try store.job(ids[1], on: db))
            #expect(discarded.state == .finished)
            #expect(discarded.lastError?.errorClass == "Discarded")
        }
    }

    @Test("a job whose arguments lack what its key needs is refused, naming the key")
    func missingArgument() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([Self.sync], on: db)
            let error = #expect(throws: QueueError.self) { try store.enqueue(NewJob("Sync"), on: db) }
            #expect(error?.field == "arguments")
            #expect(error?.message == "arguments lack what the concurrency key account:{account} of Sync needs")
        }
    }

    @Test("a slot lost without being given back (a crash) returns after the rule's duration, and the blocked job runs")
    func lostSlotExpires() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules(
                [ConcurrencyRule(className: "Sync", keyTemplate: "account:{account}", maxRunning: 1, duration: .seconds(1))], on: db)
            let ids = try store.enqueue([job(1), job(1)], on: db)
            #expect(try states(store, ids, db) == [.ready, .blocked])
            // The holder vanishes without giving its slot back.
            try db.execute("DELETE FROM \(store.schema.qualifying("jobs")) WHERE id = \(ids[0])")
            #expect(try store.expireConcurrency(on: db) == 0, "not before the duration")
            #expect(try state(store, ids[1], db) == .blocked)
            try waitUntil("the key is counted again after its duration", timeout: .seconds(10)) {
                try store.expireConcurrency(on: db) == 1
            }
            #expect(try state(store, ids[1], db) == .ready)
            try expectInvariant(store, db)
        }
    }

    @Test("rules follow the configuration: replaced, removed; a changed limit applies to keys in use")
    func syncRules() throws {
        try withStore { store, db throws in
            try store.syncConcurrencyRules([Self.sync, ConcurrencyRule(className: "B", keyTemplate: "b", maxRunning: 1, duration: .seconds(5))], on: db)
            #expect(try store.concurrencyRules(on: db).map(\.className) == ["B", "Sync"])
            let ids = try store.enqueue([job(1), job(1), job(1)], on: db)
            #expect(try states(store, ids, db) == [.ready, .ready, .blocked])
            var wider = Self.sync
            wider.maxRunning = 3
            try store.syncConcurrencyRules([wider], on: db)
            #expect(try store.concurrencyRules(on: db) == [wider])
            #expect(try store.expireConcurrency(on: db) == 1, "the wider limit lets the blocked job run")
            #expect(try state(store, ids[2], db) == .ready)
            let fourth = try store.enqueue(job(1), on: db)
            #expect(try state(store, fourth, db) == .blocked)
            // Without a rule, nothing limits the key any more.
            try store.syncConcurrencyRules([], on: db)
            #expect(try store.expireConcurrency(on: db) == 1)
            #expect(try state(store, fourth, db) == .ready)
            #expect(try state(store, try store.enqueue(job(1), on: db), db) == .ready)
        }
    }
}
