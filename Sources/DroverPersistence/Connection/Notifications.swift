import CLibPQ
import Foundation

/// A NOTIFY received on a channel this connection listens on.
public struct DatabaseNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    /// The server process that sent it.
    public let senderPID: Int32

    public init(channel: String, payload: String, senderPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.senderPID = senderPID
    }
}

extension Connection {
    /// The connection's socket, to wait for notifications in a poll(2) of one's own; then call
    /// ``waitForNotifications(timeout:)`` with a zero timeout to read them. Changes on reconnect.
    public var socketDescriptor: Int32 { PQsocket(handle) }

    /// Starts listening on `channel`. The connection listens again after it reconnects.
    public func listen(_ channel: String) throws(DatabaseError) {
        try execute("LISTEN \(SQLIdentifier(channel))")
        if !listeningChannels.contains(channel) { listeningChannels.append(channel) }
    }

    /// Stops listening on `channel`.
    public func unlisten(_ channel: String) throws(DatabaseError) {
        try execute("UNLISTEN \(SQLIdentifier(channel))")
        listeningChannels.removeAll { $0 == channel }
    }

    /// Sends a notification; inside a transaction it is delivered when the transaction commits.
    public func notify(_ channel: String, payload: String = "") throws(DatabaseError) {
        try execute("SELECT pg_notify(\(channel), \(payload))")
    }

    /// Waits up to `timeout` for notifications and returns them; returns an empty array when the
    /// timeout passes first. It sleeps in `poll(2)` on the connection's socket, so a wait costs no CPU.
    ///
    /// If the connection had to be re-established since the last wait, or is re-established during
    /// this one, this returns at once: notifications sent meanwhile are lost, so the caller should
    /// look at the tables itself. Only a server that stays unreachable makes it throw.
    public func waitForNotifications(timeout: Duration) throws(DatabaseError) -> [DatabaseNotification] {
        try prepareForUse()
        if reconnectedSinceLastWait {
            reconnectedSinceLastWait = false
            return drainNotifications()
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            let pending = drainNotifications()
            if !pending.isEmpty { return pending }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return [] }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000
                + (remaining.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw DatabaseError(.connectionLost, "waiting for notifications failed: poll: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }  // the deadline check above returns
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                // Nothing was in flight: reconnect (listening again) and let the caller look at the
                // tables, since what was sent meanwhile is lost. Inside a transaction, report it.
                try prepareForUse()
                reconnectedSinceLastWait = false
                return drainNotifications()
            }
        }
    }

    private func drainNotifications() -> [DatabaseNotification] {
        var received: [DatabaseNotification] = []
        while let notification = PQnotifies(handle) {
            received.append(DatabaseNotification(
                channel: String(cString: notification.pointee.relname),
                payload: String(cString: notification.pointee.extra),
                senderPID: notification.pointee.be_pid))
            PQfreemem(notification)
        }
        return received
    }
}
