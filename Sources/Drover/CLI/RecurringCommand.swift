import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover recurring`: tasks that enqueue a job on a schedule.
struct RecurringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recurring",
        abstract: "List recurring tasks; add or remove one at run time.",
        discussion: """
            Tasks come from the configuration's recurring: section (static: replaced at every start and \
            reload) or are added at run time with drover recurring add. A scheduler process enqueues each \
            run once across every host. Schedules: 5-field cron (minute hour day-of-month month \
            day-of-week), 6 fields with seconds first, @hourly, @daily, @weekly, @monthly, @yearly, or \
            every 5m; times are in the task's time zone (default UTC). When the clocks change, a schedule \
            that runs in every hour (*/15 * * * *, @hourly) keeps its interval in real time, and one with \
            chosen hours (30 2 * * *) runs each of its times once a day; drover.yml(5) has the details. A \
            schedule that can never run (0 0 30 2 *) is refused.
            """,
        subcommands: [RecurringList.self, RecurringAdd.self, RecurringRemove.self]
    )
}

struct RecurringList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List recurring tasks with their next run and their last run's job.")

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct TaskJSON: Encodable {
        let key, schedule, timeZone, className: String
        let arguments: JSON
        let queue: String
        let priority: Int
        let catchUp, isStatic: Bool
        let description: String?
        let nextRunAt, lastRunAt: Date?
        let lastJobID: Int?
        let lastJobState: String?
        /// Why the schedule cannot be read, if it cannot.
        let error: String?

        enum CodingKeys: String, CodingKey {
            case key, schedule, queue, priority, description, error
            case timeZone = "time_zone", className = "class", catchUp = "catch_up", isStatic = "static"
            case nextRunAt = "next_run_at", lastRunAt = "last_run_at", lastJobID = "last_job_id", lastJobState = "last_job_state"
        }

        /// The task as one JSON object; `arguments` is the stored document as it is.
        func text() throws -> String {
            // Keys are sorted, so "arguments" goes first.
            "{\"arguments\":" + arguments.text + "," + (try jsonText(self)).dropFirst()
        }
    }

    func run() throws {
        try database.withQueue { queue in
            let tasks = try queue.listTasks()
            let now = Date()
            let rows = tasks.map { info -> TaskJSON in
                let task = info.task
                var next: Date? = nil
                var problem: String? = nil
                do {
                    let schedule = try Schedule(task.schedule, timeZone: task.timeZone)
                    next = schedule.next(after: max(now, info.lastRunAt ?? now))
                } catch {
                    problem = "\(error)"
                }
                return TaskJSON(
                    key: task.key, schedule: task.schedule, timeZone: task.timeZone, className: task.className,
                    arguments: task.arguments, queue: task.queue ?? JobRules.defaultQueue, priority: task.priority ?? 0,
                    catchUp: task.catchUp, isStatic: task.isStatic, description: task.description, nextRunAt: next,
                    lastRunAt: info.lastRunAt, lastJobID: info.lastJobID, lastJobState: info.lastJobState?.rawValue, error: problem)
            }
            if json {
                print("[" + (try rows.map { try $0.text() }).joined(separator: ",") + "]")
                return
            }
            guard !rows.isEmpty else { return print("No recurring tasks.") }
            var table = Table("TASK", "SCHEDULE", "TIME ZONE", "CLASS", "QUEUE", "NEXT RUN", "LAST RUN", "LAST JOB", "FROM")
            for row in rows {
                let lastJob = row.lastJobID.map { "\($0) (\(row.lastJobState ?? "deleted"))" } ?? ""
                table.add(row.key, row.schedule, row.timeZone, row.className, row.queue,
                          row.error.map { "never: \($0)" } ?? formatTime(row.nextRunAt), formatTime(row.lastRunAt), lastJob,
                          row.isStatic ? "config" : "added")
            }
            print(table.render())
        }
    }
}

struct RecurringAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a recurring task at run time, or replace one added earlier.",
        discussion: "Tasks of the configuration file cannot be replaced here: change the file and reload.")

    @Argument(help: "The task's name, unique (1 to 200 characters, no spaces).")
    var key: String

    @Option(name: .customLong("class"), help: ArgumentHelp("The job class to enqueue.", valueName: "class"))
    var className: String

    @Option(help: ArgumentHelp("When it runs: \"0 3 * * *\", \"*/10 * * * * *\", @daily, every 5m, …", valueName: "schedule"))
    var schedule: String

    @Option(name: .customLong("time-zone"), help: ArgumentHelp("The schedule's IANA time zone (default: UTC).", valueName: "zone"))
    var timeZone = "UTC"

    @Option(name: .customLong("args"), help: ArgumentHelp("The jobs' arguments, a JSON object or array.", valueName: "json"))
    var arguments: String?

    @Option(help: ArgumentHelp("The queue (default: default).", valueName: "name"))
    var queue: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Lower runs first.", valueName: "n"))
    var priority: Int?

    @Flag(name: .customLong("catch-up"), help: "After an outage, enqueue the latest missed run once (default: skip missed runs).")
    var catchUp = false

    @Option(help: ArgumentHelp("What the task is for.", valueName: "text"))
    var description: String?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        do {
            _ = try Schedule(schedule, timeZone: timeZone)
        } catch {
            throw ValidationError(error.description)
        }
        if let arguments {
            do { _ = try JSON(validating: arguments) } catch { throw ValidationError("--args is \(error.message)") }
        }
    }

    func run() throws {
        let args = try arguments.map { try JSON(validating: $0) } ?? .emptyObject
        let task = RecurringTask(
            key: key, schedule: schedule, timeZone: timeZone, className: className, arguments: args, queue: queue,
            priority: priority, catchUp: catchUp, description: description)
        try database.withQueue { queue in
            try queue.addTask(task)
            let next = (try? Schedule(schedule, timeZone: timeZone))?.next(after: Date())
            print("Recurring task \(key) runs \(className) on \"\(schedule)\" (\(timeZone)); next run \(formatTime(next)).")
            if try queue.listProcesses().contains(where: { $0.kind == .scheduler }) { return }
            printError("drover: note: no scheduler is running yet; a running supervisor starts one within alive_threshold / 2")
        }
    }
}

struct RecurringRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a recurring task added at run time (its past jobs stay).")

    @Argument(help: "The task's name.")
    var key: String

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            try queue.removeTask(key)
            print("Recurring task \(key) is removed.")
        }
    }
}
