import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover enqueue`: puts one job into a queue.
struct EnqueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Put a job into a queue and print its id.",
        discussion: """
            The job runs as soon as a worker takes it, or at --at / after --in. Queue names are 1 to 100 \
            letters, digits and _ . : - (starting with a letter, digit or _); class names 1 to 200 of the \
            same (starting with a letter or _). Arguments are a JSON object or array of at most 1 MiB.
            """
    )

    @Argument(help: ArgumentHelp(
        "The job's class: a handler's name in the configuration, or a Swift Job type's name.", valueName: "class"))
    var className: String

    @Option(name: .customLong("args"), help: ArgumentHelp(
        "The job's arguments, a JSON object or array (default: {}).", valueName: "json"))
    var arguments: String?

    @Option(help: ArgumentHelp("The queue (default: default).", valueName: "name"))
    var queue: String = JobRules.defaultQueue

    // Unconditional, so that a negative priority is not taken for an option.
    @Option(parsing: .unconditional, help: ArgumentHelp("Lower runs first, from -32768 to 32767.", valueName: "n"))
    var priority: Int = 0

    @Option(help: ArgumentHelp("Run at this time: \(TimeArgument.examples).", valueName: "time"))
    var at: String?

    @Option(name: .customLong("in"), help: ArgumentHelp("Run after this long: \(DurationText.examples).", valueName: "duration"))
    var delay: String?

    @Option(name: .customLong("max-attempts"), help: ArgumentHelp(
        "How many times the job may run before it fails for good, from 1 to 1000.", valueName: "n"))
    var maxAttempts: Int = JobRules.defaultMaxAttempts

    @Option(help: ArgumentHelp(
        "Stop an attempt that runs longer than this (\(DurationText.examples); from 1s to 7d) and fail it with a "
            + "timeout error; overrides the handler's timeout.", valueName: "duration"))
    var timeout: String?

    @Option(name: .customLong("unique-key"), help: ArgumentHelp(
        "While a live job (scheduled, ready, running or blocked) has this key, print that job's id instead of "
            + "enqueueing another.", valueName: "key"))
    var uniqueKey: String?

    @Flag(help: "Print the job as JSON instead of its id.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        _ = try job()
    }

    /// The job the options describe; a ValidationError (exit 64) says what is wrong with them.
    private func job() throws -> NewJob {
        var args = JSON.emptyObject
        if let arguments {
            do {
                args = try JSON(validating: arguments)
            } catch {
                throw ValidationError("--args is \(error.message); for example --args '{\"id\": 42}'")
            }
        }
        var runAt: Date? = nil
        switch (at, delay) {
        case (.some, .some):
            throw ValidationError("give --at or --in, not both")
        case (.some(let text), nil):
            guard let date = TimeArgument.parse(text) else {
                throw ValidationError("--at \"\(text)\" is not a time; use \(TimeArgument.examples)")
            }
            guard JobRules.runAtRange.contains(date) else {
                throw ValidationError("--at \"\(text)\" is outside the times a job can run at: give one from \(TimeArgument.range)")
            }
            runAt = date
        case (nil, .some(let text)):
            guard let duration = DurationText.parse(text), duration >= .zero else {
                throw ValidationError("--in \"\(text)\" is not a duration; use \(DurationText.examples)")
            }
            let date = Date().addingTimeInterval(duration.seconds)
            guard JobRules.runAtRange.contains(date) else {
                throw ValidationError("--in \"\(text)\" is later than the last time a job can run at, \(TimeArgument.range.split(separator: " ").last!)")
            }
            runAt = date
        case (nil, nil):
            break
        }
        var limit: Duration? = nil
        if let timeout {
            guard let duration = DurationText.parse(timeout), JobRules.timeoutRange.contains(duration) else {
                throw ValidationError("--timeout \"\(timeout)\" is not a duration from 1s to 7d; use \(DurationText.examples)")
            }
            limit = duration
        }
        return NewJob(
            className, arguments: args, queue: queue, priority: priority, runAt: runAt, maxAttempts: maxAttempts, timeout: limit,
            uniqueKey: uniqueKey)
    }

    func run() throws {
        let job = try job()
        try database.withQueue { queue in
            let id = try queue.enqueue([job])[0]
            if json {
                let info = try queue.job(id)
                try print(info.map { try JobJSON($0).text() } ?? jsonText(["id": id]))
            } else {
                print(id)
            }
        }
    }
}
