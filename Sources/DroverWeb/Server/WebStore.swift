import DroverPersistence
import DroverQueue
import Foundation

/// The dashboard's way to the database: one connection of its own (not the heartbeat's), used by
/// one thread at a time, since connections block; requests wait their turn. Opened on first use
/// and again after the database went away, so a server started during an outage serves as soon
/// as the database is back.
///
/// ```swift
/// let queues = try await store.read { try $0.listQueues() }
/// ```
public final class WebStore: @unchecked Sendable {
    // @unchecked: `admin` and `ping` are touched only on `queue`.
    private let queue = DispatchQueue(label: "drover.web.store")
    private let open: @Sendable () throws -> (admin: any QueueAdmin, ping: () throws -> Void)
    private var admin: (any QueueAdmin)?
    private var pingDatabase: (() throws -> Void)?
    /// "PostgreSQL" or "SQLite".
    public let backendName: String

    /// A store on `url` (a PostgreSQL URL, or `sqlite:` and a path) with `options`.
    public init(url: String, options: StoreOptions) {
        backendName = StoreFactory.driver(for: url).backendName
        open = { try Self.open(StoreFactory.driver(for: url), url: url, options: options) }
    }

    private static func open<D: StoreDriver>(_: D.Type, url: String, options: StoreOptions) throws
        -> (admin: any QueueAdmin, ping: () throws -> Void)
    {
        let (store, database) = try D.open(url: url, options: options)
        return (BoundQueue(store: store, database: database), { _ = try database.fetch("SELECT 1 AS one") })
    }

    /// Runs `body` with the queue on the store's own thread. A connection that failed is opened
    /// again by the next call.
    public func read<T: Sendable>(_ body: @escaping @Sendable (any QueueAdmin) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.onQueue { admin, _ in try body(admin) } })
            }
        }
    }

    /// Asks the database for `SELECT 1`: whether it answers.
    public func ping() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.async {
                continuation.resume(with: Result { try self.onQueue { _, ping in try ping() } })
            }
        }
    }

    private func onQueue<T>(_ body: (any QueueAdmin, () throws -> Void) throws -> T) throws -> T {
        if admin == nil {
            let opened = try open()
            (admin, pingDatabase) = (opened.admin, opened.ping)
        }
        do {
            return try body(admin!, pingDatabase!)
        } catch let error as DatabaseError where [.connectionFailed, .connectionLost].contains(error.code) {
            // A SQLite file or a PostgreSQL connection that went away: the next call starts afresh.
            (admin, pingDatabase) = (nil, nil)
            throw error
        }
    }
}
