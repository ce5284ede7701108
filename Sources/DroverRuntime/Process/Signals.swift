import CProcess
import Foundation

/// Signals as events read in a loop, never as code run in a handler (docs/architecture.md).
public enum Signals {
    /// The signals Drover's long-running processes handle.
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD]

    /// Blocks `signals` in the calling thread, and so in every thread it starts afterwards. Call it in
    /// `main` before anything starts a thread.
    public static func block(_ signals: [Int32] = handled) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}

/// A signalfd for blocked signals: readable when one is pending.
public final class SignalReader {
    public let descriptor: Int32

    public init(_ signals: [Int32] = Signals.handled) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        descriptor = drover_signalfd(&set)
        precondition(descriptor >= 0, "signalfd failed: \(String(cString: strerror(errno)))")
    }

    deinit { close(descriptor) }

    /// The pending signals, in arrival order (empty when none is pending).
    public func pending() -> [(signal: Int32, sender: pid_t)] {
        var signals: [(Int32, pid_t)] = []
        while true {
            var sender: pid_t = 0
            let signal = drover_signalfd_read(descriptor, &sender)
            guard signal > 0 else { return signals }
            signals.append((signal, sender))
        }
    }
}

/// An eventfd other threads use to wake a thread waiting in poll(2).
public final class Wakeup: @unchecked Sendable {
    // @unchecked: the descriptor is written by any thread (eventfd writes are atomic) and read by one.
    public let descriptor: Int32

    public init() {
        descriptor = drover_eventfd()
        precondition(descriptor >= 0, "eventfd failed: \(String(cString: strerror(errno)))")
    }

    deinit { close(descriptor) }

    public func signal() { drover_eventfd_signal(descriptor) }
    public func drain() { drover_eventfd_drain(descriptor) }
}

/// Waits in poll(2) on `descriptors` until one is readable or `timeout` passes; returns the readable ones.
public func waitForReadable(_ descriptors: [Int32], timeout: Duration?) -> Set<Int32> {
    var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let milliseconds: Int32 = timeout.map {
        Int32(clamping: max(0, Int64(($0.seconds * 1000).rounded(.up))))
    } ?? -1
    let ready = poll(&fds, nfds_t(fds.count), milliseconds)
    guard ready > 0 else { return [] }
    return Set(fds.filter { $0.revents != 0 }.map(\.fd))
}

extension Signals {
    /// A signal's name for the log (SIGKILL), or its number.
    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGBUS: return "SIGBUS"
        case SIGINT: return "SIGINT"
        case SIGQUIT: return "SIGQUIT"
        case SIGTRAP: return "SIGTRAP"
        default: return "signal \(signal)"
        }
    }
}
