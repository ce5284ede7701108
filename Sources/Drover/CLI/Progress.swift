import Foundation
import Synchronization

/// Ctrl-C during a long command: the first asks it to stop at the next safe point (between two
/// transactions); a second ends the process at once (the open transaction rolls back).
enum Interruption {
    private static let requested = Atomic<Bool>(false)

    /// Takes SIGINT from now on.
    static func catchInterrupts() {
        // A blocked signal stays blocked across exec: a parent that blocks SIGINT would make
        // Ctrl-C do nothing here.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in
            Interruption.requested.store(true, ordering: .relaxed)
            // The next one kills: a command stuck in one statement can still be stopped.
            signal(SIGINT, SIG_DFL)
        }
    }

    static var wasRequested: Bool { requested.load(ordering: .relaxed) }
}

/// A progress line on stderr, rewritten in place ("retried 12,000 of 80,000 jobs, 9,800/s"), only
/// when stderr is a terminal and the output is not JSON; at most ten times a second.
struct ProgressLine {
    let enabled: Bool
    private let started = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?
    private var drawn = false

    init(json: Bool) {
        enabled = !json && isatty(STDERR_FILENO) == 1
    }

    /// Draws `done` of `total` (when known) things with their rate.
    mutating func update(_ verb: String, _ done: Int, of total: Int?, unit: String = "jobs") {
        guard enabled else { return }
        let now = ContinuousClock.now
        if let lastDrawn, now - lastDrawn < .milliseconds(100) { return }
        lastDrawn = now
        let seconds = max((now - started).seconds, 0.001)
        let rate = Int((Double(done) / seconds).rounded())
        let of = total.map { " of \(Self.grouped($0))" } ?? ""
        FileHandle.standardError.write(Data("\r\u{1B}[K\(verb) \(Self.grouped(done))\(of) \(unit), \(Self.grouped(rate))/s".utf8))
        drawn = true
    }

    /// Ends the line, so that what is printed next starts on a line of its own.
    mutating func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }

    /// 12345678 as "12,345,678".
    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
