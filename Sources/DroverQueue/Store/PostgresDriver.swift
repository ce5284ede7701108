import DroverPersistence
import Foundation

/// Drover's store on PostgreSQL: many processes on many hosts share the database; claims pass over
/// rows other claimers hold (`SKIP LOCKED`); workers LISTEN on the schema's channel. See
/// ``StoreDriver`` for what a driver decides; the statements PostgreSQL writes its own way sit
/// beside their operations (`Claim.swift`, `Enqueue.swift`, `Finish.swift`).
public struct PostgresDriver: StoreDriver {
    public typealias Database = Connection

    public init() {}

    public static let backendName = "PostgreSQL"
    public static var migrations: [Migration] { DroverSchema.migrations }

    /// The server's `now()` (the transaction's start: one time for the whole operation), unless
    /// the store has a clock of its own.
    public func moment(_ clock: StoreClock) -> Moment {
        if let fixed = clock.fixed { return Moment(fixed()) }
        return Moment { seconds in seconds == 0 ? "now()" : "(now() + make_interval(secs => \(seconds)))" }
    }

    public func contains(_ column: SQL, ids: [Int]) -> SQL { "\(column) = ANY(\(ids))" }
    public func contains(_ column: SQL, names: [String]) -> SQL { "\(column) = ANY(\(names))" }

    public func jsonSetting(_ column: SQL, key: String, to value: JSON) -> SQL {
        "\(column) || jsonb_build_object(CAST(\(key) AS text), \(value))"
    }

    public var lockingRows: SQL { " FOR UPDATE" }
    public var lockingRowsSkippingLocked: SQL { " FOR UPDATE SKIP LOCKED" }

    public func interval(seconds: SQL) -> SQL { "make_interval(secs => \(seconds))" }
    public func seconds(of interval: SQL) -> SQL { "extract(epoch FROM \(interval))::float8" }

    /// One NOTIFY per queue on the schema's channel, the queue's name as payload; PostgreSQL
    /// delivers them at the commit and folds repeats within one transaction.
    public func wakeWorkers(queues: [String], in store: JobStore<Self>, on database: Connection) throws {
        guard !queues.isEmpty else { return }
        _ = try database.fetch(
            "SELECT count(pg_notify(\(store.wakeChannel), q)) FROM unnest(\(Array(Set(queues)).sorted())) AS q", prepared: true)
    }

    /// `cancel <process id>` on the schema's channel, which no queue name can be.
    public func askToCancel(processID: Int, in store: JobStore<Self>, on database: Connection) throws {
        _ = try database.fetch("SELECT pg_notify(\(store.wakeChannel), \("cancel \(processID)"))")
    }
}

extension PostgresDriver {
    /// Session settings for the connections of Drover's processes. Every statement they run is
    /// written for an index; but when one queue holds every job (as in most deployments), the
    /// planner estimates that `queue_name <> ALL (paused queues)` keeps a single row, and would
    /// read and sort every ready row instead of walking the index (measured: 0.6 s per claim at
    /// 900,000 ready jobs, against 0.1 ms). Without sequential scans and sorts to choose, it keeps
    /// to the indexes. (The sort of the few claimed rows at the end of a claim stays: it has no
    /// alternative.) JIT compilation goes too: a disabled plan node counts as a huge cost, which
    /// would make PostgreSQL compile every claim (200 ms each), and these statements never need it.
    /// Prepared statements keep one generic plan: PostgreSQL would otherwise plan a claim or a
    /// finish afresh for its values each time, whenever it judged the generic plan costlier, which
    /// it did (measured: 0.4 ms of a 1.3 ms worker turn; one worker's burn-down went from 3,800 to
    /// 5,400 jobs/s). The plans are index lookups whatever the values.
    public static let plannerSettings = [
        ("enable_seqscan", "off"), ("enable_sort", "off"), ("jit", "off"), ("plan_cache_mode", "force_generic_plan"),
    ]

    /// The worker a cancellation notification is for, or nil when the payload is a queue.
    public static func cancelledProcess(inNotification payload: String) -> Int? {
        guard payload.hasPrefix("cancel ") else { return nil }
        return Int(payload.dropFirst("cancel ".count))
    }
}
