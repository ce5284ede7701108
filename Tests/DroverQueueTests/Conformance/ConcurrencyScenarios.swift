import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: concurrency limits, on every backend")
struct ConcurrencyScenarios {
    static let sync = ConcurrencyRule(className: "Sync", keyTemplate: "account:{account}", maxRunning: 2, duration: .seconds(300))

    func job(_ account: Int, priority: Int = 0, runAt: Date? = nil) -> NewJob {
        NewJob("Sync", arguments: .object(#"{"account": \#(account)}"#), priority: priority, runAt: runAt)
    }

    @Test("at enqueue, jobs beyond the limit of their key wait in blocked; other keys and classes are not held up",
          arguments: Backend.allCases)
    func admitAndBlock(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([Self.sync])
            let ids = try s.enqueue([job(1), job(1), job(1), job(2), NewJob("Other")])
            #expect(try ids.map(s.state) == [.ready, .ready, .blocked, .ready, .ready])
            let keys = try s.concurrencyKeys()
            #expect(keys.map(\.key) == ["account:1", "account:2"])
            #expect(keys[0].holding == 2 && keys[0].blocked == 1 && keys[0].maxRunning == 2)
            // In one batch the slots go by priority, not by position.
            let batch = try s.enqueue([job(3, priority: 5), job(3, priority: 1), job(3, priority: -1)])
            #expect(try batch.map(s.state) == [.blocked, .ready, .ready])
        }
    }

    @Test("a finished, failed or retried job gives its slot to the next blocked job, in priority order; a released one keeps it",
          arguments: Backend.allCases)
    func slotsPassOn(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([Self.sync])
            let first = try s.enqueue([job(1), job(1)])
            let low = try s.enqueue(job(1, priority: 5))
            let high = try s.enqueue(job(1, priority: -5))
            let last = try s.enqueue(job(1))
            #expect(try [low, high, last].map(s.state) == [.blocked, .blocked, .blocked])
            #expect(Set(try s.claim(1, ["*"], limit: 2).map(\.id)) == Set(first))
            try s.finish([first[0]])
            #expect(try s.state(high) == .ready, "the higher priority runs first")
            #expect(try s.state(low) == .blocked)
            try s.fail(first[1])
            #expect(try s.state(first[1]) == .scheduled, "a failed attempt waiting for its retry holds no slot")
            #expect(try s.state(last) == .ready)
            _ = try s.claim(2, ["*"], limit: 2)
            try s.release(2)
            #expect(try s.state(low) == .blocked, "a graceful release keeps the slots")
            let key = try #require(try s.concurrencyKeys().first)
            #expect(key.holding == 2 && key.blocked == 1)
        }
    }

    @Test("a due retry, a cleared queue, a crash past its limit and a retried failed job keep the count right",
          arguments: Backend.allCases)
    func otherPaths(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(retryPolicy: RetryPolicy(jitter: 0), clock: clock.storeClock) { s in
            try s.syncConcurrencyRules([Self.sync])
            let a = try s.enqueue([job(1), job(1), job(1)])
            #expect(try a.map(s.state) == [.ready, .ready, .blocked])
            let later = try s.enqueue(job(1, runAt: clock.now.addingTimeInterval(10)))
            #expect(try s.state(later) == .scheduled)
            clock.advance(by: 10)
            #expect(try s.dispatchDue() == 1)
            #expect(try s.state(later) == .blocked, "a scheduled job with a key is admitted when it falls due")
            _ = try s.clear("default")
            #expect(try s.state(later) == .ready, "clearing ready jobs frees their slots")
            _ = try s.claim(3, ["*"], limit: 2)
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            #expect(try s.release(3, reason: .crashed(crash, maxCrashes: 1)).failed.count == 2, "failed by its crash limit")
            let b = try s.enqueue([job(1), job(1)])
            #expect(try b.map(s.state) == [.ready, .ready])
            #expect(try s.retryFailed([later]) == [later])
            #expect(try s.state(later) == .blocked, "a failed job retried by hand waits for a slot")
        }
    }

