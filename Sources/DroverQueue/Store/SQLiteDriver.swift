import DroverPersistence
import Foundation

/// Drover's store in a SQLite file, for one host with no database server. SQLite serializes
/// writers: every write transaction takes the database's write lock at its start (`BEGIN
/// IMMEDIATE`), so it needs no row locks and a claim never races another claim. Workers on the
/// host watch the wake file next to the database (inotify), which a commit that made jobs ready
/// touches. See ``StoreDriver``.
public struct SQLiteDriver: StoreDriver {
    public typealias Database = SQLiteConnection

    public init() {}

    public static let backendName = "SQLite"
    public static var migrations: [Migration] { DroverSchema.sqliteMigrations }

    /// SQLite has no server: the host's clock, read once per operation (or the store's own clock).
    public func moment(_ clock: StoreClock) -> Moment { Moment(clock.fixed?() ?? Date()) }

    public func contains(_ column: SQL, ids: [Int]) -> SQL {
        "\(column) IN (SELECT value FROM json_each(\("[" + ids.map(String.init).joined(separator: ",") + "]")))"
    }

    public func contains(_ column: SQL, names: [String]) -> SQL {
        // Encoding strings as JSON cannot fail.
        let array = String(decoding: try! JSONEncoder().encode(names), as: UTF8.self)
        return "\(column) IN (SELECT value FROM json_each(\(array)))"
    }

    public func jsonSetting(_ column: SQL, key: String, to value: JSON) -> SQL {
        "json_set(\(column), \("$." + key), json(\(value.text)))"
    }

    public var lockingRows: SQL { "" }
    public var lockingRowsSkippingLocked: SQL { "" }

    public func interval(seconds: SQL) -> SQL { seconds }
    public func seconds(of interval: SQL) -> SQL { interval }

    public func wakeWorkers(queues: [String], in store: JobStore<Self>, on database: SQLiteConnection) throws {
        if !queues.isEmpty { database.wakeWorkers() }
    }

    /// The wake file: a woken worker also looks for cancellations.
    public func askToCancel(processID: Int, in store: JobStore<Self>, on database: SQLiteConnection) throws {
        database.wakeWorkers()
    }

    /// SQLite reuses the pages of deleted rows; there is nothing to vacuum between claims.
    public func vacuumHotTables(minimumDeadRows: Int, in store: JobStore<Self>, on database: SQLiteConnection) throws -> [VacuumedTable] {
        []
    }
}
