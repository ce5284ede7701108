import CSystemd
import Foundation

/// Tells systemd about the service's state through `sd_notify(3)`: READY, STATUS, WATCHDOG,
/// RELOADING, STOPPING, EXTEND_TIMEOUT_USEC.
///
/// Without `NOTIFY_SOCKET` (not started by systemd as `Type=notify`) every call does nothing. Only the
/// supervisor notifies; children never get `NOTIFY_SOCKET`.
public struct SystemdNotifier: Sendable {
    /// Whether there is a systemd to tell.
    public let isEnabled: Bool
    /// How often systemd expects WATCHDOG=1, when `WatchdogSec=` is set for this process.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isEnabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        var usec: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &usec) > 0 ? .microseconds(Int64(usec)) : nil
    }

    /// Sends `fields` (`KEY=VALUE` each) in one datagram. Failures are returned, not thrown: a
    /// service must not stop because systemd could not be told something.
    @discardableResult
    public func notify(_ fields: [String]) -> SystemdError? {
        guard isEnabled else { return nil }
        let result = sd_notify(0, fields.joined(separator: "\n"))
        return result < 0 ? SystemdError(errno: -result) : nil
    }

    public func ready(status: String) { notify(["READY=1", "STATUS=\(Self.oneLine(status))"]) }
    public func status(_ text: String) { notify(["STATUS=\(Self.oneLine(text))"]) }
    public func watchdog() { notify(["WATCHDOG=1"]) }
    public func stopping(status: String) { notify(["STOPPING=1", "STATUS=\(Self.oneLine(status))"]) }

    /// RELOADING=1 with the monotonic time systemd (since 253) wants beside it.
    public func reloading(status: String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        notify(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=\(Self.oneLine(status))"])
    }

    /// Asks systemd to wait `duration` more for READY (or for stopping), from now.
    public func extendTimeout(by duration: Duration, status: String) {
        let usec = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        notify(["EXTEND_TIMEOUT_USEC=\(usec)", "STATUS=\(Self.oneLine(status))"])
    }

    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

public struct SystemdError: Error, Sendable, CustomStringConvertible {
    public let errno: Int32
    public var description: String { "sd_notify failed: \(String(cString: strerror(errno)))" }
}
