import CSystemd

/// Tells systemd about the service's state through `sd_notify(3)` (READY=1, STATUS=…, …).
///
/// Without `NOTIFY_SOCKET` (not started by systemd as `Type=notify`) every call does nothing.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends `fields` (each `KEY=VALUE`) in one datagram. Returns false when there is no systemd to
    /// tell; throws the errno when sending failed.
    @discardableResult
    public func notify(_ fields: [String]) throws(SystemdError) -> Bool {
        let result = sd_notify(0, fields.joined(separator: "\n"))
        if result < 0 { throw SystemdError(errno: -result) }
        return result > 0
    }
}

public struct SystemdError: Error, Sendable, CustomStringConvertible {
    public let errno: Int32
    public var description: String { "sd_notify failed with errno \(errno)" }
}
