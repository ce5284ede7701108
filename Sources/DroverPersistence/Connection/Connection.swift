import CLibPQ
import Foundation

/// One PostgreSQL session through libpq.
///
/// Blocking and not `Sendable`: use a connection from one thread at a time, one connection per
/// thread. Every statement is sent with bound parameters (see ``SQL``).
///
/// A connection that the server ended while it sat idle is re-established on its next use, because
/// nothing was in flight. A statement in flight when the connection breaks fails with
/// ``DatabaseError/Code-swift.struct/connectionLost`` and is never sent again: it may have been
/// committed. The next use reconnects.
///
/// ```swift
/// let db = try Connection("postgresql:///drover?host=/run/postgresql")
/// try db.withTransaction { db in
///     try db.execute("INSERT INTO drover.pauses (queue_name) VALUES (\(queue))")
/// }
/// ```
public final class Connection {
    let handle: OpaquePointer
    private let secrets: [String]
    /// Where this connection goes (host or socket, port, database, user), for messages.
    public private(set) var target: ConnectionTarget

    /// Open ``withTransaction(_:)`` scopes: 0 outside, 1 in a transaction, more in savepoints.
    var transactionDepth = 0
    /// The server's transaction state after the last statement, to know whether a connection that
    /// died had a transaction open (begun by hand with a raw `BEGIN`, for instance).
    private var lastTransactionStatus = PQTRANS_IDLE
    /// Channels to LISTEN on again after a reconnect.
    var listeningChannels: [String] = []
    /// Settings made with ``setSessionSetting(_:to:)``, in order: a reconnect is a new server session,
    /// which starts from the defaults, so they are made again.
    private var sessionSettings: [(name: String, value: String)] = []
    /// Set by a reconnect, cleared by the next wait for notifications (which returns at once, as
    /// notifications sent meanwhile are lost).
    var reconnectedSinceLastWait = false
    /// Statements prepared on this session, by text and parameter types; a new session has none.
    private var prepared: [String: String] = [:]
    /// Each attempt to connect or reconnect gives up after this (nil: libpq's `connect_timeout`).
    private var attemptTimeout: Duration?

    /// Connects to `connectionString`: a `postgresql://` URL, `key=value` pairs, or empty for libpq's
    /// defaults. libpq's `PG*` variables, `~/.pgpass` and service files apply as usual.
    ///
    /// `defaults` are libpq keywords (`keepalives_idle`, `tcp_user_timeout`, …) that apply unless
    /// the string, the environment or a service file sets them.
    ///
    /// `attemptTimeout` bounds each attempt to connect (and to reconnect) to the millisecond,
    /// where libpq's `connect_timeout` counts whole seconds and at least two: a runtime process
    /// must not sit in a connection attempt through the margin of its lease.
    public init(
        _ connectionString: String = "", applicationName: String = "drover", defaults: [(String, String)] = [],
        attemptTimeout: Duration? = nil
    ) throws(DatabaseError) {
        let parsed = try ConnectionString(connectionString)
        var keywords = ["fallback_application_name"]
        var values = [applicationName]
        for (keyword, value) in defaults where keyword != "connect_timeout" {
            keywords.append(keyword)
            values.append(value)
        }
        // Fail instead of hanging forever on an unreachable host, unless the user chose a timeout
        // (in the string, the environment, or a service file, whose values apply only to options
        // left unset).
        let environment = ProcessInfo.processInfo.environment
        if parsed.options["connect_timeout"] == nil, parsed.options["service"] == nil,
           environment["PGCONNECT_TIMEOUT"] == nil, environment["PGSERVICE"] == nil {
            keywords.append("connect_timeout")
            values.append(defaults.first { $0.0 == "connect_timeout" }?.1 ?? "10")
        }
        keywords.append("dbname")
        values.append(connectionString)
        // After dbname, so it overrides: every text we read and send is UTF-8.
        keywords.append("client_encoding")
        values.append("UTF8")

        let conn = Self.withCStringArrays(keywords, values) { keywords, values in
            attemptTimeout == nil ? PQconnectdbParams(keywords, values, 1) : PQconnectStartParams(keywords, values, 1)
        }
        guard let conn else {
            throw DatabaseError(.connectionFailed, "cannot connect to PostgreSQL: libpq is out of memory")
        }
        handle = conn
        secrets = parsed.secrets + defaults.filter { $0.0 == "password" }.flatMap { ConnectionStringMask.Found.forms(of: Array($0.1.utf8)) }
        self.attemptTimeout = attemptTimeout
        var answered = true
        if let attemptTimeout {
            answered = Self.finishConnecting(conn, within: attemptTimeout, poll: PQconnectPoll)
        }
        target = ConnectionTarget(conn, secrets: secrets)
        // From here on every stored property is set, so a throw runs deinit, which closes `conn`.
        guard answered else { throw Self.attemptTimedOut(target: target, after: attemptTimeout!) }
        guard PQstatus(conn) == CONNECTION_OK else {
            throw Self.connectError(conn, target: target, secrets: secrets)
        }
        try setUpSession()
    }

