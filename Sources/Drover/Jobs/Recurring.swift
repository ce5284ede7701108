import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// A schedule could not be read: says which part is wrong.
public typealias ScheduleError = Schedule.ParseError

extension JobDatabase {
    /// Adds a recurring task at run time (or replaces one added earlier under `key`): `job` is
    /// enqueued on `schedule` in `timeZone`, each run once across every scheduler.
    ///
    /// ```swift
    /// try db.addRecurringTask("cleanup", schedule: "*/10 * * * *", job: PurgeSessions())
    /// try db.addRecurringTask("report", schedule: "0 7 * * MON-FRI", timeZone: "Europe/Berlin",
    ///                         job: SendReport(kind: "daily"), catchUp: true)
    /// ```
    ///
    /// - Throws: ``ScheduleError`` for a schedule or time zone that cannot be read; `QueueError`
    ///   `staticTask` when the configuration file defines `key`.
    public func addRecurringTask<J: Job>(
        _ key: String, schedule: String, timeZone: String = "UTC", job: J, queue: String? = nil, priority: Int? = nil,
        catchUp: Bool = false, description: String? = nil, schema: String = DroverSchema.defaultName
    ) throws {
        _ = try Schedule(schedule, timeZone: timeZone)
        let task = RecurringTask(
            key: key, schedule: schedule, timeZone: timeZone, className: J.className, arguments: try JSON(encoding: job),
            queue: queue ?? J.queue, priority: priority ?? J.priority, catchUp: catchUp, description: description)
        try Self.store(schema: schema).addTask(task, on: self)
    }

    /// Removes a recurring task added at run time.
    public func removeRecurringTask(_ key: String, schema: String = DroverSchema.defaultName) throws {
        try Self.store(schema: schema).removeTask(key, on: self)
    }
}
