/// A row of a table, with the attributes it was loaded with and the changes not yet written.
///
/// The minimal record layer the heartbeats go through. Its `withLock` flushes pending changes
/// *before* it locks: a change whose write failed (a lock timeout, a dropped connection) stays
/// pending and is written by the next `save()` or `withLock`, instead of poisoning every later lock
/// as in Solid Queue issue #350 ("Locking a record with unpersisted changes is not supported").
///
/// ```swift
/// let process = try Record.find(in: table, id: 42, on: db)
/// process.set("last_heartbeat_at", toExpression: "now()")   // the database server's time
/// process.set("metadata", to: metadata)
/// try process.withLock(on: db) { _ in }       // flush, lock, reload, body, save, commit
/// ```
public final class Record {
    /// The table, schema-qualified.
    public let table: SQLIdentifier
    /// The primary key column.
    public let primaryKey: String
    /// The primary key's value.
    public let id: DatabaseValue
    /// The attributes as last loaded from (or written to) the database.
    public private(set) var attributes: [String: DatabaseValue]
    /// Changes set on the record and not yet written.
    public private(set) var pendingChanges: [String: DatabaseValue] = [:]
    /// Columns to be set to what an SQL expression gives when the change is written (`now()`).
    public private(set) var pendingExpressions: [String: SQL] = [:]

    public var hasPendingChanges: Bool { !pendingChanges.isEmpty || !pendingExpressions.isEmpty }

    /// A record for a row already read, with all its columns.
    public init(table: SQLIdentifier, primaryKey: String = "id", row: Row) throws(DatabaseError) {
        guard let id = row[primaryKey], !id.isNull else {
            throw DatabaseError(
                .decodingFailed, "the row has no value for the primary key \"\(primaryKey)\" of \(table)")
        }
        self.table = table
        self.primaryKey = primaryKey
        self.id = id
        attributes = row.values
    }

    /// Loads the row of `table` whose primary key is `id`.
    public static func find<ID: DatabaseEncodable>(
        in table: SQLIdentifier, primaryKey: String = "id", id: ID, on connection: some SQLDatabase
    ) throws(DatabaseError) -> Record {
        let key = SQLIdentifier(primaryKey)
        guard let row = try connection.fetch("SELECT * FROM \(table) WHERE \(key) = \(id)").first else {
            throw notFound(table: table, primaryKey: primaryKey, id: id.databaseValue)
        }
        return try Record(table: table, primaryKey: primaryKey, row: row)
    }

    /// Inserts a row with `values` (other columns take their defaults) and returns its record.
    public static func insert(
        into table: SQLIdentifier, primaryKey: String = "id", values: [String: any DatabaseEncodable],
        on connection: some SQLDatabase
    ) throws(DatabaseError) -> Record {
        let columns = values.keys.sorted()
        let sql: SQL
        if columns.isEmpty {
            sql = "INSERT INTO \(table) DEFAULT VALUES RETURNING *"
        } else {
            let names = SQL.joined(columns.map { "\(SQLIdentifier($0))" })
            let binds = SQL.joined(columns.map { "\(values[$0]!.databaseValue)" })
            sql = "INSERT INTO \(table) (\(names)) VALUES (\(binds)) RETURNING *"
        }
        let row = try connection.fetch(sql)[0]
        return try Record(table: table, primaryKey: primaryKey, row: row)
    }

    // MARK: - Attributes

    /// The value of `column`: the pending change if there is one, else the loaded value.
    public subscript(column: String) -> DatabaseValue? {
        pendingChanges[column] ?? attributes[column]
    }

    /// Sets `column` to `value`, pending until the next `save()` or `withLock`. Setting a column back
    /// to its loaded value drops the pending change.
    public func set<Value: DatabaseEncodable>(_ column: String, to value: Value) {
        pendingExpressions[column] = nil
        let encoded = value.databaseValue
        if let loaded = attributes[column], loaded.text == encoded.text {
            pendingChanges[column] = nil
        } else {
            pendingChanges[column] = encoded
        }
    }

    /// Sets `column` to what `expression` gives when the change is written, pending like
    /// ``set(_:to:)``: a change flushed late is evaluated late (a heartbeat's `now()` is the time
    /// it was stored, not the time it was first tried). Until then the column reads as loaded.
    public func set(_ column: String, toExpression expression: SQL) {
        pendingChanges[column] = nil
        pendingExpressions[column] = expression
    }

