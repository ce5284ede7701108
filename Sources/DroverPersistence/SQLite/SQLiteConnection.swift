import CSQLite
import Foundation

/// A connection to a SQLite database file, for running Drover with no database server.
///
/// The file is attached under the schema's name (`ATTACH 'drover.sqlite3' AS drover`), so the same
/// schema-qualified SQL (`"drover"."jobs"`) works on both backends. Writes are serialized by SQLite:
/// the file is in WAL mode (readers never wait for the writer), transactions begin `IMMEDIATE`
/// (taking the write lock up front, so two writers never deadlock on an upgrade), and a statement
/// that finds the database locked waits up to `busyTimeout` and then fails with
/// ``DatabaseError/Code-swift.struct/lockNotAvailable``, as a PostgreSQL `lock_timeout` would.
///
/// ```swift
/// let db = try SQLiteConnection(path: "/var/lib/drover/drover.sqlite3", schema: "drover")
/// try db.withTransaction { db in try db.execute("UPDATE drover.jobs SET priority = \(1) WHERE id = \(7)") }
/// ```
public final class SQLiteConnection {
    private var handle: OpaquePointer?
    public let path: String
    public let schema: String
    private(set) var transactionDepth = 0
    /// Set when a write inside the open transaction made jobs ready: the wake file is touched
    /// after the commit, not before it (a worker woken earlier would find nothing).
    private var wakeAfterCommit = false
    /// Prepared statements by SQL text: a job system runs the same few statements over and over,
    /// and preparing one costs more than running it.
    private var statements: [String: OpaquePointer] = [:]
    private static let statementCacheSize = 128