    deinit {
        PQfinish(handle)
    }

    /// The server process serving this connection (`pg_backend_pid()`); changes on reconnect.
    public var backendPID: Int32 { PQbackendPID(handle) }

    // MARK: - Statements

    /// Runs one statement and returns its rows.
    ///
    /// With `prepared`, the statement is parsed and planned once per session and executed by name
    /// afterwards: for statements a process runs over and over (claiming, finishing). PostgreSQL still
    /// plans it for its actual values for the first executions, and keeps a generic plan only when
    /// that plan is no worse.
    @discardableResult
    public func query(_ sql: SQL, prepared: Bool = false) throws(DatabaseError) -> QueryResult {
        let (text, binds) = sql.render()
        guard prepared else { return try run(text: text, binds: binds, simpleProtocol: false) }
        return try runPrepared(text: text, binds: binds)
    }

    /// `query(sql, prepared: true)`, for statements written out in place.
    @discardableResult
    public func query(prepared: Bool, _ sql: SQL) throws(DatabaseError) -> QueryResult {
        try query(sql, prepared: prepared)
    }

    /// Runs one statement and returns how many rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ sql: SQL) throws(DatabaseError) -> Int {
        try query(sql).affectedRows
    }

    /// Runs a script of one or more statements with no parameters, as psql would (simple query
    /// protocol). For migrations and other SQL the program ships; never for input from outside.
    public func execute(unsafeRawScript script: String) throws(DatabaseError) {
        _ = try run(text: script, binds: [], simpleProtocol: true)
    }

    private func runPrepared(text: String, binds: [DatabaseValue]) throws(DatabaseError) -> QueryResult {
        try prepareForUse()
        let key = binds.map { String($0.type.rawValue) }.joined(separator: ",") + "|" + text
        let name: String
        if let existing = prepared[key] {
            name = existing
        } else {
            name = "drover_\(prepared.count + 1)"
            let types = binds.map { Oid($0.type.rawValue) }
            let result = PQprepare(handle, name, text, Int32(binds.count), types)
            let connectionBroke = PQstatus(handle) != CONNECTION_OK
            guard let result else {
                throw connectionBroke ? lostInFlight(query: text)
                    : DatabaseError(.serverError, "libpq returned no result: \(errorMessage())", query: text)
            }
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else {
                throw connectionBroke ? lostInFlight(query: text, result: result) : serverError(result, query: text)
            }
            prepared[key] = name
        }
        return try run(text: text, binds: binds, simpleProtocol: false, preparedName: name)
    }

    private func run(
        text: String, binds: [DatabaseValue], simpleProtocol: Bool, preparedName: String? = nil
    ) throws(DatabaseError) -> QueryResult {
        for (i, bind) in binds.enumerated() where bind.text?.utf8.contains(0) == true {
            throw DatabaseError(
                .invalidParameter,
                "parameter $\(i + 1) (\(bind.type)) contains a NUL byte, which PostgreSQL text cannot hold; "
                    + "remove it, or store such data as bytea",
                query: text)
        }
        if preparedName == nil { try prepareForUse() }

        let result: OpaquePointer?
        if simpleProtocol {
            result = PQexec(handle, text)
        } else if let preparedName {
            result = Self.withOptionalCStrings(binds.map(\.text)) { values in
                PQexecPrepared(handle, preparedName, Int32(binds.count), values, nil, nil, 0)
            }
        } else {
            let types = binds.map { Oid($0.type.rawValue) }
            result = Self.withOptionalCStrings(binds.map(\.text)) { values in
                PQexecParams(handle, text, Int32(binds.count), types, values, nil, nil, 0)
            }
        }
        let connectionBroke = PQstatus(handle) != CONNECTION_OK
        lastTransactionStatus = connectionBroke ? lastTransactionStatus : PQtransactionStatus(handle)

        guard let result else {
            throw connectionBroke
                ? lostInFlight(query: text)
                : DatabaseError(.serverError, "libpq returned no result: \(errorMessage())", query: text)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return QueryResult(result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            PQclear(result)
            throw DatabaseError(.serverError, "COPY is not supported through this API", query: text)
        default:
            defer { PQclear(result) }
            if connectionBroke { throw lostInFlight(query: text, result: result) }
            throw serverError(result, query: text)
        }
    }

    // MARK: - Connection health

    /// Makes sure the connection is usable before anything is sent on it.
    ///
    /// Reading what the server sent while we were idle is how a connection the server ended
    /// (`pg_terminate_backend`, a restart) is noticed before a statement goes out on it. Such a
    /// connection is re-established, unless a transaction was open on it: that transaction is gone,
    /// and silently carrying on outside it would be wrong.
    func prepareForUse() throws(DatabaseError) {
        if isAlive() { return }
        let hadTransaction = transactionDepth > 0 || lastTransactionStatus != PQTRANS_IDLE
        if hadTransaction {
            // Report it once for a transaction begun by hand; a withTransaction scope keeps failing
            // until it ends, so its body cannot carry on outside the transaction.
            lastTransactionStatus = PQTRANS_IDLE
            throw DatabaseError(
                .connectionLost,
                "the connection to \(target) was lost while a transaction was open, so the server rolled "
                    + "that transaction back; end it and run it again. The next use reconnects.")
        }
        try reconnect()
    }

    /// Reads whatever the server sent while the connection was idle and says whether it is still up.
    ///
    /// A server that ends a session sends an error (which libpq hands to the notice receiver when
    /// idle) and then closes the socket; libpq only notices the close on a later read. So this reads
    /// until the socket has nothing more to say: no data, or end of file.
    private func isAlive() -> Bool {
        guard PQstatus(handle) == CONNECTION_OK else { return false }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        // Bounded, so a flood of notifications cannot keep us here.
        for _ in 0..<64 {
            descriptor.revents = 0
            guard poll(&descriptor, 1, 0) > 0 else { return true }
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK { return false }
        }
        return true
    }

    private func reconnect() throws(DatabaseError) {
        var answered = true
        if let attemptTimeout {
            answered = PQresetStart(handle) != 0 && Self.finishConnecting(handle, within: attemptTimeout, poll: PQresetPoll)
        } else {
            PQreset(handle)
        }
        prepared = [:]
        target = ConnectionTarget(handle, secrets: secrets)
        guard answered || PQstatus(handle) == CONNECTION_BAD else { throw Self.attemptTimedOut(target: target, after: attemptTimeout!) }
        guard PQstatus(handle) == CONNECTION_OK else {
            throw Self.connectError(handle, target: target, secrets: secrets, reconnecting: true)
        }
        lastTransactionStatus = PQTRANS_IDLE
        try setUpSession()
        for (name, value) in sessionSettings {
            _ = try run(text: "SELECT set_config($1, $2, false)", binds: [DatabaseValue(type: .text, text: name),
                                                                              DatabaseValue(type: .text, text: value)],
                        simpleProtocol: false)
        }
        for channel in listeningChannels {
            _ = try run(text: "LISTEN \(SQLIdentifier(channel).quoted)", binds: [], simpleProtocol: false)
        }
        reconnectedSinceLastWait = true
    }

    /// Drives a connection attempt begun with `PQconnectStartParams` or `PQresetStart` until it is
    /// made or fails (true: it ended, either way; PQstatus says how), or until `timeout` passes
    /// (false: no answer in time; the attempt is abandoned, the socket closed on the next one).
    private static func finishConnecting(
        _ conn: OpaquePointer, within timeout: Duration, poll next: (OpaquePointer?) -> PostgresPollingStatusType
    ) -> Bool {
        let deadline = ContinuousClock.now + timeout
        // libpq: start as if the last poll asked to write.
        var status = PGRES_POLLING_WRITING
        while true {
            if PQstatus(conn) == CONNECTION_BAD || status == PGRES_POLLING_FAILED || status == PGRES_POLLING_OK { return true }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            var descriptor = pollfd(fd: PQsocket(conn), events: Int16(status == PGRES_POLLING_READING ? POLLIN : POLLOUT), revents: 0)
            let milliseconds = Int32(clamping: max(1, Int64((left.seconds * 1000).rounded(.up))))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready == 0 { return false }
            if ready < 0 && errno != EINTR { return true }
            status = next(conn)
        }
    }

    private static func attemptTimedOut(target: ConnectionTarget, after timeout: Duration) -> DatabaseError {
        DatabaseError(
            .connectionFailed,
            "cannot connect to PostgreSQL at \(target): no answer within \(Int((timeout.seconds * 1000).rounded())) ms "
                + "(database.network_timeout, or half a heartbeat_interval); check that the server is up and reachable from this host")
    }

    /// Sets a server setting for this session (`lock_timeout`, `statement_timeout`, …), and again
    /// after every reconnect: a setting made with a plain `SET` would silently be lost with the
    /// session (a heartbeat that should give up after `lock_timeout` would wait forever instead).
    public func setSessionSetting(_ name: String, to value: String) throws(DatabaseError) {
        try execute("SELECT set_config(\(name), \(value), false)")
        sessionSettings.removeAll { $0.name == name }
        sessionSettings.append((name, value))
    }

    /// Session settings every statement relies on.
    private func setUpSession() throws(DatabaseError) {
        // Server notices (a NOTICE from CREATE ... IF NOT EXISTS, say) must not go to stderr.
        PQsetNoticeReceiver(handle, { _, _ in }, nil)
        // Timestamps are read in ISO format; most servers already use it.
        let dateStyle = PQparameterStatus(handle, "DateStyle").map { String(cString: $0) } ?? ""
        if !dateStyle.hasPrefix("ISO") {
            _ = try run(text: "SET DateStyle TO ISO", binds: [], simpleProtocol: false)
        }
    }

    // MARK: - Errors

    func errorMessage() -> String {
        let message = PQerrorMessage(handle).map { String(cString: $0) } ?? ""
        return ConnectionString.redact(Self.concise(libpqMessage: message), secrets: secrets)
    }

    func lostInFlight(query: String, result: OpaquePointer? = nil, committing: Bool = false) -> DatabaseError {
        let sqlState = result.flatMap { Self.field($0, "C") }
        let what = committing
            ? "while committing: the transaction may or may not have been committed"
            : "while a statement was in flight: it may or may not have taken effect"
        return DatabaseError(
            .connectionLost,
            "lost the connection to \(target) \(what), and it was not retried (\(errorMessage())). "
                + "The next use of this connection reconnects.",
            sqlState: sqlState, query: query)
    }

    private func serverError(_ result: OpaquePointer, query: String) -> DatabaseError {
        let sqlState = Self.field(result, "C")
        let primary = Self.field(result, "M") ?? errorMessage()
        return DatabaseError(
            sqlState.map(DatabaseError.code(forSQLState:)) ?? .serverError,
            ConnectionString.redact(primary, secrets: secrets),
            sqlState: sqlState,
            detail: Self.field(result, "D").map { ConnectionString.redact($0, secrets: secrets) },
            hint: Self.field(result, "H"),
            column: Self.field(result, "c"),
            query: query)
    }

    private static func field(_ result: OpaquePointer, _ code: Unicode.Scalar) -> String? {
        PQresultErrorField(result, Int32(code.value)).map { String(cString: $0) }
    }

    /// Why connecting failed, as a code a caller can switch on and a message that says what to do.
    static func connectError(
        _ conn: OpaquePointer, target: ConnectionTarget, secrets: [String], reconnecting: Bool = false
    ) -> DatabaseError {
        let raw = PQerrorMessage(conn).map { String(cString: $0) } ?? ""
        return classifyConnectFailure(raw, target: target, secrets: secrets, reconnecting: reconnecting)
    }

    /// Sorts libpq's connection failure text into a code. libpq gives no SQLSTATE for these, so the
    /// text is all there is; anything not recognised is `connectionFailed`.
    static func classifyConnectFailure(
        _ raw: String, target: ConnectionTarget, secrets: [String], reconnecting: Bool = false
    ) -> DatabaseError {
        let reason = ConnectionString.redact(Self.concise(libpqMessage: raw), secrets: secrets)
        let lower = raw.lowercased()
        let verb = reconnecting ? "cannot reconnect to" : "cannot connect to"
        // Options libpq only checks when it connects: a port that is not a number, an unknown sslmode.
        if lower.hasPrefix("invalid ") {
            return DatabaseError(
                .invalidConnectionString,
                "the database URL is not valid: \(reason); expected postgresql://USER@HOST:PORT/DATABASE, "
                    + "postgresql:///DATABASE?host=/run/postgresql or key=value pairs")
        }
        // "no pg_hba.conf entry for host …" or "pg_hba.conf rejects connection for host …".
        if lower.contains("pg_hba.conf") {
            return DatabaseError(
                .authenticationFailed,
                "\(verb) \(target): the server's pg_hba.conf does not let this user connect from here "
                    + "(\(reason)); ask its administrator for an entry, or connect as another user")
        }
        if lower.contains("password authentication failed") || lower.contains("no password supplied")
            || lower.contains("authentication failed") || lower.contains("role \"")
        {
            return DatabaseError(
                .authenticationFailed,
                "\(verb) \(target): the server refused the credentials (\(reason)); check the user name and "
                    + "the password (in the URL, PGPASSWORD or ~/.pgpass)")
        }
        if lower.contains("database \""), lower.contains("does not exist") {
            return DatabaseError(
                .databaseNotFound,
                "\(verb) \(target): the database does not exist (\(reason)); create it "
                    + "(createdb \(target.database)) or name an existing one")
        }
        return DatabaseError(
            .connectionFailed,
            "\(verb) \(target): \(reason); check that PostgreSQL is running and that the host, port or "
                + "socket directory is right")
    }

    /// libpq's message on one line, without what our messages already say: the "connection to
    /// server … failed:" prefix (the target is named) and libpq's tab-indented hints.
    static func concise(libpqMessage raw: String) -> String {
        let lines = raw.split(separator: "\n").filter { !$0.hasPrefix("\t") }
        let reasons = lines.map { line -> String in
            var text = String(line)
            if text.hasPrefix("connection to server"), let failed = text.range(of: " failed: ") {
                text = String(text[failed.upperBound...])
            }
            return text.trimmingCharacters(in: .whitespaces)
        }
        return reasons.filter { !$0.isEmpty }.joined(separator: "; ")
    }

    // MARK: - C strings

    private static func withCStringArrays<R>(
        _ a: [String], _ b: [String],
        _ body: (UnsafePointer<UnsafePointer<CChar>?>, UnsafePointer<UnsafePointer<CChar>?>) -> R
    ) -> R {
        let ca = a.map { UnsafePointer(strdup($0)) } + [nil]
        let cb = b.map { UnsafePointer(strdup($0)) } + [nil]
        defer {
            for p in ca + cb { free(UnsafeMutablePointer(mutating: p)) }
        }
        return body(ca, cb)
    }

    private static func withOptionalCStrings<R>(
        _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R
    ) -> R {
        if strings.isEmpty { return body(nil) }
        let pointers = strings.map { $0.map { UnsafePointer(strdup($0)) } ?? nil }
        defer {
            for p in pointers { free(UnsafeMutablePointer(mutating: p)) }
        }
        return body(pointers)
    }
}
