/// What the record layer needs from a database, whichever backend it is: PostgreSQL
/// (``Connection``) or SQLite (``SQLiteConnection``).
public protocol SQLDatabase: AnyObject, SendableMetatype {
    /// Runs a statement and returns its rows.
    func fetch(_ sql: SQL) throws(DatabaseError) -> QueryResult
    /// Whether `SELECT … FOR UPDATE` locks rows. SQLite has no row locks: its write transactions
    /// lock the whole database from their start.
    var locksRows: Bool { get }
    /// Runs `body` in a transaction that may write: commits when it returns, rolls back when it throws.
    func inWriteTransaction<R>(_ body: () throws -> R) throws -> R
    /// The descriptor that becomes readable when a notification arrives (PostgreSQL's socket);
    /// nil when the backend has none (SQLite) or is not connected.
    var notificationDescriptor: Int32? { get }
}

extension Connection: SQLDatabase {
    public func fetch(_ sql: SQL) throws(DatabaseError) -> QueryResult { try query(sql) }
    public var locksRows: Bool { true }
    public func inWriteTransaction<R>(_ body: () throws -> R) throws -> R { try withTransaction { _ in try body() } }
    public var notificationDescriptor: Int32? { socketDescriptor >= 0 ? socketDescriptor : nil }
}

extension SQLiteConnection: SQLDatabase {
    public func fetch(_ sql: SQL) throws(DatabaseError) -> QueryResult { try query(sql) }
    public var locksRows: Bool { false }
    public func inWriteTransaction<R>(_ body: () throws -> R) throws -> R { try withTransaction { _ in try body() } }
    public var notificationDescriptor: Int32? { nil }
}
