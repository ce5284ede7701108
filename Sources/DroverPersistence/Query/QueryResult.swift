import CLibPQ

/// The rows a statement returned, decoded on access.
///
/// ```swift
/// for row in try connection.query("SELECT id, queue_name FROM drover.jobs LIMIT 10") {
///     let id = try row.decode("id", as: Int.self)
///     let queue: String = try row.decode("queue_name")
/// }
/// ```
public final class QueryResult: RandomAccessCollection, @unchecked Sendable {
    // @unchecked: a PGresult is immutable once returned and libpq documents it as safe to read from
    // any thread; it is freed only when the last Row referring to it is gone. Rows read from SQLite
    // are immutable values.
    private enum Storage {
        case postgres(OpaquePointer)
        case rows([[DatabaseValue]])
    }
    private let storage: Storage
    /// Column names, in order.
    public let columns: [String]
    /// Column types, in order.
    public let columnTypes: [DatabaseType]
    /// Rows inserted, updated, deleted or selected, as the command tag reports them.
    public let affectedRows: Int
    /// The command tag: `INSERT 0 1`, `UPDATE 3`, `SELECT 2`, …
    public let commandTag: String

    init(_ handle: OpaquePointer) {
        storage = .postgres(handle)
        let count = Int(PQnfields(handle))
        columns = (0..<count).map { String(cString: PQfname(handle, Int32($0))) }
        columnTypes = (0..<count).map { DatabaseType(rawValue: UInt32(PQftype(handle, Int32($0)))) }
        affectedRows = Int(String(cString: PQcmdTuples(handle))) ?? 0
        commandTag = String(cString: PQcmdStatus(handle))
    }

    /// Rows read by another backend (SQLite), already decoded into values.
    init(columns: [String], rows: [[DatabaseValue]], affectedRows: Int, commandTag: String) {
        storage = .rows(rows)
        self.columns = columns
        columnTypes = columns.indices.map { index in rows.first?[index].type ?? .unknown }
        self.affectedRows = affectedRows
        self.commandTag = commandTag
    }

    deinit {
        if case .postgres(let handle) = storage { PQclear(handle) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int {
        switch storage {
        case .postgres(let handle): Int(PQntuples(handle))
        case .rows(let rows): rows.count
        }
    }
    public subscript(position: Int) -> Row { Row(result: self, index: position) }

    func value(row: Int, column: Int) -> DatabaseValue {
        guard case .postgres(let handle) = storage else {
            if case .rows(let rows) = storage { return rows[row][column] }
            return .null(.unknown)
        }
        let type = columnTypes[column]
        if PQgetisnull(handle, Int32(row), Int32(column)) == 1 { return .null(type) }
        let length = Int(PQgetlength(handle, Int32(row), Int32(column)))
        let text = PQgetvalue(handle, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }
        return DatabaseValue(type: type, text: text)
    }
}

/// One row of a ``QueryResult``.
public struct Row: Sendable {
    let result: QueryResult
    let index: Int

    /// Column names, in order.
    public var columns: [String] { result.columns }

    /// The value of `column`, decoded as `T`. Errors name the column, its type and what to do.
    public func decode<T: DatabaseDecodable>(_ column: String, as type: T.Type = T.self) throws(DatabaseError) -> T {
        guard let position = result.columns.firstIndex(of: column) else {
            throw DatabaseError(
                .decodingFailed,
                "the result has no column \"\(column)\"; its columns are: \(result.columns.joined(separator: ", "))")
        }
        return try decode(at: position, as: type)
    }

    /// The value of the column at `position`, decoded as `T`.
    public func decode<T: DatabaseDecodable>(at position: Int, as type: T.Type = T.self) throws(DatabaseError) -> T {
        guard result.columns.indices.contains(position) else {
            throw DatabaseError(
                .decodingFailed, "the result has \(result.columns.count) columns; there is no column \(position)")
        }
        let value = result.value(row: index, column: position)
        do {
            return try T.decode(from: value)
        } catch {
            throw Self.decodingError(error, column: result.columns[position], value: value, as: T.self)
        }
    }

    /// The raw value of `column` (nil when there is no such column).
    public subscript(column: String) -> DatabaseValue? {
        result.columns.firstIndex(of: column).map { result.value(row: index, column: $0) }
    }

    /// Every column's raw value, by name.
    public var values: [String: DatabaseValue] {
        var values: [String: DatabaseValue] = [:]
        for (i, name) in result.columns.enumerated() { values[name] = result.value(row: index, column: i) }
        return values
    }

    static func decodingError<T>(
        _ failure: DatabaseDecodingFailure, column: String, value: DatabaseValue, as: T.Type
    ) -> DatabaseError {
        switch failure {
        case .unexpectedNull:
            return DatabaseError(
                .decodingFailed, "column \"\(column)\" is NULL; read it as \(T.self)? to accept NULL")
        case .typeMismatch:
            return DatabaseError(
                .decodingFailed,
                "column \"\(column)\" is \(value.type), which cannot be read as \(T.self); read it as a "
                    + "matching type or cast it in the query")
        case .malformed(let reason):
            return DatabaseError(.decodingFailed, "column \"\(column)\" (\(value.type)) cannot be read as \(T.self): \(reason)")
        }
    }
}
