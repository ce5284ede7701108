import DroverPersistence
import DroverQueue
import Foundation

/// A process's heartbeat: its row's `last_heartbeat_at` (and `metadata`) written through the record
/// layer's `withLock`, which flushes a change left pending by a failed heartbeat before it locks.
///
/// `last_heartbeat_at` is the database's time (PostgreSQL's `now()`; SQLite's host clock), never
/// the beating host's: pruning compares it with the same clock, so a host whose clock is wrong is
/// neither pruned while alive nor kept alive when dead.
public final class Heartbeat {
    public enum Outcome: Equatable {
        case beat
        /// The row is gone: another supervisor took this process for dead and recovered its jobs.
        case rowGone
        /// The database is unreachable (the lease is not renewed: outages count against it).
        case outage
        /// The database answered but the heartbeat failed (a lock held too long, say).
        case failed(String)
    }

    public let record: Record
    public let processID: Int
    /// Heartbeats that failed (not counting outages) since the last success began.
    private var failingSince: ContinuousClock.Instant?

    public init(record: Record) throws {
        self.record = record
        processID = try record.get("id", as: Int.self)
    }

    /// Beats once, stamping the row with `time` (the store's `now()`). The change stays pending
    /// when it fails, and the next beat writes it first.
    public func beat<Database>(metadata: JSON, at time: SQL, session: DatabaseSession<Database>) -> Outcome {
        do {
            let done: Void? = try session.run { connection in try write(metadata: metadata, at: time, on: connection) }
            guard done != nil else { return .outage }
            failingSince = nil
            return .beat
        } catch let error as DatabaseError where error.code == .recordNotFound {
            return .rowGone
        } catch {
            if failingSince == nil { failingSince = .now }
            return .failed("\(error)")
        }
    }

    /// Sets the time (an expression: the database's `now()`) and metadata and writes them: flush,
    /// lock, reload, save, commit.
    public func write(metadata: JSON, at time: SQL, on connection: some SQLDatabase) throws {
        record.set("last_heartbeat_at", toExpression: time)
        record.set("metadata", to: metadata)
        try record.withLock(on: connection) { _ in }
    }

    /// How long heartbeats have been failing with the database reachable (outages do not count).
    public var failingFor: Duration {
        failingSince.map { .now - $0 } ?? .zero
    }
}
