import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: enqueue, on every backend")
struct EnqueueScenarios {
    @Test("a due job is ready at once, a future one scheduled; ids come back in order", arguments: Backend.allCases)
    func dueAndFuture(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let now = try s.enqueue(NewJob("SendReport", arguments: .object(#"{"id": 1}"#)))
            let later = try s.enqueue(NewJob("SendReport", runAt: clock.now.addingTimeInterval(3600)))
            let past = try s.enqueue(NewJob("SendReport", runAt: clock.now.addingTimeInterval(-3600)))
            let inAMinute = try s.enqueue(NewJob("SendReport", runAt: clock.now.addingTimeInterval(60)))
            #expect(try s.job(inAMinute)?.nextRunAt == clock.now.addingTimeInterval(60))
            #expect(now < later && later < past)
            #expect(try [now, later, past].map(s.state) == [.ready, .scheduled, .ready])
            let job = try #require(try s.job(now))
            #expect(job.queue == "default" && job.className == "SendReport" && job.priority == 0 && job.maxAttempts == 5)
            #expect(try job.arguments?.decode([String: Int].self) == ["id": 1])
            #expect(job.createdAt == clock.now)
        }
    }

    @Test("bulk enqueue writes every job, with its fields, and returns the ids in input order", arguments: Backend.allCases)
    func bulk(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let jobs = (0..<1000).map { i in
                NewJob("Bulk", arguments: .object("[\(i)]"), queue: i % 2 == 0 ? "even" : "odd", priority: i % 7,
                       runAt: i % 10 == 0 ? clock.now.addingTimeInterval(600) : nil, maxAttempts: 1 + i % 3,
                       timeout: i % 4 == 0 ? .milliseconds(1500) : nil)
            }
            let ids = try s.enqueue(jobs)
            #expect(ids.count == 1000 && ids == ids.sorted())
            let rows = try s.sql("SELECT id, arguments, queue_name, priority, max_attempts FROM \(s.table("jobs")) ORDER BY id")
            for (i, row) in rows.enumerated() {
                #expect(try row.decode("id", as: Int.self) == ids[i])
                #expect(try row.decode("arguments", as: JSON.self).decode([Int].self) == [i])
                #expect(try row.decode("queue_name", as: String.self) == (i % 2 == 0 ? "even" : "odd"))
                #expect(try row.decode("priority", as: Int.self) == i % 7)
                #expect(try row.decode("max_attempts", as: Int.self) == 1 + i % 3)
            }
            #expect(try s.count("scheduled_executions") == 100 && s.count("ready_executions") == 900)
            let claimed = try s.claim(1, ["even"], limit: 1000)
            #expect(claimed.count == 400, "500 even jobs, 100 of them scheduled")
            for job in claimed {
                let i = try #require(ids.firstIndex(of: job.id))
                #expect(job.timeout == (i % 4 == 0 ? .milliseconds(1500) : nil), "job \(i)")
            }
        }
    }

    @Test("a job's trace context is stored at enqueue and comes back with its claim, by every way of inserting", arguments: Backend.allCases)
    func traceContext(_ backend: Backend) throws {
        try backend.withStore { s in
            let trace = ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkgMzE", "x-quote": #"a"b\c/d"#]
            let batch = try s.enqueue([NewJob("Traced", traceContext: trace), NewJob("Plain"), NewJob("Empty", traceContext: [:])])
            let unique = try s.enqueue(NewJob("Traced", uniqueKey: "u1", traceContext: ["traceparent": "unique"]))
            let later = try s.enqueue(NewJob("Traced", runAt: s.currentTime().addingTimeInterval(-1), traceContext: ["traceparent": "later"]))
            let stored = try s.sql("SELECT id, trace_context FROM \(s.table("jobs")) ORDER BY id").map {
                (try $0.decode("id", as: Int.self), try $0.decode("trace_context", as: JSON?.self)?.decode([String: String].self))
            }
            #expect(stored.map(\.0) == batch + [unique, later])
            #expect(stored.map(\.1) == [trace, nil, nil, ["traceparent": "unique"], ["traceparent": "later"]], "an empty context stores nothing")
            let claimed = Dictionary(uniqueKeysWithValues: try s.claim().map { ($0.id, $0.traceContext) })
            #expect(claimed[batch[0]] == trace && claimed[batch[1]]! == nil && claimed[batch[2]]! == nil)
            #expect(claimed[unique] == ["traceparent": "unique"] && claimed[later] == ["traceparent": "later"])

            // A retry keeps it; something stored by other means that is not an object of strings
            // is ignored by the claim, which never fails over it.
            try s.fail(batch[0], error: JobFailure(errorClass: "E", message: "again"))
            try s.sql("UPDATE \(s.table("scheduled_executions")) SET scheduled_at = \(s.currentTime().addingTimeInterval(-1))")
            try s.dispatchDue()
            #expect(try s.claim().map(\.traceContext) == [trace])
            let odd = try s.enqueue(NewJob("Odd"))
            try s.sql("UPDATE \(s.table("jobs")) SET trace_context = \(JSON.object(#"{"depth": 1}"#)) WHERE id = \(odd)")
            let oddClaim = try s.claim()
            #expect(oddClaim.map(\.id) == [odd] && oddClaim[0].traceContext == nil)
            #expect(throws: DatabaseError.self, "the column holds objects only") {
                try s.sql("UPDATE \(s.table("jobs")) SET trace_context = \(JSON.object("[1]")) WHERE id = \(odd)")
            }
        }
    }

