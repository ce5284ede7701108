import Drover
import DroverQueue
import Foundation
import Logging
import NIOCore
import PostgresNIO

// Enqueueing typed Drover jobs through postgres-nio, the PostgreSQL client of Vapor and Hummingbird
// apps, inside the app's own transaction. PostgreSQL only, by nature: postgres-nio speaks nothing
// else (an app on SQLite enqueues with `SQLiteConnection.enqueue`, from the `Drover` library).
//
// Each call checks its jobs with JobRules first, then calls the SQL function `enqueue_many` of
// Drover's schema with one bound jsonb parameter: the function's checks, unique keys, concurrency
// admission and NOTIFY are those of every SQL caller.

extension PostgresConnection {
    /// Enqueues `job` on this connection and returns its id. Inside a transaction
    /// (`PostgresClient.withTransaction`), the job is enqueued if and only if the transaction
    /// commits: workers never see a job whose data was rolled back.
    ///
    /// ```swift
    /// import DroverPostgresNIO
    ///
    /// let (postID, jobID) = try await client.withTransaction(logger: logger) { connection in
    ///     let rows = try await connection.query("INSERT INTO posts (title) VALUES (\(title)) RETURNING id", logger: logger)
    ///     var postID = 0
    ///     for try await id in rows.decode(Int.self) { postID = id }
    ///     let jobID = try await connection.enqueue(PublishPost(postID: postID), logger: logger)
    ///     return (postID, jobID)
    /// }
    /// ```
    ///
    /// Options not given come from the job type (`queue`, `priority`, `maxAttempts`, `timeout`) and
    /// the job (`uniqueKey`): while a live job has the same unique key, its id is returned and
    /// nothing is enqueued. The current `ServiceContext` (swift-distributed-tracing) is injected by
    /// the bootstrapped instrument and stored with the job, as `JobDatabase.enqueue` does. `logger`
    /// is the one postgres-nio logs the statement to (none: nothing is logged).
    ///
    /// PostgreSQL only: this is the SQL function `enqueue_many` of Drover's schema (migration 8 or
    /// later: `drover migrate`). A due job of a class with a concurrency limit waits, scheduled, for
    /// the dispatcher to admit it, as every job enqueued through SQL does.
    ///
    /// - Throws: `QueueError` (`invalidJob`, naming the field) before anything is sent, so a bad job
    ///   never aborts the caller's transaction; `QueueError` (`invalidJob`) too when the function
    ///   refuses the job (a concurrency key the arguments lack), which does abort it; `DatabaseError`
    ///   for an invalid schema name (before anything is sent) or when the database fails, with the
    ///   SQLSTATE and no password or connection string. Inside `withTransaction`, postgres-nio hands
    ///   these on as the `closureError` of its `PostgresTransactionError`.
    @discardableResult
    public func enqueue<J: Job>(
        _ job: J, queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, schema: String = DroverSchema.defaultName,
        logger: Logger? = nil
    ) async throws -> Int {
        try await enqueue([job], queue: queue, priority: priority, runAt: runAt, runIn: delay, maxAttempts: maxAttempts,
                          timeout: timeout, schema: schema, logger: logger)[0]
    }

    /// Enqueues `jobs` in one statement (waking each queue's workers once) and returns their ids, in
    /// order, all or nothing.
    @discardableResult
    public func enqueue<J: Job>(
        _ jobs: [J], queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, schema: String = DroverSchema.defaultName,
        logger: Logger? = nil
    ) async throws -> [Int] {
        guard !jobs.isEmpty else { return [] }
        let call = try PostgresNIOEnqueue.call(jobs, queue: queue, priority: priority, runAt: runAt, runIn: delay,
                                              maxAttempts: maxAttempts, timeout: timeout, schema: schema)
        return try await PostgresNIOEnqueue.ids(of: call) { try await self.query($0, logger: logger ?? PostgresNIOEnqueue.silentLogger) }
    }
}

extension PostgresClient {
    /// Enqueues `job` on a connection of the pool, on its own: it commits at once. Inside a
    /// transaction, enqueue on the connection `withTransaction` hands you instead.
    ///
    /// ```swift
    /// try await client.enqueue(RebuildIndex(), runIn: .seconds(60))
    /// ```
    ///
    /// Options, defaults, checks and errors are those of `PostgresConnection.enqueue`.
    @discardableResult
    public func enqueue<J: Job>(
        _ job: J, queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, schema: String = DroverSchema.defaultName,
        logger: Logger? = nil
    ) async throws -> Int {
        try await enqueue([job], queue: queue, priority: priority, runAt: runAt, runIn: delay, maxAttempts: maxAttempts,
                          timeout: timeout, schema: schema, logger: logger)[0]
    }

