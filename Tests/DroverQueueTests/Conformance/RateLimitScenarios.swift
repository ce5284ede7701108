import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: rate limits, on every backend")
struct RateLimitScenarios {
    /// 3 starts in any 10 s, one key for the class; given times are 10.35 s apart (the window is
    /// the period and a guard of 250 ms; batches a margin of 100 ms more apart).
    static let call = RateLimitRule(className: "Call", keyTemplate: "api", limit: 3, period: .seconds(10))

    func scheduledAt(_ s: any TestStore, _ ids: [Int]) throws -> [Double] {
        try ids.map { id in
            let rows = try s.sql("SELECT scheduled_at FROM \(s.table("scheduled_executions")) WHERE job_id = \(id)")
            return try rows.first.map { try $0.decode("scheduled_at", as: Date.self).timeIntervalSince1970 } ?? -1
        }
    }

    @Test("a burst: the limit starts, the others wait in scheduled with times of their own in batches of the limit, and spend no attempt",
          arguments: Backend.allCases)
    func burst(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncRateLimitRules([Self.call])
            let t0 = clock.now.timeIntervalSince1970
            let ids = try s.enqueue((0..<10).map { _ in NewJob("Call") } + [NewJob("Other")])
            let first = try s.claim(1, ["*"], limit: 100)
            #expect(first.map(\.id) == Array(ids[0..<3]) + [ids[10]], "3 calls start, and the other class is not held up")
            #expect(try ids[3..<10].map(s.state) == Array(repeating: .scheduled, count: 7))
            let given = try scheduledAt(s, Array(ids[3..<10]))
            let expected = [10.35, 10.35, 10.35, 20.7, 20.7, 20.7, 31.05].map { t0 + $0 }
            for (at, want) in zip(given, expected) { #expect(abs(at - want) < 0.001, "given \(at - t0), expected \(want - t0)") }
            #expect(try ids.compactMap { try s.job($0) }.allSatisfy { $0.attempts == 0 }, "waiting spends no attempt")
            let wait = try #require(try s.rateLimitWait(of: ids[9]))
            #expect(wait.key == "api" && abs(wait.until.timeIntervalSince1970 - expected[6]) < 0.001)
            #expect(try s.rateLimitWait(of: ids[0]) == nil, "a started job waits for nothing")
            let key = try #require(try s.rateLimitKeys().first)
            #expect(key.key == "api" && key.started == 3 && key.waiting == 7 && key.limit == 3 && key.period == .seconds(10))
            try s.finish(first.map(\.id))

            // Nothing is due before its time, and a claim in between starts nothing.
            clock.advance(by: 5)
            #expect(try s.dispatchDue() == 0)
            #expect(try s.claim(1, ["*"], limit: 100).isEmpty)
            #expect(abs((try s.secondsUntilNextDue() ?? 0) - 5.35) < 0.001, "the dispatcher is told when the next batch is due")

            var started: [Int] = []
            for batch in [10.35, 20.7, 31.05] {
                clock.advance(by: t0 + batch - clock.now.timeIntervalSince1970)
                _ = try s.dispatchDue()
                let claimed = try s.claim(2, ["*"], limit: 100)
                #expect(claimed.count == (batch < 30 ? 3 : 1), "at \(batch) s")
                started += claimed.map(\.id)
                try s.finish(claimed.map(\.id), by: 2)
            }
            #expect(started == Array(ids[3..<10]), "in the order they came")
            #expect(try ids.map(s.state).allSatisfy { $0 == .finished })
            #expect(try s.secondsUntilNextDue() == nil)
        }
    }

    @Test("keys from the arguments: each key its own limit; a job lacking the argument is limited under the template",
          arguments: Backend.allCases)
    func keysFromArguments(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncRateLimitRules([RateLimitRule(className: "Sync", keyTemplate: "account:{account}", limit: 1, period: .seconds(60))])
            let ids = try s.enqueue([
                NewJob("Sync", arguments: .object(#"{"account": 1}"#)), NewJob("Sync", arguments: .object(#"{"account": 1}"#)),
                NewJob("Sync", arguments: .object(#"{"account": 2}"#)), NewJob("Sync"), NewJob("Sync", arguments: .object(#"{"account": null}"#)),
            ])
            #expect(try s.claim(1, ["*"], limit: 10).map(\.id) == [ids[0], ids[2], ids[3]])
            #expect(try s.state(ids[1]) == .scheduled && s.state(ids[4]) == .scheduled)
            #expect(try s.rateLimitKeys().map { "\($0.key) \($0.started) \($0.waiting)" }
                    == ["account:1 1 1", "account:2 1 0", "account:{account} 1 1"])
        }
    }

    @Test("classes that share a key each keep their own limit, counted against every start of the key", arguments: Backend.allCases)
    func sharedKey(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncRateLimitRules([RateLimitRule(className: "Small", keyTemplate: "api", limit: 1, period: .seconds(10)),
                                      RateLimitRule(className: "Large", keyTemplate: "api", limit: 3, period: .seconds(10))])
            let ids = try s.enqueue([NewJob("Small"), NewJob("Small"), NewJob("Large"), NewJob("Large"), NewJob("Large")])
            #expect(try s.claim().map(\.id) == [ids[0], ids[2], ids[3]], "1 Small, then 2 Large: 3 starts of the key in all")
            #expect(try s.rateLimitKeys().map { "\($0.key) \($0.started) \($0.waiting)" } == ["api 3 2"])
        }
    }

    @Test("with a concurrency limit: a job that must wait gives its slot back, and takes one again when its time comes",
          arguments: Backend.allCases)
    func withConcurrency(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Call", keyTemplate: "one", maxRunning: 1, duration: .seconds(300))])
            try s.syncRateLimitRules([RateLimitRule(className: "Call", limit: 2, period: .seconds(10))])
            let ids = try s.enqueue([NewJob("Call"), NewJob("Call"), NewJob("Call")])
            #expect(try ids.map(s.state) == [.ready, .blocked, .blocked])
            for id in ids[0..<2] {
                #expect(try s.claim().map(\.id) == [id])
                try s.finish([id])
                try s.expectInvariant()
            }
            #expect(try s.state(ids[2]) == .ready, "its slot came")
            #expect(try s.claim().isEmpty, "but not its start: 2 in the last 10 s")
            #expect(try s.state(ids[2]) == .scheduled)
            let key = try #require(try s.concurrencyKeys().first)
            #expect(key.holding == 0, "the concurrency slot was given back while it waits")
            try s.expectInvariant()
            clock.advance(by: 10.35)
            _ = try s.dispatchDue()
            #expect(try s.claim().map(\.id) == [ids[2]])
            try s.expectInvariant()
        }
    }

