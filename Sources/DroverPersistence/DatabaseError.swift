import Foundation

/// The one error type of the persistence layer.
///
/// Switch on ``code``; read ``sqlState`` for the server's exact condition. ``description`` says what
/// failed and what to do, and never contains a password: connection strings are redacted before
/// they reach a message, and bound values are never part of the query text.
public struct DatabaseError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; stable across releases, meant for `switch`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        // Reaching the server.
        /// The connection string or URL cannot be parsed.
        public static let invalidConnectionString = Code("invalidConnectionString")
        /// The server could not be reached: no socket, connection refused, unknown host, timeout.
        public static let connectionFailed = Code("connectionFailed")
        /// The server refused the credentials.
        public static let authenticationFailed = Code("authenticationFailed")
        /// The server is up but the database does not exist.
        public static let databaseNotFound = Code("databaseNotFound")
        /// The connection broke while a statement was in flight or a transaction was open.
        /// The statement may or may not have taken effect; it was not retried.
        public static let connectionLost = Code("connectionLost")

        // Server errors with a SQLSTATE a caller typically handles.
        public static let uniqueViolation = Code("uniqueViolation")
        public static let foreignKeyViolation = Code("foreignKeyViolation")
        public static let notNullViolation = Code("notNullViolation")
        public static let checkViolation = Code("checkViolation")
        public static let serializationFailure = Code("serializationFailure")
        public static let deadlockDetected = Code("deadlockDetected")
        /// `lock_timeout` expired or `NOWAIT` found the row locked.
        public static let lockNotAvailable = Code("lockNotAvailable")
        /// `statement_timeout` expired or the query was cancelled.
        public static let queryCanceled = Code("queryCanceled")
        public static let undefinedTable = Code("undefinedTable")
        public static let undefinedColumn = Code("undefinedColumn")
        public static let syntaxError = Code("syntaxError")
        /// A function refused an argument (SQLSTATE 22023), as Drover's SQL functions do for bad jobs.
        public static let invalidParameterValue = Code("invalidParameterValue")
        /// Any other server error: see ``DatabaseError/sqlState``.
        public static let serverError = Code("serverError")

        // Errors raised on this side.
        /// A bound value cannot be sent (for example text containing a NUL byte).
        public static let invalidParameter = Code("invalidParameter")
        /// A column's value does not fit the Swift type it was read as.
        public static let decodingFailed = Code("decodingFailed")
        /// A transaction was misused: a statement inside it failed and it can only roll back, or a
        /// transaction was begun by hand where ``Connection/withTransaction(_:)`` was asked for.
        public static let transactionAborted = Code("transactionAborted")
        /// A record's row does not exist (any more).
        public static let recordNotFound = Code("recordNotFound")
        /// An identifier (schema, table, column, channel name) is not acceptable.
        public static let invalidIdentifier = Code("invalidIdentifier")
        /// The schema in the database is not one this program can work with.
        public static let migrationFailed = Code("migrationFailed")
    }

    public var code: Code
    /// The five-character SQLSTATE the server reported, if the error came from the server.
    public var sqlState: String?
    /// What failed, with which input, and what to do.
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The column (or, for errors a function raises with `USING COLUMN`, the field) the error is about.
    public var column: String?
    /// The SQL text that failed. Bound values are never part of it.
    public var query: String?

    public init(
        _ code: Code, _ message: String, sqlState: String? = nil, detail: String? = nil,
        hint: String? = nil, column: String? = nil, query: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.column = column
        self.query = query
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail, !detail.isEmpty { text += "\n  detail: \(detail)" }
        if let hint, !hint.isEmpty { text += "\n  hint: \(hint)" }
        if let query {
            let oneLine = query.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
                .joined(separator: " ")
            text += "\n  query: \(oneLine.count > 240 ? oneLine.prefix(240) + "…" : oneLine[...])"
        }
        return text
    }

    /// The code for a server SQLSTATE.
    package static func code(forSQLState state: String) -> Code {
        switch state {
        case "23505": return .uniqueViolation
        case "23503": return .foreignKeyViolation
        case "23502": return .notNullViolation
        case "23514": return .checkViolation
        case "40001": return .serializationFailure
        case "40P01": return .deadlockDetected
        case "55P03": return .lockNotAvailable
        case "57014": return .queryCanceled
        case "42P01": return .undefinedTable
        case "42703": return .undefinedColumn
        case "42601": return .syntaxError
        case "28P01", "28000": return .authenticationFailed
        case "3D000": return .databaseNotFound
        case "22023": return .invalidParameterValue
        default:
            // Class 08 is "connection exception"; 57P01-57P03 end the session from the server side.
            if state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03" {
                return .connectionLost
            }
            return .serverError
        }
    }
}

extension DatabaseError {
    /// Whether trying the same thing again soon may well succeed: a lock held too long (PostgreSQL's
    /// lock_timeout, SQLite's busy timeout), a deadlock, a serialization failure, a cancelled statement.
    public var isTransient: Bool {
        [.lockNotAvailable, .deadlockDetected, .serializationFailure, .queryCanceled].contains(code)
    }
}