    /// The value of `column` decoded as `T`: the pending change if there is one, else the loaded value.
    public func get<T: DatabaseDecodable>(_ column: String, as type: T.Type = T.self) throws(DatabaseError) -> T {
        guard let value = self[column] else {
            throw DatabaseError(
                .decodingFailed,
                "\(table) has no column \"\(column)\"; its columns are: \(attributes.keys.sorted().joined(separator: ", "))")
        }
        do {
            return try T.decode(from: value)
        } catch {
            throw Row.decodingError(error, column: column, value: value, as: T.self)
        }
    }

    /// Forgets the pending changes.
    public func discardPendingChanges() {
        pendingChanges = [:]
        pendingExpressions = [:]
    }

    // MARK: - Persistence

    /// Writes the pending changes (only the changed columns) and refreshes the attributes from what
    /// the database stored. If the write fails, the changes stay pending.
    public func save(on connection: some SQLDatabase) throws(DatabaseError) {
        try write(on: connection)
        discardPendingChanges()
    }

    /// Re-reads the row. Pending changes are kept: they are still to be written.
    public func reload(on connection: some SQLDatabase) throws(DatabaseError) {
        attributes = try loadRow(on: connection, lock: false)
    }

    /// Runs `body` with the row locked, then saves:
    /// (a) flushes pending changes, (b) begins a transaction and locks the row with
    /// `SELECT … FOR UPDATE`, (c) reloads it, (d) runs `body`, (e) saves and commits.
    ///
    /// A second `withLock` on the same row from another connection waits until this one commits. If
    /// the flush fails, its error is thrown and the changes stay pending for the next call. If the
    /// transaction fails after `body` ran (the save or the commit), `body`'s changes stay pending too;
    /// if `body` throws, its changes are dropped. A row that no longer exists gives
    /// ``DatabaseError/Code-swift.struct/recordNotFound``.
    public func withLock<R>(on connection: some SQLDatabase, _ body: (Record) throws -> R) throws -> R {
        if hasPendingChanges { try save(on: connection) }
        var lockedAttributes: [String: DatabaseValue]? = nil
        do {
            let result = try connection.inWriteTransaction {
                attributes = try loadRow(on: connection, lock: true)
                lockedAttributes = attributes
                let result: R
                do {
                    result = try body(self)
                } catch {
                    discardPendingChanges()
                    throw error
                }
                try write(on: connection)
                return result
            }
            discardPendingChanges()
            return result
        } catch {
            // What the rolled-back UPDATE returned was never committed.
            if let lockedAttributes { attributes = lockedAttributes }
            throw error
        }
    }

    /// Deletes the row.
    public func delete(on connection: some SQLDatabase) throws(DatabaseError) {
        if try connection.fetch("DELETE FROM \(table) WHERE \(thisRow)").affectedRows == 0 {
            throw Self.notFound(table: table, primaryKey: primaryKey, id: id)
        }
    }

    /// Writes pending changes and takes the stored values as the loaded attributes; leaves
    /// `pendingChanges` alone, so a caller whose transaction fails later can keep them.
    private func write(on connection: some SQLDatabase) throws(DatabaseError) {
        guard hasPendingChanges else { return }
        let columns = Set(pendingChanges.keys).union(pendingExpressions.keys).sorted()
        let assignments = SQL.joined(columns.map { column -> SQL in
            if let expression = pendingExpressions[column] { return "\(SQLIdentifier(column)) = \(expression)" }
            return "\(SQLIdentifier(column)) = \(pendingChanges[column]!)"
        })
        guard let row = try connection.fetch("UPDATE \(table) SET \(assignments) WHERE \(thisRow) RETURNING *").first else {
            throw Self.notFound(table: table, primaryKey: primaryKey, id: id)
        }
        attributes = row.values
    }

    private func loadRow(on connection: some SQLDatabase, lock: Bool) throws(DatabaseError) -> [String: DatabaseValue] {
        // SQLite has no row locks; its write transaction already holds the database's write lock.
        let forUpdate = SQL(unsafeRaw: lock && connection.locksRows ? " FOR UPDATE" : "")
        guard let row = try connection.fetch("SELECT * FROM \(table) WHERE \(thisRow)\(forUpdate)").first else {
            throw Self.notFound(table: table, primaryKey: primaryKey, id: id)
        }
        return row.values
    }

    /// `"id" = $n`: the condition that selects this record's row.
    private var thisRow: SQL { "\(SQLIdentifier(primaryKey)) = \(id)" }

    static func notFound(table: SQLIdentifier, primaryKey: String, id: DatabaseValue) -> DatabaseError {
        DatabaseError(
            .recordNotFound,
            "\(table) has no row with \(primaryKey) = \(id.text ?? "NULL") (any more): it was deleted")
    }
}