    @Test("on_conflict discard finishes the extra job at once, saying why", arguments: Backend.allCases)
    func discard(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([
                ConcurrencyRule(className: "Once", keyTemplate: "once", maxRunning: 1, duration: .seconds(60), onConflict: .discard),
            ])
            let ids = try s.enqueue([NewJob("Once"), NewJob("Once")])
            #expect(try s.state(ids[0]) == .ready)
            let discarded = try #require(try s.job(ids[1]))
            #expect(discarded.state == .finished && discarded.lastError?.errorClass == "Discarded")
            #expect(discarded.lastError?.message == "discarded at enqueue: 1 jobs with concurrency key once were running already")
        }
    }

    @Test("a job whose arguments lack what its key needs is refused, naming the key, and nothing is written", arguments: Backend.allCases)
    func missingArgument(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([Self.sync])
            let one = #expect(throws: QueueError.self) { try s.enqueue(NewJob("Sync")) }
            #expect(one?.field == "arguments" && one?.message == "arguments lack what the concurrency key account:{account} of Sync needs")
            let batch = #expect(throws: QueueError.self) { try s.enqueue([NewJob("Plain"), NewJob("Sync", arguments: .object("{}"))]) }
            #expect(batch?.message == "job 2: arguments lack what the concurrency key account:{account} of Sync needs")
            #expect(try s.count("jobs") == 0)
        }
    }

    @Test("a slot lost without being given back (a crash) returns after the rule's duration, and the blocked job runs",
          arguments: Backend.allCases)
    func lostSlotExpires(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncConcurrencyRules([
                ConcurrencyRule(className: "Sync", keyTemplate: "account:{account}", maxRunning: 1, duration: .seconds(30)),
            ])
            let ids = try s.enqueue([job(1), job(1)])
            #expect(try ids.map(s.state) == [.ready, .blocked])
            // The holder vanishes without giving its slot back.
            try s.sql("DELETE FROM \(s.table("jobs")) WHERE id = \(ids[0])")
            clock.advance(by: 29)
            #expect(try s.expireConcurrency(batchSize: 100) == 0, "not before the duration")
            #expect(try s.state(ids[1]) == .blocked)
            clock.advance(by: 1)
            #expect(try s.expireConcurrency(batchSize: 100) == 1, "counted again at its duration")
            #expect(try s.state(ids[1]) == .ready)
        }
    }

    @Test("rules follow the configuration: replaced, removed; a changed limit applies to keys in use", arguments: Backend.allCases)
    func syncRules(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([Self.sync, ConcurrencyRule(className: "B", keyTemplate: "b", maxRunning: 1, duration: .seconds(5))])
            #expect(try s.concurrencyRules().map(\.className) == ["B", "Sync"])
            let ids = try s.enqueue([job(1), job(1), job(1)])
            #expect(try ids.map(s.state) == [.ready, .ready, .blocked])
            var wider = Self.sync
            wider.maxRunning = 3
            try s.syncConcurrencyRules([wider])
            #expect(try s.concurrencyRules() == [wider])
            #expect(try s.expireConcurrency(batchSize: 100) == 1, "the wider limit lets the blocked job run")
            #expect(try s.state(ids[2]) == .ready)
            let fourth = try s.enqueue(job(1))
            #expect(try s.state(fourth) == .blocked)
            try s.syncConcurrencyRules([])
            #expect(try s.expireConcurrency(batchSize: 100) == 1, "without a rule nothing limits the key")
            #expect(try s.state(fourth) == .ready && s.state(try s.enqueue(job(1))) == .ready)
        }
    }

    @Test("two enqueues of jobs with the same keys in opposite orders, on connections of their own, never wait for each other",
          arguments: Backend.allCases)
    func admissionLockOrder(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Sync", keyTemplate: "{k}", maxRunning: 1000, duration: .seconds(60))])
            let keys = (0..<8).map { "key\($0)" }
            let stores = try (0..<4).map { _ in UncheckedBox(try s.connectAgain()) }
            let gate = Gate()
            let work = zip(0..., stores).map { n, store in
                BackgroundWork { () -> Int in
                    gate.wait()
                    var count = 0
                    for round in 0..<40 {
                        // Each batch takes the keys in its own order: forwards, backwards, rotated.
                        let order = n % 2 == 0 ? keys : keys.reversed()
                        let rotated = Array(order[(round % 8)...] + order[..<(round % 8)])
                        count += try store.value.enqueue(rotated.map { NewJob("Sync", arguments: .object(#"{"k": "\#($0)"}"#)) }).count
                    }
                    return count
                }
            }
            gate.open()
            let enqueued = try work.map { try $0.value(timeout: .seconds(120)) }.reduce(0, +)
            #expect(enqueued == 4 * 40 * 8)
            #expect(try s.count("ready_executions") == enqueued)
        }
    }
}
