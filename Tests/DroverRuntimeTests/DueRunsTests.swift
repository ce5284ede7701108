import DroverQueue
@testable import DroverRuntime
import Foundation
import Testing

/// Which runs a scheduler enqueues, given the last one recorded: pure logic.
@Suite("Recurring runs due: on time, missed, caught up, after a schedule change")
struct DueRunsTests {
    static func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: "2026-11-27T\(text)Z")! }
    static let minutely = try! Schedule("* * * * *")

    func task(catchUp: Bool = false, changedAt: String = "00:00:00") -> RecurringTask {
        RecurringTask(key: "t", schedule: "* * * * *", className: "Work", catchUp: catchUp, scheduleChangedAt: Self.at(changedAt))
    }

    @Test("a run that just fell due is enqueued, and one a few seconds late too")
    func onTime() {
        #expect(DueRuns.runs(of: task(), schedule: Self.minutely, lastRun: Self.at("10:02:00"), now: Self.at("10:03:00")) == [Self.at("10:03:00")])
        #expect(DueRuns.runs(of: task(), schedule: Self.minutely, lastRun: Self.at("10:02:00"), now: Self.at("10:03:40")) == [Self.at("10:03:00")])
        #expect(DueRuns.runs(of: task(), schedule: Self.minutely, lastRun: Self.at("10:03:00"), now: Self.at("10:03:40")).isEmpty)
    }

    @Test("runs missed while everything was down are skipped")
    func missedAreSkipped() {
        let runs = DueRuns.runs(of: task(), schedule: Self.minutely, lastRun: Self.at("10:00:00"), now: Self.at("10:10:30"))
        #expect(runs == [Self.at("10:10:00")])
    }

    @Test("with catch_up, the latest missed run is enqueued once, then the current one")
    func catchUpOnce() {
        let runs = DueRuns.runs(of: task(catchUp: true), schedule: Self.minutely, lastRun: Self.at("10:00:00"), now: Self.at("10:10:30"))
        #expect(runs == [Self.at("10:09:00"), Self.at("10:10:00")])
        // Once recorded, nothing is caught up again.
        #expect(DueRuns.runs(of: task(catchUp: true), schedule: Self.minutely, lastRun: Self.at("10:10:00"), now: Self.at("10:10:40")).isEmpty)
        let daily = try! Schedule("0 3 * * *")
        let days = DueRuns.runs(of: task(catchUp: true), schedule: daily, lastRun: Self.at("03:00:00").addingTimeInterval(-5 * 86_400),
                                now: Self.at("10:00:00"))
        #expect(days == [Self.at("03:00:00")], "five missed days are one run")
    }

    @Test("a new task starts with its first run after it was added; a changed schedule counts from the change")
    func fromTheChange() {
        #expect(DueRuns.runs(of: task(changedAt: "10:02:30"), schedule: Self.minutely, lastRun: nil, now: Self.at("10:02:50")).isEmpty)
        #expect(DueRuns.runs(of: task(changedAt: "10:02:30"), schedule: Self.minutely, lastRun: nil, now: Self.at("10:03:01"))
                == [Self.at("10:03:00")])
        // The old schedule ran at 10:00; the new one, from 10:02:30, runs at 10:03, not at 10:01 or 10:02.
        #expect(DueRuns.runs(of: task(changedAt: "10:02:30"), schedule: Self.minutely, lastRun: Self.at("10:00:00"),
                             now: Self.at("10:03:05")) == [Self.at("10:03:00")])
        // A catch-up task whose schedule changed does not catch up runs of the old schedule.
        #expect(DueRuns.runs(of: task(catchUp: true, changedAt: "10:02:30"), schedule: Self.minutely, lastRun: Self.at("09:00:00"),
                             now: Self.at("10:03:05")) == [Self.at("10:03:00")])
    }
}
