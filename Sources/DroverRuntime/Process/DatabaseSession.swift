import DroverPersistence
import DroverQueue
import Foundation

/// A process's connection, which rides out database outages, on either backend.
///
/// An outage (the server unreachable, restarting, or the connection lost) is not a failure of the
/// process: operations return nil while it lasts, reconnection is retried with backoff, and the log
/// says so once when it starts and once when it ends, not once per attempt.
public final class DatabaseSession<Database: SQLDatabase> {
    private let open: () throws -> Database
    private let log: Log
    private var connection: Database?
    private var retryAt = ContinuousClock.now
    private var backoff = Duration.milliseconds(250)
    /// The longest wait between two attempts to reconnect.
    private let maximumBackoff: Duration
    /// When the current outage began; nil while the database is reachable.
    public private(set) var downSince: ContinuousClock.Instant?
    /// The last outage error, for status lines.
    public private(set) var lastError: DatabaseError?
    /// Runs after every (re)connection, before anything else: LISTEN, for instance.
    public var onConnect: ((Database) throws -> Void)?
    /// When the database came back (or was first reached): pruning waits a while after it.
    public private(set) var connectedSince: ContinuousClock.Instant?
    /// Set when an outage ends; whoever needs to reconcile after one clears it.
    public var recoveredFromOutage = false
    /// Runs after every call (whether it succeeded, failed, or found the database away): a
    /// process that is waiting on locks or on a dead path is still making progress, and says so
    /// to its supervisor.
    public var onProgress: (() -> Void)?

    /// `open` makes a new connection, with its session settings (a lock timeout, say). Attempts
    /// to reconnect back off from 250 ms, doubling, to `maximumBackoff` (a runtime process: its
    /// heartbeat interval, so that it is back within one heartbeat of the database).
    public init(log: Log, maximumBackoff: Duration = .seconds(15), open: @escaping () throws -> Database) {
        self.open = open
        self.log = log
        self.maximumBackoff = max(.milliseconds(250), maximumBackoff)
    }

    public var isDown: Bool { downSince != nil }

    /// The connection's socket while connected, to wait for notifications on.
    public var socketDescriptor: Int32? {
        guard !isDown, let connection else { return nil }
        return connection.notificationDescriptor
    }

    /// When the next reconnection attempt is due, during an outage.
    public var nextRetry: ContinuousClock.Instant? { isDown ? retryAt : nil }

    /// Runs `body` on the connection. Returns nil when the database is unreachable (now, or since
    /// an attempt that is not due for a retry yet); rethrows every other error.
    public func run<R>(_ body: (Database) throws -> R) throws -> R? {
        if isDown, ContinuousClock.now < retryAt { return nil }
        defer { onProgress?() }
        do {
            let connection = try connect()
            let result = try body(connection)
            recovered()
            return result
        } catch let error as DatabaseError where Self.isOutage(error) {
            failed(error)
            return nil
        }
    }

    /// Whether `error` means the database cannot be reached (rather than that a statement failed).
    public static func isOutage(_ error: DatabaseError) -> Bool {
        [.connectionFailed, .connectionLost, .authenticationFailed, .databaseNotFound].contains(error.code)
            || error.sqlState == "57P03"  // the database system is starting up
    }

    private func connect() throws -> Database {
        if let connection { return connection }
        let fresh = try open()
        try onConnect?(fresh)
        connection = fresh
        connectedSince = .now
        return fresh
    }

    private func failed(_ error: DatabaseError) {
        lastError = error
        if downSince == nil {
            downSince = .now
            log.warning("database unreachable; waiting for it and retrying", [("error", error.message)])
        }
        if error.code == .connectionLost || error.code == .connectionFailed {
            // A Connection re-establishes itself on next use; a new one is made only when it was never made.
            connectedSince = nil
        }
        retryAt = .now + backoff
        backoff = min(backoff * 2, maximumBackoff)
    }

    private func recovered() {
        guard let since = downSince else { return }
        downSince = nil
        recoveredFromOutage = true
        backoff = .milliseconds(250)
        if connectedSince == nil { connectedSince = .now }
        log.info("database reachable again", [("after", DurationText.format(.now - since))])
    }
}