    /// Enqueues `jobs` in one statement, which commits at once, and returns their ids in order.
    @discardableResult
    public func enqueue<J: Job>(
        _ jobs: [J], queue: String? = nil, priority: Int? = nil, runAt: Date? = nil, runIn delay: Duration? = nil,
        maxAttempts: Int? = nil, timeout: Duration? = nil, schema: String = DroverSchema.defaultName,
        logger: Logger? = nil
    ) async throws -> [Int] {
        guard !jobs.isEmpty else { return [] }
        let call = try PostgresNIOEnqueue.call(jobs, queue: queue, priority: priority, runAt: runAt, runIn: delay,
                                              maxAttempts: maxAttempts, timeout: timeout, schema: schema)
        return try await PostgresNIOEnqueue.ids(of: call) { try await self.query($0, logger: logger ?? PostgresNIOEnqueue.silentLogger) }
    }
}

/// What the connection's and the client's `enqueue` share.
enum PostgresNIOEnqueue {
    /// The logger `enqueue` hands postgres-nio when it is given none: it drops everything.
    static let silentLogger = Logger(label: "drover.postgres-nio", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The jobs, with the type's defaults and the enqueuer's trace context, checked and encoded.
    static func call<J: Job>(
        _ jobs: [J], queue: String?, priority: Int?, runAt: Date?, runIn delay: Duration?, maxAttempts: Int?,
        timeout: Duration?, schema: String
    ) throws -> EnqueueFunctionCall {
        let newJobs = try NewJob.jobs(jobs, queue: queue, priority: priority, runAt: runAt, runIn: delay, maxAttempts: maxAttempts,
                                      timeout: timeout)
        return try EnqueueFunctionCall(newJobs, schema: schema)
    }

    /// Runs `call` through `run` (a connection's or a pool's query) and reads the ids; a failure
    /// becomes the error the Swift API would throw.
    static func ids(
        of call: EnqueueFunctionCall, _ run: (PostgresQuery) async throws -> PostgresRowSequence
    ) async throws -> [Int] {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(JSONBDocument(text: call.document))
        // The text holds no value: only the schema's name, validated and quoted by EnqueueFunctionCall.
        let query = PostgresQuery(unsafeSQL: call.sql, binds: bindings)
        do {
            var ids: [Int] = []
            ids.reserveCapacity(call.count)
            for try await id in try await run(query).decode(Int64.self) { ids.append(Int(id)) }
            guard ids.count == call.count else {
                throw DatabaseError(
                    .serverError, "enqueue_many in schema \"\(call.schema)\" returned \(ids.count) ids for \(call.count) jobs: "
                        + "is the schema migrated by this version of Drover? Run `drover migrate --schema \(call.schema)`")
            }
            return ids
        } catch let error as PSQLError {
            throw translate(error, call: call)
        } catch let error as PostgresDecodingError {
            throw DatabaseError(
                .decodingFailed, "enqueue_many in schema \"\(call.schema)\" answered a \(error.postgresType) where ids (bigint) "
                    + "were expected: is the schema migrated by this version of Drover? Run `drover migrate --schema \(call.schema)`")
        }
    }

    /// A refusal of the SQL function as `QueueError`, like the Swift API's; any other failure as a
    /// `DatabaseError` with the server's SQLSTATE, message, detail and hint (never PSQLError's
    /// debug text, which can hold bound values).
    static func translate(_ error: PSQLError, call: EnqueueFunctionCall) -> any Error {
        guard let info = error.serverInfo, let state = info[.sqlState] else {
            let code: DatabaseError.Code
            switch error.code {
            case .clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown: code = .connectionLost
            case .poolClosed: code = .connectionFailed
            case .queryCancelled: code = .queryCanceled
            default: code = .serverError
            }
            return DatabaseError(
                code, "enqueueing into schema \"\(call.schema)\" through postgres-nio failed: \(error.code) "
                    + "(the statement may not have run; nothing was retried)")
        }
        let message = info[.message] ?? "no message"
        let column = info[.columnName]
        if column == "job", message.contains("unknown key trace_context") {
            return DatabaseError(
                .migrationFailed, "schema \"\(call.schema)\" is at a version before 8, whose enqueue_many takes no trace context: "
                    + "run `drover migrate --schema \(call.schema)`", sqlState: state, query: call.sql)
        }
        if let refusal = call.queueError(sqlState: state, column: column, message: message) { return refusal }
        if state == "42883" || state == "3F000" {
            return DatabaseError(
                .migrationFailed, "schema \"\(call.schema)\" has no Drover function enqueue_many: run `drover migrate --schema "
                    + "\(call.schema)` (\(message))", sqlState: state, query: call.sql)
        }
        return DatabaseError(
            DatabaseError.code(forSQLState: state), message, sqlState: state, detail: info[.detail], hint: info[.hint],
            column: column, query: call.sql)
    }
}

/// A JSON document bound as `jsonb` (binary format: a version byte, 1, then the text), so that the
/// function's one parameter has its type and the server parses it once.
private struct JSONBDocument: PostgresNonThrowingEncodable {
    let text: String
    static var psqlType: PostgresDataType { .jsonb }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<Encoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<Encoder>) {
        buffer.writeInteger(UInt8(1))
        buffer.writeString(text)
    }
}
