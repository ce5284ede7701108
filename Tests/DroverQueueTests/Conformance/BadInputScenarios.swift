import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Bad input to every store operation: the same error, in the same words, on every backend, and
/// nothing written. Each case runs on each backend against the same scene; what it says is
/// compared across backends, and a dump of every table before and after must be the same.
@Suite("Store: bad input gives one error on every backend and writes nothing")
struct BadInputScenarios {
    struct Scene {
        let finished: Int
        let failed: Int
        let claimed: Int
        let ready: Int
    }

    /// One job in each of four states, a static task, and a rule.
    static func scene(_ s: any TestStore) throws -> Scene {
        try s.syncStaticTasks([RecurringTask(key: "static", schedule: "@daily", className: "Report", isStatic: true)])
        let ids = try s.enqueue([NewJob("A"), NewJob("B"), NewJob("C"), NewJob("D")])
        _ = try s.claim(1, ["*"], limit: 3)
        try s.finish([ids[0]])
        try s.fail(ids[1], permanent: true)
        return Scene(finished: ids[0], failed: ids[1], claimed: ids[2], ready: ids[3])
    }

    static let farFuture = Date(timeIntervalSince1970: 253_402_300_800)  // 10000-01-01
    static let beforeYearOne = Date(timeIntervalSince1970: -62_135_596_801)
    static let oversized = JSON.object("[\"" + String(repeating: "x", count: JobRules.maxArgumentsBytes) + "\"]")

