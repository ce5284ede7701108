import CLibPQ

/// How a transaction sees concurrent ones.
public enum IsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

extension Connection {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// Called inside another `withTransaction` on the same connection, it runs `body` in a savepoint
    /// instead, so an inner failure rolls back the inner work only. A statement that failed inside
    /// `body` aborts the transaction even if `body` caught the error; such a transaction is rolled
    /// back and reported, never committed by accident.
    ///
    /// ```swift
    /// let id = try db.withTransaction { db in
    ///     let id = try db.query("INSERT INTO t (v) VALUES (\(v)) RETURNING id")[0].decode("id", as: Int.self)
    ///     try db.execute("INSERT INTO log (t_id) VALUES (\(id))")
    ///     return id
    /// }
    /// ```
    public func withTransaction<R>(
        isolation: IsolationLevel? = nil, _ body: (Connection) throws -> R
    ) throws -> R {
        if transactionDepth > 0 {
            return try withSavepoint(body)
        }
        try prepareForUse()
        if PQtransactionStatus(handle) != PQTRANS_IDLE {
            throw DatabaseError(
                .transactionAborted,
                "a transaction begun outside withTransaction is open on this connection; commit or roll it "
                    + "back first, or do this work inside withTransaction")
        }
        try execute(SQL(unsafeRaw: isolation.map { "BEGIN ISOLATION LEVEL \($0.rawValue)" } ?? "BEGIN"))
        transactionDepth = 1
        let result: R
        do {
            result = try body(self)
        } catch {
            rollbackQuietly("ROLLBACK")
            transactionDepth = 0
            throw error
        }
        if PQtransactionStatus(handle) == PQTRANS_INERROR {
            rollbackQuietly("ROLLBACK")
            transactionDepth = 0
            throw abortedError()
        }
        transactionDepth = 0
        let commit: QueryResult
        do {
            commit = try query("COMMIT")
        } catch {
            throw error.code == .connectionLost ? lostInFlight(query: "COMMIT", committing: true) : error
        }
        // COMMIT of a transaction the server already aborted answers ROLLBACK instead of failing.
        if commit.commandTag == "ROLLBACK" { throw abortedError() }
        return result
    }

    private func withSavepoint<R>(_ body: (Connection) throws -> R) throws -> R {
        let name = "drover_savepoint_\(transactionDepth)"
        try execute(SQL(unsafeRaw: "SAVEPOINT \(name)"))
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        let result: R
        do {
            result = try body(self)
        } catch {
            rollbackQuietly("ROLLBACK TO SAVEPOINT \(name)")
            throw error
        }
        if PQtransactionStatus(handle) == PQTRANS_INERROR {
            rollbackQuietly("ROLLBACK TO SAVEPOINT \(name)")
            throw abortedError()
        }
        try execute(SQL(unsafeRaw: "RELEASE SAVEPOINT \(name)"))
        return result
    }

    /// Rolls back after a failure; the failure that got us here is what the caller needs to see,
    /// and a rollback that fails on a broken connection leaves nothing to undo.
    private func rollbackQuietly(_ statement: String) {
        _ = try? execute(SQL(unsafeRaw: statement))
    }

    private func abortedError() -> DatabaseError {
        DatabaseError(
            .transactionAborted,
            "a statement inside the transaction failed and was caught, which aborted the transaction; it "
                + "was rolled back. Let the error propagate, or wrap the statement that may fail in its own "
                + "nested withTransaction (a savepoint)")
    }
}
