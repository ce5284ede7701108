import DroverQueue
import Foundation

/// Which runs of a recurring task to enqueue now: pure logic, so that every scheduler on every
/// host computes the same run times (the database then keeps each one to a single job).
enum DueRuns {
    /// A run later than this is missed (everything was down): skipped, or caught up once.
    static let lateness: TimeInterval = 60

    /// The runs of `task` (whose schedule is `schedule`) due at `now`, oldest first, given the last
    /// run recorded for it. Runs follow the schedule in force since `scheduleChangedAt`; runs in
    /// the last minute are due; older ones were missed, and with `catch_up` the latest missed run
    /// is enqueued once.
    static func runs(of task: RecurringTask, schedule: Schedule, lastRun: Date?, now: Date) -> [Date] {
        let since = max(lastRun ?? .distantPast, task.scheduleChangedAt)
        let floor = now.addingTimeInterval(-lateness)
        var runs: [Date] = []
        if task.catchUp, since < floor, let missed = latest(schedule, after: since, through: floor) {
            runs.append(missed)
        }
        runs += schedule.runs(after: max(since, floor), through: now)
        return runs
    }

    /// The latest run in `(after, through]`.
    static func latest(_ schedule: Schedule, after: Date, through: Date) -> Date? {
        var latest: Date? = nil
        var cursor = after
        // A task down for long on a fast schedule: look at the last day of runs only.
        if through.timeIntervalSince(after) > 86_400, let step = schedule.next(after: after),
           let following = schedule.next(after: step), following.timeIntervalSince(step) < 60 {
            cursor = through.addingTimeInterval(-86_400)
        }
        for _ in 0..<1_000_000 {
            guard let run = schedule.next(after: cursor), run <= through else { return latest }
            latest = run
            cursor = run
        }
        return latest
    }
}