    public init(path: String, schema: String = "drover", busyTimeout: Duration = .seconds(5)) throws(DatabaseError) {
        self.path = path
        self.schema = schema
        _ = try SQLIdentifier.validated(schema, what: "schema name")
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(":memory:", &db, flags, nil) == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw DatabaseError(.connectionFailed, "cannot open SQLite: \(message)")
        }
        handle = db
        sqlite3_busy_timeout(db, Int32(clamping: Int64(busyTimeout.seconds * 1000)))
        sqlite3_extended_result_codes(db, 1)
        Self.addFunctions(db)
        do {
            try execute("ATTACH DATABASE \(path) AS \(SQLIdentifier(schema))")
            try enterWALMode(busyTimeout: busyTimeout)
            try execute(unsafeRawScript: """
                PRAGMA \(SQLIdentifier(schema).quoted).synchronous = NORMAL;
                PRAGMA foreign_keys = ON;
                """)
        } catch {
            sqlite3_close(db)
            handle = nil
            throw DatabaseError(
                .connectionFailed, "cannot open the SQLite database \(path): \(error.message); check that its directory exists and is writable")
        }
    }

    /// SQL functions Drover's statements use that SQLite lacks: `drover_json_contains(a, b)`,
    /// PostgreSQL's `a @> b` on JSON text (``JSONContainment``); NULL when either is not JSON.
    private static func addFunctions(_ db: OpaquePointer) {
        sqlite3_create_function_v2(
            db, "drover_json_contains", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil,
            { context, count, values in
                guard count == 2, let values, let a = sqlite3_value_text(values[0]), let b = sqlite3_value_text(values[1]) else {
                    sqlite3_result_null(context)
                    return
                }
                switch JSONContainment.contains(String(cString: a), String(cString: b)) {
                case .some(let contained): sqlite3_result_int(context, contained ? 1 : 0)
                case nil: sqlite3_result_null(context)
                }
            }, nil, nil, nil)
    }

    /// Puts the file in WAL mode (readers never wait for the writer). Switching a file to WAL
    /// needs it to itself, and SQLite answers "database is locked" at once, without waiting,
    /// while another connection holds it (two processes opening a new file together): try again
    /// until the busy timeout has passed. Once the file is in WAL mode, this needs no lock.
    private func enterWALMode(busyTimeout: Duration) throws(DatabaseError) {
        let deadline = ContinuousClock.now + busyTimeout
        let pragma = SQL(unsafeRaw: "PRAGMA \(SQLIdentifier(schema).quoted).journal_mode = WAL")
        while true {
            let mode: String?
            do {
                mode = try query(pragma).first?.decode(at: 0, as: String.self)
            } catch {
                guard error.code == .lockNotAvailable, ContinuousClock.now < deadline else { throw error }
                usleep(UInt32.random(in: 5_000...25_000))
                continue
            }
            // An in-memory database (":memory:") has no file to share and stays in memory mode.
            guard mode?.lowercased() == "wal" || (path == ":memory:" && mode?.lowercased() == "memory") else {
                throw DatabaseError(.connectionFailed, "SQLite could not put the file in WAL mode (it stays \(mode ?? "unknown"))")
            }
            return
        }
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// The prepared statement for `text`, from the cache or prepared now (and cached).
    private func prepared(_ text: String) throws(DatabaseError) -> OpaquePointer {
        if let statement = statements[text] { return statement }
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, text, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status, query: text) }
        if statements.count >= Self.statementCacheSize {
            for old in statements.values { sqlite3_finalize(old) }
            statements.removeAll()
        }
        statements[text] = statement
        return statement
    }

    // MARK: - Statements

    /// Runs `sql` and returns its rows; values are bound by position (`$1`, `$2`, … as SQL renders them).
    @discardableResult
    public func query(_ sql: SQL) throws(DatabaseError) -> QueryResult {
        let (text, binds) = sql.render()
        let statement = try prepared(text)
        // Ready for the next use, whatever happens to this one; its bindings go too (a bound text
        // may be large).
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        var status: Int32
        for (index, value) in binds.enumerated() {
            let parameter = sqlite3_bind_parameter_index(statement, "$\(index + 1)")
            guard parameter > 0 else { continue }  // a bind the statement does not use
            status = bind(value, at: parameter, in: statement)
            guard status == SQLITE_OK else { throw error(status, query: text) }
        }
        let count = Int(sqlite3_column_count(statement))
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
        var rows: [[DatabaseValue]] = []
        while true {
            status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw error(status, query: text) }
            rows.append((0..<count).map { column(Int32($0), of: statement) })
        }
        let changes = sqlite3_stmt_readonly(statement) != 0 ? rows.count : Int(sqlite3_changes(handle))
        return QueryResult(columns: columns, rows: rows, affectedRows: changes, commandTag: "")
    }

    /// Runs `sql` and returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: SQL) throws(DatabaseError) -> Int {
        try query(sql).affectedRows
    }

    /// Runs statements separated by semicolons, with no values (migrations, pragmas).
    public func execute(unsafeRawScript script: String) throws(DatabaseError) {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, script, nil, nil, &message)
        defer { sqlite3_free(message) }
        guard status == SQLITE_OK else { throw error(status, query: script) }
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction that holds the write lock from its start (`BEGIN IMMEDIATE`):
    /// commits when it returns, rolls back when it throws. Nested, it is a savepoint.
    public func withTransaction<R>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        let savepoint = transactionDepth > 0 ? "drover_\(transactionDepth)" : nil
        try execute(unsafeRawScript: savepoint.map { "SAVEPOINT \($0)" } ?? "BEGIN IMMEDIATE")
        transactionDepth += 1
        let result: R
        do {
            result = try body(self)
        } catch {
            transactionDepth -= 1
            if transactionDepth == 0 { wakeAfterCommit = false }
            try? execute(unsafeRawScript: savepoint.map { "ROLLBACK TO \($0); RELEASE \($0)" } ?? "ROLLBACK")
            throw error
        }
        transactionDepth -= 1
        do {
            try execute(unsafeRawScript: savepoint.map { "RELEASE \($0)" } ?? "COMMIT")
        } catch {
            try? execute(unsafeRawScript: savepoint.map { "ROLLBACK TO \($0); RELEASE \($0)" } ?? "ROLLBACK")
            if transactionDepth == 0 { wakeAfterCommit = false }
            throw error
        }
        if transactionDepth == 0 && wakeAfterCommit {
            wakeAfterCommit = false
            Self.touch(wakeFilePath)
        }
        return result
    }

    // MARK: - Wake-ups

    /// The file whose change wakes the workers on this host (SQLite has no LISTEN/NOTIFY): they
    /// watch it with inotify. It sits next to the database file.
    public var wakeFilePath: String { path + "-wake" }

    /// Wakes the workers watching ``wakeFilePath``: at once, or after the commit when a transaction
    /// is open. (A rolled-back transaction wakes nobody.)
    public func wakeWorkers() {
        if transactionDepth > 0 {
            wakeAfterCommit = true
        } else {
            Self.touch(wakeFilePath)
        }
    }

    /// Sets the file's times (creating it when missing), which inotify reports as IN_ATTRIB.
    public static func touch(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o660)
        guard fd >= 0 else { return }  // A wake-up is best effort: the workers also poll.
        futimens(fd, nil)
        close(fd)
    }

    // MARK: - Values

    private func bind(_ value: DatabaseValue, at index: Int32, in statement: OpaquePointer) -> Int32 {
        guard let text = value.text else { return sqlite3_bind_null(statement, index) }
        switch value.type {
        case .int2, .int4, .int8:
            if let number = Int64(text) { return sqlite3_bind_int64(statement, index, number) }
        case .float4, .float8:
            if let number = Double(text) { return sqlite3_bind_double(statement, index, number) }
        case .bool:
            return sqlite3_bind_int64(statement, index, text == "t" || text == "true" ? 1 : 0)
        default:
            break
        }
        // With its length: a NUL inside the text must not cut it short.
        return sqlite3_bind_text(statement, index, text, Int32(text.utf8.count), drover_sqlite_transient())
    }

    /// A column's value, typed by what SQLite holds (integer, real, text, blob or null).
    private func column(_ index: Int32, of statement: OpaquePointer) -> DatabaseValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return DatabaseValue(type: .int8, text: String(sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT:
            return DatabaseValue(type: .float8, text: String(sqlite3_column_double(statement, index)))
        case SQLITE_NULL:
            return .null(.unknown)
        default:
            let length = Int(sqlite3_column_bytes(statement, index))
            guard let bytes = sqlite3_column_text(statement, index) else { return DatabaseValue(type: .text, text: "") }
            return DatabaseValue(type: .text, text: String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self))
        }
    }

    // MARK: - Errors

    private func error(_ status: Int32, query: String) -> DatabaseError {
        let message = String(cString: sqlite3_errmsg(handle))
        let code: DatabaseError.Code
        switch status & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED: code = .lockNotAvailable
        case SQLITE_CONSTRAINT:
            // The extended codes (SQLITE_CONSTRAINT_UNIQUE, …) are macros Swift cannot import.
            switch status >> 8 {
            case 8, 6: code = .uniqueViolation  // UNIQUE, PRIMARYKEY
            case 3: code = .foreignKeyViolation
            case 5: code = .notNullViolation
            case 1: code = .checkViolation
            default: code = .serverError
            }
        case SQLITE_ERROR where message.hasPrefix("no such table"): code = .undefinedTable
        case SQLITE_ERROR where message.hasPrefix("no such column"): code = .undefinedColumn
        case SQLITE_ERROR where message.contains("syntax error"): code = .syntaxError
        default: code = .serverError
        }
        let hint = code == .lockNotAvailable
            ? "another connection held SQLite's write lock longer than the busy timeout; the next attempt usually succeeds" : nil
        return DatabaseError(code, "SQLite: \(message)", hint: hint, query: query)
    }
}
