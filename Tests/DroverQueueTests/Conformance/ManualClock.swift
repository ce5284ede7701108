import DroverQueue
import Foundation
import Synchronization

/// A clock a test moves by hand, for a store's statements on every backend (``StoreClock/fixed(_:)``):
/// scheduled times, backoffs, leases and heartbeats come out exact, with no waiting.
final class ManualClock: Sendable {
    private let time: Mutex<Date>

    /// Starts at a whole second, so that times print plainly.
    init(_ start: Date = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))) {
        time = Mutex(start)
    }

    var now: Date { time.withLock { $0 } }

    func advance(by seconds: Double) {
        time.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    var storeClock: StoreClock { .fixed { [self] in self.now } }
}
