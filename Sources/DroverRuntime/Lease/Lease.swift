import Foundation

/// An instant of the host's `CLOCK_BOOTTIME`: monotonic, the same for every process of the host
/// (so a worker can tell its supervisor when its lease ends), and running while the host is
/// suspended (a VM paused for a minute comes back with its lease run out, as the database sees it).
public struct HostInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the host booted.
    public let nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func now() -> HostInstant {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return HostInstant(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    public static func < (a: HostInstant, b: HostInstant) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: HostInstant, d: Duration) -> HostInstant { HostInstant(nanoseconds: a.nanoseconds + d.nanoseconds) }
    public static func - (a: HostInstant, d: Duration) -> HostInstant { HostInstant(nanoseconds: a.nanoseconds - d.nanoseconds) }
    public static func - (a: HostInstant, b: HostInstant) -> Duration { .nanoseconds(a.nanoseconds - b.nanoseconds) }

    public var description: String { String(format: "%.3f s", Double(nanoseconds) / 1e9) }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// A process's lease on the jobs it claims (docs/reliability.md, "Leases and fencing").
///
/// The database holds the other half: the process's `last_heartbeat_at`, which every heartbeat
/// sets to the database server's time, and which any supervisor may prune once it is older than
/// `alive_threshold` by that same clock. A heartbeat leaves the process at instant `s` and is
/// stamped by the server later, so no supervisor can take the jobs over before `s +
/// alive_threshold`, measured on the process's own monotonic clock: that is when the lease ends.
/// Whatever the hosts' wall clocks say, and however long the network or the database kept the
/// heartbeat.
///
/// Before it ends, the process fences itself: one margin (`heartbeat_interval`) early it stops
/// claiming and asks its jobs to stop (TERM, cancellation); half a margin early it kills the
/// commands still running; a quarter of a margin early its supervisor kills the process if it
/// still reports running jobs (it is frozen, or stuck).
///
/// ```swift
/// var lease = Lease(aliveThreshold: .seconds(60), margin: .seconds(10))
/// let sent = HostInstant.now()
/// if heartbeatSucceeded { lease.renewed(sentAt: sent) }
/// if lease.phase(at: .now()) != .valid { /* fence */ }
/// ```
public struct Lease: Sendable, Equatable {
    public enum Phase: Sendable, Equatable, Comparable {
        /// Renewed recently enough: the process may claim and run jobs.
        case valid
        /// Less than a margin left: stop claiming, ask every job to stop.
        case fencing
        /// Less than half a margin left: kill the commands still running; a Swift job that is
        /// still running takes the process down with it.
        case killing
        /// Over: another supervisor may have taken the jobs over.
        case expired
    }

    public let aliveThreshold: Duration
    /// How long before the lease ends the process starts to stop its jobs: one heartbeat interval,
    /// or a quarter of `alive_threshold` when that is less.
    public let margin: Duration
    /// When the lease ends; nil before the process registered.
    public private(set) var expiry: HostInstant?

    public init(aliveThreshold: Duration, margin: Duration) {
        self.aliveThreshold = aliveThreshold
        // A quarter of the threshold at most: with alive_threshold at its smallest (2 ×
        // heartbeat_interval) a whole interval would fence the worker the moment its next
        // heartbeat leaves, before the answer can renew the lease (found by the model check).
        self.margin = min(margin, aliveThreshold / 4)
    }

    /// A heartbeat (or the registration) sent at `sentAt` was committed.
    public mutating func renewed(sentAt: HostInstant) {
        let end = sentAt + aliveThreshold
        if expiry.map({ end > $0 }) ?? true { expiry = end }
    }

    /// When the process must start stopping its jobs.
    public var fenceAt: HostInstant? { expiry.map { $0 - margin } }
    /// When the commands still running are killed.
    public var killAt: HostInstant? { expiry.map { $0 - margin / 2 } }
    /// When the supervisor kills a process that still reports running jobs.
    public var supervisorKillAt: HostInstant? { expiry.map { $0 - margin / 4 } }

    /// Where the lease stands at `now`; a process that never registered holds nothing.
    public func phase(at now: HostInstant) -> Phase {
        guard let expiry else { return .valid }
        if now >= expiry { return .expired }
        if now >= expiry - margin / 2 { return .killing }
        if now >= expiry - margin { return .fencing }
        return .valid
    }

    /// How long the lease has left at `now` (negative once over).
    public func remaining(at now: HostInstant) -> Duration? { expiry.map { $0 - now } }
}