    @Test("4 claimers on connections of their own over 200 ready jobs start exactly the limit; the rest wait, none lost or doubled",
          arguments: Backend.allCases)
    func racingClaimers(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncRateLimitRules([RateLimitRule(className: "Call", limit: 20, period: .seconds(600))])
            let ids = try s.enqueue((0..<200).map { _ in NewJob("Call") })
            let started = try raceClaimers(4, on: s) { worker, store in
                try store.withTransaction { try store.claim(worker, ["*"], limit: 7) }
            }.flatMap { $0 }
            #expect(started.count == 20 && Set(started).count == 20, "exactly the limit started: \(started.count)")
            let waiting = try ids.filter { try s.state($0) == .scheduled }
            #expect(waiting.count == 180)
            // Each given time is one window (the period and its guard) and the margin after the
            // start (or the given time) twenty places before it.
            let given = try scheduledAt(s, waiting).sorted()
            let now = Date().timeIntervalSince1970
            #expect(given.first.map { $0 > now + 590 } == true, "\(given.first ?? 0) against now \(now)")
            let steps = zip(given, given.dropFirst(20)).map { $1 - $0 }
            #expect(steps.allSatisfy { abs($0 - 600.35) < 0.002 }, "\(steps.prefix(5))")
            let key = try #require(try s.rateLimitKeys().first)
            #expect(key.started == 20 && key.waiting == 180)
        }
    }

    @Test("rules are kept in step and checked; pruning drops old starts and the times of jobs that no longer wait",
          arguments: Backend.allCases)
    func rulesAndPruning(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            try s.syncRateLimitRules([Self.call, RateLimitRule(className: "Mail", limit: 5, period: .seconds(60))])
            #expect(try s.rateLimitRules().map(\.className) == ["Call", "Mail"])
            #expect(try s.rateLimitRules().last?.keyTemplate == "Mail", "without a key, the class is the key")
            try s.syncRateLimitRules([Self.call])
            #expect(try s.rateLimitRules() == [Self.call])
            for bad in [RateLimitRule(className: "Call", limit: 0, period: .seconds(1)),
                        RateLimitRule(className: "Call", limit: 10_001, period: .seconds(1)),
                        RateLimitRule(className: "Call", limit: 1, period: .milliseconds(500)),
                        RateLimitRule(className: "Call", limit: 1, period: .seconds(8 * 86_400)),
                        RateLimitRule(className: "not a class", limit: 1, period: .seconds(1))] {
                #expect(throws: QueueError.self, "\(bad)") { try s.syncRateLimitRules([bad]) }
            }
            #expect(try s.rateLimitRules() == [Self.call], "a bad rule changes nothing")

            let ids = try s.enqueue((0..<5).map { _ in NewJob("Call") })
            #expect(try s.claim().count == 3)
            _ = try s.cancel(ids[4])
            #expect(try s.state(ids[4]) != .scheduled)
            #expect(try s.pruneRateLimits() == 1, "the cancelled job's time goes")
            #expect(try s.rateLimitKeys().first?.waiting == 1)
            clock.advance(by: 59)
            #expect(try s.pruneRateLimits() == 0, "starts are kept a minute")
            clock.advance(by: 1.5)
            #expect(try s.pruneRateLimits() == 3, "starts past the period and the minute go")
            #expect(try s.rateLimitKeys().first?.started == 0)
            // Without the rule, a waiting job runs when its time comes, held by nothing.
            try s.syncRateLimitRules([])
            _ = try s.dispatchDue()
            #expect(try s.claim().map(\.id) == [ids[3]])
        }
    }
}
