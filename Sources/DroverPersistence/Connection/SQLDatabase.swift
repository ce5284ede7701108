/// What the record layer and the queue need from a database, whichever backend it is: PostgreSQL
/// (``Connection``) or SQLite (``SQLiteConnection``).
public protocol SQLDatabase: AnyObject, SendableMetatype {
    /// Runs a statement and returns its rows; `prepared` keeps it parsed and planned for the
    /// session (statements a process runs over and over).
    func fetch(_ sql: SQL, prepared: Bool) throws(DatabaseError) -> QueryResult
    /// Whether `SELECT … FOR UPDATE` locks rows. SQLite has no row locks: its write transactions
    /// lock the whole database from their start.
    var locksRows: Bool { get }
    /// Runs `body` in a transaction that may write: commits when it returns, rolls back when it
    /// throws. Nested, it is a savepoint: an inner failure rolls back the inner work only.
    func inWriteTransaction<R>(_ body: () throws -> R) throws -> R
    /// Whether a transaction is open (inside ``inWriteTransaction(_:)``).
    var isInTransaction: Bool { get }
    /// The descriptor that becomes readable when a notification arrives (PostgreSQL's socket);
    /// nil when the backend has none (SQLite) or is not connected.
    var notificationDescriptor: Int32? { get }
    /// Applies `migrator`'s migrations that the database lacks (see ``Migrator``).
    func apply(_ migrator: Migrator, progress: (Migration) -> Void) throws -> Migrator.Report
    /// Which of `migrator`'s migrations are applied and which are pending.
    func status(of migrator: Migrator) throws -> Migrator.Status
}

extension SQLDatabase {
    /// Runs a statement and returns its rows.
    public func fetch(_ sql: SQL) throws(DatabaseError) -> QueryResult { try fetch(sql, prepared: false) }

    /// Runs `body` atomically: inside the transaction already open (which it then shares), or in
    /// a transaction of its own.
    public func atomically<R>(_ body: () throws -> R) throws -> R {
        isInTransaction ? try body() : try inWriteTransaction(body)
    }
}

extension Connection: SQLDatabase {
    public func fetch(_ sql: SQL, prepared: Bool) throws(DatabaseError) -> QueryResult { try query(sql, prepared: prepared) }
    public var locksRows: Bool { true }
    public func inWriteTransaction<R>(_ body: () throws -> R) throws -> R { try withTransaction { _ in try body() } }
    public var isInTransaction: Bool { transactionDepth > 0 }
    public var notificationDescriptor: Int32? { socketDescriptor >= 0 ? socketDescriptor : nil }
    public func apply(_ migrator: Migrator, progress: (Migration) -> Void) throws -> Migrator.Report {
        try migrator.migrate(on: self, progress: progress)
    }
    public func status(of migrator: Migrator) throws -> Migrator.Status { try migrator.status(on: self) }
}

extension SQLiteConnection: SQLDatabase {
    /// Every statement is kept prepared (see ``SQLiteConnection``).
    public func fetch(_ sql: SQL, prepared: Bool) throws(DatabaseError) -> QueryResult { try query(sql) }
    public var locksRows: Bool { false }
    public func inWriteTransaction<R>(_ body: () throws -> R) throws -> R { try withTransaction { _ in try body() } }
    public var isInTransaction: Bool { transactionDepth > 0 }
    public var notificationDescriptor: Int32? { nil }
    public func apply(_ migrator: Migrator, progress: (Migration) -> Void) throws -> Migrator.Report {
        try migrator.migrate(on: self, progress: progress)
    }
    public func status(of migrator: Migrator) throws -> Migrator.Status { try migrator.status(on: self) }
}
