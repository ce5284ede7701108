@testable import DroverRuntime
import DroverQueue
import Foundation
import Testing

@Suite("Restart policy")
struct RestartPolicyTests {
    private func role() -> ChildSpec {
        ChildSpec(kind: .worker, name: "", supervisorID: 1, databaseURL: "", schema: "drover", heartbeatIntervalMilliseconds: 1000,
                  aliveThresholdMilliseconds: 5000, networkTimeoutMilliseconds: 1250, statementTimeoutMilliseconds: 2000, shutdownTimeoutMilliseconds: 1000, maxCrashes: 3, preserveFinishedJobs: true,
                  clearFinishedAfterSeconds: 86_400, testHandlers: false, worker: nil, dispatcher: nil)
    }

    @Test("crash backoff starts at 1 s, doubles to 60 s, and starts over after a child stayed up")
    func backoff() {
        let slot = ChildSlot(role: role())
        slot.startedAt = .now
        let delays = (0..<9).map { _ in slot.scheduleRestart(crashed: true) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 60, 60, 60].map { Duration.seconds($0) })
        #expect(slot.scheduleRestart(crashed: false) == .zero, "a child that exited cleanly comes back at once")
        slot.startedAt = .now - ChildSlot.stableAfter
        #expect(slot.scheduleRestart(crashed: true) == .seconds(1), "a stable run resets the backoff")
    }

    @Test("more than max_restarts within the window is a crash loop; older restarts fall out of the window")
    func intensity() {
        var limit = RestartIntensity(maxRestarts: 3, window: .seconds(60))
        let start = ContinuousClock.now
        let verdicts = [0, 10, 20, 30].map { limit.record(at: start + .seconds($0)) }
        #expect(verdicts == [false, false, false, true], "the fourth within a minute")
        var spread = RestartIntensity(maxRestarts: 3, window: .seconds(60))
        let spaced = (0..<10).map { minute in spread.record(at: start + .seconds(Int64(minute) * 61)) }
        #expect(!spaced.contains(true))
    }
}
