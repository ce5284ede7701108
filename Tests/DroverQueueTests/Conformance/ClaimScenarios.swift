import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: claiming, on every backend")
struct ClaimScenarios {
    /// Enqueues one job per (queue, priority) and returns "queue/priority" labels by id.
    private func enqueue(_ specs: [(String, Int)], _ s: any TestStore) throws -> [Int: String] {
        let ids = try s.enqueue(specs.map { NewJob("Work", queue: $0.0, priority: $0.1) })
        return Dictionary(uniqueKeysWithValues: zip(ids, specs.map { "\($0.0)/\($0.1)" }))
    }

    @Test("queues in list order, a prefix in name order (case sensitive), then priority, then id", arguments: Backend.allCases)
    func order(_ backend: Backend) throws {
        try backend.withStore { s in
            let labels = try enqueue([
                ("mail_b", 0), ("default", 5), ("critical", 1), ("other", -9), ("mail_a", 3), ("default", 0), ("critical", 0),
                ("mail_a", 1), ("default", 0), ("mailXa", 0), ("MAIL_a", 0),
            ], s)
            let claimed = try s.claim(1, ["critical", "default", "mail_*"], limit: 100)
            #expect(claimed.map { labels[$0.id]! } == [
                "critical/0", "critical/1", "default/0", "default/0", "default/5", "mail_a/1", "mail_a/3", "mail_b/0",
            ])
            let twoDefaults = claimed.filter { $0.queue == "default" && $0.priority == 0 }.map(\.id)
            #expect(twoDefaults == twoDefaults.sorted(), "equal priorities go by id")
            // "mail_*" is a prefix: _ is no wildcard and case counts, so mailXa and MAIL_a stay.
            #expect(try s.list(state: .ready).map(\.queue).sorted() == ["MAIL_a", "mailXa", "other"])
            #expect(try s.job(claimed[0].id)?.claimedBy == 1)
        }
    }

    @Test("* takes every queue by priority, then id", arguments: Backend.allCases)
    func wildcard(_ backend: Backend) throws {
        try backend.withStore { s in
            let labels = try enqueue([("b", 2), ("a", 1), ("c", 1), ("a", -1)], s)
            #expect(try s.claim(1, ["*"], limit: 10).map { labels[$0.id]! } == ["a/-1", "a/1", "c/1", "b/2"])
        }
    }

    @Test("overlapping and repeated patterns claim each job once, in the order of the worker's list", arguments: Backend.allCases)
    func overlappingPatterns(_ backend: Backend) throws {
        try backend.withStore { s in
            // The layout of issue 15: one job in default, two in critical, and critical before *.
            let labels = try enqueue([("default", 0), ("critical", 0), ("critical", 0)], s)
            let first = try s.claim(1, ["critical", "*"], limit: 5)
            #expect(first.map { labels[$0.id]! } == ["critical/0", "critical/0", "default/0"])
            #expect(Set(first.map(\.id)).count == 3)
            // A name inside a prefix, the prefix again, and * over both.
            let more = try enqueue([("mail.in", 1), ("mail.out", 0), ("mail.out", 2), ("other", 0)], s)
            let second = try s.claim(2, try QueueSelection(["mail.out", "mail*", "mail.out", "*"]), limit: 10)
            #expect(second.map { more[$0.id]! } == ["mail.out/0", "mail.out/2", "mail.in/1", "other/0"])
            // With a limit that ends inside the second pattern.
            _ = try enqueue([("critical", 0), ("default", 0), ("default", 1)], s)
            #expect(try s.claim(3, ["critical", "*"], limit: 2).map(\.queue) == ["critical", "default"])
            #expect(try s.count("claimed_executions") == 9 && s.count("ready_executions") == 1)
        }
    }

    @Test("the limit is respected and the claim records the process; the job says which attempt this is", arguments: Backend.allCases)
    func limitAndProcess(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue((0..<10).map { _ in NewJob("Work", arguments: .object(#"{"k": 1}"#)) })
            let first = try s.claim(41, ["default"], limit: 3)
            let second = try s.claim(42, ["default"], limit: 100)
            #expect(first.count == 3 && second.count == 7)
            #expect(try s.claimedJobIDs(processID: 41) == first.map(\.id).sorted())
            #expect(try s.count("claimed_executions", where: "process_id = 42") == 7)
            #expect(first[0].attempt == 1 && first[0].crashes == 0)
            #expect(try first[0].arguments.decode([String: Int].self) == ["k": 1])
            #expect(try s.claim(43, ["default"], limit: 5).isEmpty)
            #expect(try s.claim(43, ["default"], limit: 0).isEmpty)
        }
    }

    @Test("paused queues are passed over until resumed", arguments: Backend.allCases)
    func pauses(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue([NewJob("W", queue: "a"), NewJob("W", queue: "b"), NewJob("W", queue: "b")])
            #expect(try s.pause("b"))
            #expect(try !s.pause("b"), "pausing twice says it was paused already")
            #expect(try s.claim(1, ["*"], limit: 10).map(\.queue) == ["a"])
            #expect(try s.claim(1, ["b"], limit: 10).isEmpty && s.claim(1, ["b*"], limit: 10).isEmpty)
            #expect(try s.resume("b"))
            #expect(try !s.resume("b"))
            #expect(try s.claim(1, ["b*"], limit: 10).map(\.queue) == ["b", "b"])
        }
    }

    @Test("a paused class is passed over on every queue, in every claim order, until resumed; other classes run on; enqueueing goes on",
          arguments: Backend.allCases)
    func classPauses(_ backend: Backend) throws {
        try backend.withStore { s in
            // The paused class's jobs come first in every order: by queue, by priority, by id.
            _ = try s.enqueue([
                NewJob("Sync", queue: "a", priority: -5), NewJob("Sync", queue: "b", priority: -5), NewJob("Mail", queue: "a"),
                NewJob("Sync", queue: "a"), NewJob("Mail", queue: "b"),
            ])
            #expect(try s.pauseClass("Sync"))
            #expect(try !s.pauseClass("Sync"), "pausing twice says it was paused already")
            #expect(try s.pausedClasses().map { "\($0.className) \($0.ready)" } == ["Sync 3"])
            _ = try s.enqueue(NewJob("Sync", queue: "b"))
            #expect(try s.pausedClasses().first?.ready == 4, "enqueueing goes on")
            for selection: QueueSelection in [["a"], ["b*"], ["*"]] {
                let claimed = try s.claim(1, selection, limit: 10)
                #expect(claimed.allSatisfy { $0.className == "Mail" }, "\(selection): \(claimed.map(\.className))")
            }
            #expect(try s.claim(1, ["*"], limit: 10).isEmpty, "only the paused class's jobs are left")
            try s.expectInvariant()
            // A class paused with its queue paused too: both must be resumed.
            #expect(try s.pause("a"))
            #expect(try s.resumeClass("Sync"))
            #expect(try !s.resumeClass("Sync"), "resuming twice says it was not paused")
            #expect(try s.claim(1, ["*"], limit: 10).map(\.queue) == ["b", "b"], "queue a is still paused")
            #expect(try s.resume("a"))
            #expect(try s.claim(1, ["*"], limit: 10).map(\.className) == ["Sync", "Sync"])
            #expect(try s.pausedClasses().isEmpty)
            #expect(throws: QueueError.self) { try s.pauseClass("not a class") }
            try s.expectInvariant()
        }
    }

    @Test("8 claimers on connections of their own over 3,000 ready jobs claim every job exactly once", arguments: Backend.allCases)
    func concurrentClaimers(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue((0..<3_000).map { NewJob("Work", queue: $0 % 3 == 0 ? "a" : "b", priority: $0 % 5) })
            let claimed = try raceClaimers(8, on: s) { worker, store in try store.claim(worker, ["a", "b"], limit: 37) }
            let all = claimed.flatMap { $0 }
            #expect(all.count == 3_000 && Set(all).count == 3_000, "no job was claimed twice, none was left")
            if backend == .postgresql {
                // SKIP LOCKED lets claims run side by side; SQLite's claims take turns under its write lock.
                #expect(claimed.filter { !$0.isEmpty }.count > 1, "the work was shared")
            }
            for (worker, ids) in zip(1..., claimed) {
                #expect(try s.count("claimed_executions", where: "process_id = \(worker)") == ids.count)
            }
        }
    }
}

/// Runs `count` claimers (processes 1 to `count`), each on a connection of its own to `s`'s
/// database, released together; each claims with `claim` until it gets nothing. Returns the ids
/// each one got, in claimer order.
func raceClaimers(
    _ count: Int, on s: any TestStore, timeout: Duration = .seconds(120),
    _ claim: @escaping @Sendable (_ worker: Int, _ store: any TestStore) throws -> [ClaimedJob]
) throws -> [[Int]] {
    let stores = try (1...count).map { _ in UncheckedBox(try s.connectAgain()) }
    let gate = Gate()
    let claimers = zip(1..., stores).map { worker, store in
        BackgroundWork("claimer \(worker)") { () -> [Int] in
            gate.wait()
            var mine: [Int] = []
            while true {
                let batch = try claim(worker, store.value)
                if batch.isEmpty { return mine }
                mine += batch.map(\.id)
            }
        }
    }
    gate.open()
    return try claimers.map { try $0.value(timeout: timeout) }
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

/// Hands a non-Sendable value to one other thread, which the test then waits for.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
