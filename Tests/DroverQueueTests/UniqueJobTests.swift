import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Unique jobs")
struct UniqueJobTests {
    @Test("while a job with the key is live, enqueueing another returns it; once it finished, a new one is created")
    func liveJobIsReturned() throws {
        try withStore { store, db throws in
            let first = try store.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"), on: db)
            #expect(try store.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"), on: db) == first)
            // Scheduled and claimed jobs are live too.
            let later = try store.enqueue(NewJob("Report", runIn: .seconds(3600), uniqueKey: "later"), on: db)
            #expect(try store.enqueue(NewJob("Report", uniqueKey: "later"), on: db) == later)
            _ = try store.claim(processID: 1, queues: ["*"], limit: 1, on: db)
            #expect(try store.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"), on: db) == first)
            _ = try store.finish([first], processID: 1, on: db)
            let second = try store.enqueue(NewJob("Report", uniqueKey: "report:2026-11-27"), on: db)
            #expect(second != first)
            #expect(try state(store, second, db) == .ready)
            try expectInvariant(store, db)
        }
    }

    @Test("in one batch, ids come back in input order, duplicates of a key sharing one job")
    func batchOrder() throws {
        try withStore { store, db throws in
            let existing = try store.enqueue(NewJob("A", uniqueKey: "k1"), on: db)
            let ids = try store.enqueue([
                NewJob("B"), NewJob("A", uniqueKey: "k1"), NewJob("C"), NewJob("D", uniqueKey: "k2"),
                NewJob("E", uniqueKey: "k2"), NewJob("F"),
            ], on: db)
            #expect(ids.count == 6)
            #expect(ids[1] == existing && ids[3] == ids[4])
            let classes = try ids.map { try #require(try store.job($0, on: db)).className }
            #expect(classes == ["B", "A", "C", "D", "D", "F"])
            #expect(try count(store, "jobs", db) == 5)
            try expectInvariant(store, db)
        }
    }

    @Test("50 concurrent enqueues with the same key create one job")
    func concurrentEnqueues() throws {
        try withStore { store, db throws in
            let outcomes = try raceOnConnections(50) { connection in
                try store.enqueue(NewJob("Once", uniqueKey: "the-one"), on: connection)
            }
            let all = outcomes.compactMap { try? $0.get() }
            #expect(all.count == 50)
            #expect(Set(all).count == 1)
            #expect(try count(store, "jobs", db) == 1)
        }
    }
}