    @Test("enqueue inside the caller's transaction rolls back with it, and commits with it", arguments: Backend.allCases)
    func followsCallerTransaction(_ backend: Backend) throws {
        struct Abort: Error {}
        try backend.withStore { s in
            #expect(throws: Abort.self) {
                try s.withTransaction {
                    _ = try s.enqueue(NewJob("Rolled"))
                    _ = try s.enqueue([NewJob("Rolled"), NewJob("Back", uniqueKey: "k")])
                    throw Abort()
                }
            }
            #expect(try s.count("jobs") == 0 && s.count("ready_executions") == 0)
            let id = try s.withTransaction { try s.enqueue(NewJob("Kept")) }
            #expect(try s.connectAgain().state(id) == .ready)
        }
    }

    @Test("a bad job throws before anything is written, so the caller's transaction carries on", arguments: Backend.allCases)
    func validationKeepsCallerTransaction(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.withTransaction {
                #expect(throws: QueueError.self) { try s.enqueue(NewJob("Bad Class")) }
                _ = try s.enqueue(NewJob("Good"))
            }
            #expect(try s.count("jobs") == 1)
            let error = #expect(throws: QueueError.self) { try s.enqueue([NewJob("Good"), NewJob("Good", queue: "no spaces")]) }
            #expect(error?.message.hasPrefix("job 2: queue") == true)
            #expect(try s.count("jobs") == 1, "one bad job in a batch: none is written")
        }
    }

    @Test("while a job with a unique key is live, enqueueing another returns it; once it finished, a new one is made",
          arguments: Backend.allCases)
    func uniqueKeys(_ backend: Backend) throws {
        try backend.withStore { s in
            let first = try s.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"))
            #expect(try s.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27")) == first)
            // Scheduled, claimed and blocked jobs are live too; failed and finished ones are not.
            let later = try s.enqueue(NewJob("Report", runIn: .seconds(3600), uniqueKey: "later"))
            #expect(try s.enqueue(NewJob("Other", uniqueKey: "later")) == later)
            _ = try s.claim(1, ["*"], limit: 1)
            #expect(try s.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27")) == first)
            try s.finish([first])
            let second = try s.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"))
            #expect(try second != first && s.state(second) == .ready)
            _ = try s.claim(1, ["*"], limit: 1)
            try s.fail(second, permanent: true)
            #expect(try s.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27")) > second, "a failed job frees its key")
        }
    }

    @Test("in one batch, ids follow the input, duplicates of a key sharing one job", arguments: Backend.allCases)
    func uniqueBatch(_ backend: Backend) throws {
        try backend.withStore { s in
            let existing = try s.enqueue(NewJob("A", uniqueKey: "k1"))
            let ids = try s.enqueue([
                NewJob("B"), NewJob("A", uniqueKey: "k1"), NewJob("C"), NewJob("D", uniqueKey: "k2"), NewJob("E", uniqueKey: "k2"),
                NewJob("F"),
            ])
            #expect(ids[1] == existing && ids[3] == ids[4])
            #expect(try ids.map { try #require(try s.job($0)).className } == ["B", "A", "C", "D", "D", "F"])
            #expect([ids[0], ids[2], ids[3], ids[5]] == [ids[0], ids[2], ids[3], ids[5]].sorted(), "new jobs' ids follow the input")
            #expect(try s.count("jobs") == 5)
        }
    }

    @Test("50 concurrent enqueues with one unique key on connections of their own make one job", arguments: Backend.allCases)
    func concurrentUniqueEnqueues(_ backend: Backend) throws {
        try backend.withStore { s in
            let stores = try (0..<50).map { _ in UncheckedBox(try s.connectAgain()) }
            let gate = Gate()
            let work = stores.map { store in
                BackgroundWork { () -> Int in
                    gate.wait()
                    return try store.value.enqueue(NewJob("Once", uniqueKey: "the-one"))
                }
            }
            gate.open()
            let ids = try work.map { try $0.value(timeout: .seconds(60)) }
            #expect(Set(ids).count == 1)
            #expect(try s.count("jobs") == 1)
        }
    }
}
