import DroverQueue
import Foundation

/// One child the configuration asks for, and the restarts of whatever process fills it.
final class ChildSlot {
    /// The child's spec without a name: two slots with the same role are interchangeable.
    let role: ChildSpec
    private(set) var backoff: Duration = .seconds(1)
    /// When the next process may start (nil: now).
    var startAt: ContinuousClock.Instant?
    /// The process filling the slot now.
    var pid: pid_t?
    var name: String?
    var startedAt: ContinuousClock.Instant?
    /// A child that exited 78 (configuration) is not started again.
    var givenUp = false

    /// Backoff starts at 1 s, doubles to 60 s, and starts over once a child stayed up this long.
    static let stableAfter: Duration = .seconds(30)
    static let maximumBackoff: Duration = .seconds(60)

    init(role: ChildSpec) { self.role = role }

    /// Schedules the next start after the process died; returns the delay.
    func scheduleRestart(crashed: Bool) -> Duration {
        if let startedAt, ContinuousClock.now - startedAt >= Self.stableAfter { backoff = .seconds(1) }
        let delay = crashed ? backoff : .zero
        if crashed { backoff = min(backoff * 2, Self.maximumBackoff) }
        startAt = .now + delay
        return delay
    }
}

/// The restart intensity limit: more than `maxRestarts` restarts within `window` is a crash loop.
struct RestartIntensity {
    let maxRestarts: Int
    let window: Duration
    private var restarts: [ContinuousClock.Instant] = []

    init(maxRestarts: Int, window: Duration) {
        self.maxRestarts = maxRestarts
        self.window = window
    }

    /// Records a restart; true when that makes too many.
    mutating func record(at now: ContinuousClock.Instant = .now) -> Bool {
        restarts.append(now)
        restarts.removeAll { now - $0 > window }
        return restarts.count > maxRestarts
    }
}
