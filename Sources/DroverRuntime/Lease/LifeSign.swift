import CProcess
import Foundation

/// What a child tells its supervisor after the passes of its loop, through a pipe (descriptor 4)
/// that involves no database: that it is alive, how many jobs it runs, and until when its lease
/// holds. The supervisor watches its children with these (``ChildWatch``), so that a hung
/// database connection, in the child or in the supervisor, cannot hide a hung child.
///
/// A sign is 24 bytes, written in one `write(2)` (atomic on a pipe below `PIPE_BUF`), so that the
/// signs of all the children share one pipe without interleaving.
public struct LifeSign: Equatable, Sendable {
    public var pid: Int32
    /// Jobs it runs now: 0 for a dispatcher or a scheduler; a worker that fenced itself counts its
    /// jobs until their commands have ended (a command that ignores TERM still runs).
    public var running: Int32
    /// When its lease ends; nil before it registered.
    public var leaseExpiry: HostInstant?
    public var sentAt: HostInstant

    public init(pid: Int32, running: Int32, leaseExpiry: HostInstant?, sentAt: HostInstant) {
        self.pid = pid
        self.running = running
        self.leaseExpiry = leaseExpiry
        self.sentAt = sentAt
    }

    static let size = 24

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        withUnsafeBytes(of: pid.littleEndian) { out += $0 }
        withUnsafeBytes(of: running.littleEndian) { out += $0 }
        withUnsafeBytes(of: (leaseExpiry?.nanoseconds ?? 0).littleEndian) { out += $0 }
        withUnsafeBytes(of: sentAt.nanoseconds.littleEndian) { out += $0 }
        return out
    }

    /// The signs in `bytes`, whole signs only (a pipe never splits a write below `PIPE_BUF`).
    static func decode(_ bytes: some Collection<UInt8>) -> [LifeSign] {
        let all = Array(bytes)
        return stride(from: 0, to: all.count - Self.size + 1, by: Self.size).map { start in
            func int<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
                var value: T = 0
                withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: all[(start + offset)..<(start + offset + MemoryLayout<T>.size)]) }
                return T(littleEndian: value)
            }
            let expiry = int(8, Int64.self)
            return LifeSign(pid: int(0, Int32.self), running: int(4, Int32.self),
                            leaseExpiry: expiry == 0 ? nil : HostInstant(nanoseconds: expiry),
                            sentAt: HostInstant(nanoseconds: int(16, Int64.self)))
        }
    }
}

/// A child's end of the life-sign pipe.
final class LifeSignSender {
    static let descriptor: Int32 = 4
    private let interval: Duration
    private var last: LifeSign?

    /// Sends at least every `interval` (a quarter of the heartbeat interval), and at once when
    /// what it says changes.
    init(interval: Duration) { self.interval = interval }

    /// Sends a sign if it is due. A full pipe (a supervisor that stopped reading) drops it: a
    /// child never waits for its supervisor.
    /// Returns whether the supervisor has (or already had) what the sign says.
    @discardableResult
    func send(running: Int, lease: Lease, now: HostInstant = .now()) -> Bool {
        let sign = LifeSign(pid: getpid(), running: Int32(clamping: running), leaseExpiry: lease.expiry, sentAt: now)
        if let last, last.running == sign.running, last.leaseExpiry == sign.leaseExpiry, now - last.sentAt < interval { return true }
        let bytes = sign.bytes
        let written = bytes.withUnsafeBytes { write(Self.descriptor, $0.baseAddress, $0.count) }
        if written == bytes.count { last = sign }
        return written == bytes.count
    }
}

/// The supervisor's end: reads the signs its children sent.
final class LifeSignReader {
    let descriptor: Int32
    /// The write end, which the children get as descriptor 4.
    let childEnd: Int32

    init() throws(TransientFailure) {
        var fds: [Int32] = [-1, -1]
        guard drover_pipe_high(&fds, 1) == 0 else {
            throw TransientFailure("cannot make the life-sign pipe: \(String(cString: strerror(errno)))")
        }
        descriptor = fds[0]
        childEnd = fds[1]
    }

    /// Every sign waiting in the pipe.
    func take() -> [LifeSign] {
        var signs: [LifeSign] = []
        var buffer = [UInt8](repeating: 0, count: LifeSign.size * 170)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            signs += LifeSign.decode(buffer.prefix(count))
            if count < buffer.count { break }
        }
        return signs
    }
}

/// What the supervisor's watch knows of one live child.
struct WatchedChild {
    let startedAt: HostInstant
    var sign: LifeSign?
    /// Set once the watch killed it: why, for the log when it is reaped.
    var killedBecause: String?

    init(startedAt: HostInstant) { self.startedAt = startedAt }
}

/// What the supervisor makes of a child's signs (a decision, no I/O).
enum ChildWatch {
    enum Verdict: Equatable {
        case fine
        /// No sign for `alive_threshold`: its loop is stuck (frozen, a call that never returns).
        case hung(silentFor: Duration)
        /// It still reports running jobs a quarter of a margin before its lease ends: it did not
        /// fence itself in time, and another host may take its jobs over at the lease's end.
        case leaseRunningOut(running: Int32, remaining: Duration)
    }

    /// The verdict at `now` on a child started at `startedAt` whose last sign is `sign`.
    static func verdict(
        startedAt: HostInstant, sign: LifeSign?, now: HostInstant, aliveThreshold: Duration, margin: Duration
    ) -> Verdict {
        if let sign, sign.running > 0, let expiry = sign.leaseExpiry,
           let killAt = killAt(of: sign, aliveThreshold: aliveThreshold, margin: margin), now >= killAt {
            return .leaseRunningOut(running: sign.running, remaining: expiry - now)
        }
        let since = max(sign?.sentAt ?? startedAt, startedAt)
        if now - since >= aliveThreshold { return .hung(silentFor: now - since) }
        return .fine
    }

    /// When the verdict may change if no new sign comes.
    static func nextCheck(startedAt: HostInstant, sign: LifeSign?, aliveThreshold: Duration, margin: Duration) -> HostInstant {
        let silence = max(sign?.sentAt ?? startedAt, startedAt) + aliveThreshold
        guard let sign, sign.running > 0, let killAt = killAt(of: sign, aliveThreshold: aliveThreshold, margin: margin) else {
            return silence
        }
        return min(silence, killAt)
    }

    /// When the lease `sign` reports reaches the point where the supervisor kills a child that
    /// still runs jobs (the lease's own rule, margin capped as the child caps it).
    private static func killAt(of sign: LifeSign, aliveThreshold: Duration, margin: Duration) -> HostInstant? {
        guard let expiry = sign.leaseExpiry else { return nil }
        var lease = Lease(aliveThreshold: aliveThreshold, margin: margin)
        lease.renewed(sentAt: expiry - aliveThreshold)
        return lease.supervisorKillAt
    }
}
