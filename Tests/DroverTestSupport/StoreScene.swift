import DroverPersistence
import DroverQueue
import Foundation

/// Setting a scene in the store a command or a dashboard under test reads, on either backend:
/// what a worker would have done.
public enum StoreScene {
    /// The store of `url` and `schema` (migrated already), whichever backend it is.
    private static func withStore<R>(url: String, schema: String, _ body: (any SceneStore) throws -> R) throws -> R {
        func open<D: StoreDriver>(_: D.Type) throws -> R {
            let (store, db) = try D.open(url: url, options: StoreOptions(schema: schema, migrating: .never))
            return try body(Bound(store: store, db: db))
        }
        return try open(StoreFactory.driver(for: url))
    }

    /// Fails `ids` (ready jobs) for good with `error`, as a worker would (claimed, then failed);
    /// other jobs the claim took go back to ready.
    public static func failJobs(_ ids: [Int], error: JobFailure, url: String, schema: String) throws {
        try withStore(url: url, schema: schema) { try $0.fail(ids, error: error) }
    }

    /// Fails `id` (a ready job) once, retried by `policy`; or, with `snooze`, snoozes it for that long.
    public static func failOnce(_ id: Int, policy: RetryPolicy? = nil, snooze: Duration? = nil, url: String, schema: String) throws {
        try withStore(url: url, schema: schema) { try $0.failOnce(id, policy: policy, snooze: snooze) }
    }

    /// Claims every ready job of `queues`, as a worker would: what a worker gets.
    public static func claim(_ queues: QueueSelection, url: String, schema: String) throws -> [ClaimedJob] {
        try withStore(url: url, schema: schema) { try $0.claim(queues) }
    }

    private protocol SceneStore {
        func fail(_ ids: [Int], error: JobFailure) throws
        func failOnce(_ id: Int, policy: RetryPolicy?, snooze: Duration?) throws
        func claim(_ queues: QueueSelection) throws -> [ClaimedJob]
    }

    private struct Bound<D: StoreDriver>: SceneStore {
        let store: JobStore<D>
        let db: D.Database
        static var processID: Int { 424_242 }

        func fail(_ ids: [Int], error: JobFailure) throws {
            _ = try store.claim(processID: Self.processID, queues: ["*"], limit: 10_000, on: db)
            for id in ids { _ = try store.fail(id, processID: Self.processID, error: error, permanent: true, on: db) }
            _ = try store.release(processID: Self.processID, reason: .graceful, on: db)
        }

        func claim(_ queues: QueueSelection) throws -> [ClaimedJob] {
            try store.claim(processID: Self.processID + 1, queues: queues, limit: 10_000, on: db)
        }

        func failOnce(_ id: Int, policy: RetryPolicy?, snooze: Duration?) throws {
            _ = try store.claim(processID: Self.processID, queues: ["*"], limit: 10_000, on: db)
            if let snooze {
                _ = try store.snooze(id, processID: Self.processID, for: snooze, on: db)
            } else {
                _ = try store.fail(id, processID: Self.processID, error: JobFailure(errorClass: "Flaky", message: "try later"),
                                   retryPolicy: policy, on: db)
            }
            _ = try store.release(processID: Self.processID, reason: .graceful, on: db)
        }
    }
}