    /// (what, the operation) over a scene.
    nonisolated(unsafe) static let cases: [(String, (any TestStore, Scene) throws -> Void)] = [
        ("enqueue: a class with a space", { s, _ in _ = try s.enqueue(NewJob("Bad Class")) }),
        ("enqueue: a queue with a space", { s, _ in _ = try s.enqueue(NewJob("A", queue: "no spaces")) }),
        ("enqueue: priority 32768", { s, _ in _ = try s.enqueue(NewJob("A", priority: 32768)) }),
        ("enqueue: priority -32769", { s, _ in _ = try s.enqueue(NewJob("A", priority: -32769)) }),
        ("enqueue: max_attempts 0", { s, _ in _ = try s.enqueue(NewJob("A", maxAttempts: 0)) }),
        ("enqueue: a timeout of 0.5 s", { s, _ in _ = try s.enqueue(NewJob("A", timeout: .milliseconds(500))) }),
        ("enqueue: run_at in year 10000", { s, _ in _ = try s.enqueue(NewJob("A", runAt: farFuture)) }),
        ("enqueue: run_at before year 1", { s, _ in _ = try s.enqueue(NewJob("A", runAt: beforeYearOne)) }),
        ("enqueue: run_at far beyond any calendar", { s, _ in _ = try s.enqueue(NewJob("A", runAt: Date(timeIntervalSince1970: 1e15))) }),
        ("enqueue: arguments over 1 MiB", { s, _ in _ = try s.enqueue(NewJob("A", arguments: oversized)) }),
        ("enqueue: arguments that are a number", { s, _ in _ = try s.enqueue(NewJob("A", arguments: .object("42"))) }),
        ("enqueue: an empty unique key", { s, _ in _ = try s.enqueue(NewJob("A", uniqueKey: "")) }),
        ("enqueue: a trace context over 16 KiB", { s, _ in
            _ = try s.enqueue(NewJob("A", traceContext: ["baggage": String(repeating: "b", count: JobRules.maxTraceContextBytes)]))
        }),
        ("enqueue: the third job of a batch is bad", { s, _ in
            _ = try s.enqueue([NewJob("A"), NewJob("B", uniqueKey: "u"), NewJob("C", priority: 99_999)])
        }),
        ("pause: a queue with a star", { s, _ in _ = try s.pause("mail*") }),
        ("resume: an empty queue name", { s, _ in _ = try s.resume("") }),
        ("clear: a queue name of 101 characters", { s, _ in _ = try s.clear(String(repeating: "q", count: 101)) }),
        ("clear: a batch of 0", { s, _ in _ = try s.clear("default", batchSize: 0) }),
        ("jobs list: a negative limit", { s, _ in _ = try s.list(limit: -1) }),
        ("jobs list: a queue with a space", { s, _ in _ = try s.list(queue: "a b") }),
        ("retry: unknown ids, one given twice", { s, _ in _ = try s.retryFailed([424_242, 424_242, 424_243]) }),
        ("retry: a failed job with a ready and a finished one", { s, scene in _ = try s.retryFailed([scene.failed, scene.ready, scene.finished]) }),
        ("retry --all: a batch of 0", { s, _ in _ = try s.retryAllFailed(batchSize: 0) }),
        ("discard: a claimed job twice", { s, scene in _ = try s.discardFailed([scene.claimed, scene.claimed]) }),
        ("discard: an unknown id with a failed one", { s, scene in _ = try s.discardFailed([scene.failed, 999_999]) }),
        ("discard --all: a batch of -3", { s, _ in _ = try s.discardAllFailed(batchSize: -3) }),
        ("cancel: an unknown id", { s, _ in _ = try s.cancel(999_999) }),
        ("cancel: a finished job", { s, scene in _ = try s.cancel(scene.finished) }),
        ("cancel: a failed job", { s, scene in _ = try s.cancel(scene.failed) }),
        ("dispatch: a batch of 0", { s, _ in _ = try s.dispatchDue(batchSize: 0) }),
        ("expire: a batch of 0", { s, _ in _ = try s.expireConcurrency(batchSize: 0) }),
        ("clear finished: a batch of 0", { s, _ in _ = try s.clearFinished(olderThan: .seconds(1), batchSize: 0) }),
        ("clear runs: a batch of 0", { s, _ in _ = try s.clearRecurringRuns(olderThan: .seconds(1), batchSize: 0) }),
        ("add task: a key with a space", { s, _ in try s.addTask(RecurringTask(key: "two words", schedule: "@daily", className: "R")) }),
        ("add task: a bad class", { s, _ in try s.addTask(RecurringTask(key: "k", schedule: "@daily", className: "Bad Class")) }),
        ("add task: the configuration's key", { s, _ in try s.addTask(RecurringTask(key: "static", schedule: "@hourly", className: "R")) }),
        ("remove task: an unknown key", { s, _ in try s.removeTask("nobody") }),
        ("remove task: the configuration's key", { s, _ in try s.removeTask("static") }),
        ("sync tasks: one of them bad", { s, _ in
            try s.syncStaticTasks([RecurringTask(key: "ok", schedule: "@daily", className: "R", isStatic: true),
                                   RecurringTask(key: "", schedule: "@daily", className: "R", isStatic: true)])
        }),
        ("sync rules: no slots", { s, _ in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "S", keyTemplate: "k", maxRunning: 0, duration: .seconds(1))])
        }),
        ("sync rules: a duration of 0", { s, _ in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "S", keyTemplate: "k", maxRunning: 1, duration: .zero)])
        }),
        ("sync rules: 10,001 slots", { s, _ in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "S", keyTemplate: "k", maxRunning: 10_001, duration: .seconds(1))])
        }),
        ("sync rules: Int.max slots", { s, _ in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "S", keyTemplate: "k", maxRunning: .max, duration: .seconds(1))])
        }),
        ("sync rules: a duration past any calendar (read back, it overflowed)", { s, _ in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "S", keyTemplate: "k", maxRunning: 1, duration: .seconds(Int64.max))])
        }),
        ("finish: unknown and repeated ids", { s, scene in
            let outcome = try s.finish([999_999, 999_999, scene.ready, scene.failed])
            throw Said("finished \(outcome.finished), dropped \(outcome.dropped)")
        }),
        ("fail: a job another process holds", { s, scene in throw Said("\(try s.fail(scene.claimed, by: 2))") }),
        ("release: jobs this process does not hold", { s, scene in throw Said("\(try s.release(2, jobs: [scene.claimed, 999_999]))") }),
    ]

    /// Not an error: what an operation returned, compared across backends like an error.
    struct Said: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// What a backend said: the error's kind, code, words, field and jobs.
    static func said(_ error: any Error) -> String {
        switch error {
        case let error as QueueError:
            return "QueueError \(error.code) field=\(error.field ?? "-") jobs=\(error.jobIDs): \(error.message)"
        case let error as Said:
            return "returned \(error.description)"
        default:
            return "\(type(of: error)): \(error)"
        }
    }

    /// Every row of every table, as text.
    static func dump(_ s: any TestStore) throws -> String {
        var text = ""
        for table in ["jobs", "ready_executions", "claimed_executions", "scheduled_executions", "blocked_executions",
                      "failed_executions", "processes", "pauses", "semaphores", "concurrency_rules", "recurring_tasks",
                      "recurring_executions"] {
            for row in try s.sql("SELECT * FROM \(s.table(table)) ORDER BY 1") {
                text += table + ": " + row.columns.sorted().map { "\($0)=\(row[$0]?.text ?? "NULL")" }.joined(separator: " ") + "\n"
            }
        }
        return text
    }

    @Test("each bad request: one error, in the same words, on PostgreSQL and SQLite, and no row changed")
    func sameErrorNothingWritten() throws {
        let clock = ManualClock()
        var answers: [Backend: [String]] = [:]
        for backend in Backend.allCases {
            answers[backend] = try backend.withStore(clock: clock.storeClock) { s in
                let scene = try Self.scene(s)
                return try Self.cases.map { what, operation in
                    let before = try Self.dump(s)
                    var answer = "no error"
                    do {
                        try operation(s, scene)
                    } catch {
                        answer = Self.said(error)
                    }
                    #expect(try Self.dump(s) == before, "\(backend), \(what): the bad request changed rows")
                    #expect(answer.hasPrefix("QueueError") || answer.hasPrefix("returned"), "\(backend), \(what): \(answer)")
                    return answer
                }
            }
        }
        for (index, (what, _)) in Self.cases.enumerated() {
            #expect(answers[.postgresql]![index] == answers[.sqlite]![index],
                    "\(what):\n  PostgreSQL: \(answers[.postgresql]![index])\n  SQLite:     \(answers[.sqlite]![index])")
        }
    }
}
