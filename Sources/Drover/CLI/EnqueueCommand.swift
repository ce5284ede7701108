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
            same (starting with a letter or _). Arguments are a JSON object or array of at most 1 MiB: \
            --args - reads them from standard input, --args @FILE from a file.

            --jsonl FILE (or - for standard input) enqueues one job per line, a JSON object with the keys \
            of the SQL function enqueue_many: class, arguments, queue, priority, run_at, max_attempts, \
            timeout (seconds), unique_key and trace_context, and after (job ids), run_after_failure and batch; the command's class and options are the defaults for what \
            a line leaves out. Lines go in batches of --batch-size, each one transaction. A batch with a \
            bad line is not written: every bad line of it is reported with its number, and the command \
            stops (exit 64) after saying which lines were enqueued. With --skip-bad, bad lines are \
            reported and skipped and the rest enqueued. It prints the ids, one a line.

            --after ID (again for each) makes the job wait until those jobs finished: it is waiting, \
            then ready. If one of them fails for good or is cancelled, it fails too, unless \
            --run-after-failure. A job that waits takes a JSON object as arguments: what became of the \
            jobs it waited for, with their results, is added under drover_dependencies. --batch ID adds \
            the job to an open batch (see drover batches).
            """
    )

    @Argument(help: ArgumentHelp(
        "The job's class: a handler's name in the configuration, or a Swift Job type's name (with --jsonl, the class "
            + "of lines that name none).", valueName: "class"))
    var className: String?

    @Option(name: .customLong("args"), help: ArgumentHelp(
        "The job's arguments, a JSON object or array (default: {}); - reads them from standard input, @FILE from FILE.",
        valueName: "json"))
    var arguments: String?

    @Option(help: ArgumentHelp(
        "Enqueue one job per line of FILE (- for standard input), each a JSON object such as "
            + "{\"class\": \"SendReport\", \"arguments\": {\"id\": 1}}.", valueName: "file"))
    var jsonl: String?

    @Option(name: .customLong("batch-size"), help: ArgumentHelp(
        "With --jsonl: lines per transaction, from 1 to 10000.", valueName: "n"))
    var batchSize: Int = 1000

    @Flag(name: .customLong("skip-bad"), help: "With --jsonl: skip bad lines (each reported) instead of stopping at the first batch with one.")
    var skipBad = false

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

    @Option(help: ArgumentHelp("Wait until this job finished (give it again for each job to wait for).", valueName: "id"))
    var after: [Int] = []

    @Flag(name: .customLong("run-after-failure"), help: "With --after: run once those jobs ended, even if one failed.")
    var runAfterFailure = false

    @Option(help: ArgumentHelp("Add the job to this open batch.", valueName: "id"))
    var batch: Int?

    @Flag(help: "Print the job as JSON instead of its id.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if jsonl != nil {
            guard arguments == nil else {
                throw ValidationError("--args and --jsonl do not go together: give each line its \"arguments\"")
            }
            guard (1...10_000).contains(batchSize) else {
                throw ValidationError("--batch-size \(batchSize) is not from 1 to 10000")
            }
            _ = try job(arguments: .emptyObject)
        } else {
            guard !skipBad else { throw ValidationError("--skip-bad goes with --jsonl") }
            guard className != nil else {
                throw ValidationError("give the job's class, as in: drover enqueue SendReport --args '{\"id\": 42}'")
            }
            // Arguments from a file or standard input are read (and checked) when the command runs.
            if let arguments, arguments != "-", !arguments.hasPrefix("@") { _ = try job(arguments: try Self.json(arguments)) }
        }
    }

    /// `text` as the job's arguments; a ValidationError (exit 64) says what is wrong with it.
    private static func json(_ text: String, from source: String = "--args") throws -> JSON {
        do {
            return try JSON(validating: text.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw ValidationError("\(source) is \(error.message); for example --args '{\"id\": 42}'")
        }
    }

    /// The arguments --args gives: its text, standard input (-) or a file (@FILE).
    private func readArguments() throws -> JSON {
        guard let arguments else { return .emptyObject }
        if arguments == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let text = String(validating: data, as: UTF8.self) else {
                throw ValidationError("--args -: standard input is not UTF-8 text")
            }
            return try Self.json(text, from: "--args - (standard input)")
        }
        if arguments.hasPrefix("@") {
            let path = String(arguments.dropFirst())
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ValidationError("--args @\(path): cannot read the file (\((error as NSError).localizedFailureReason ?? "\(error)"))")
            }
            guard let text = String(validating: data, as: UTF8.self) else { throw ValidationError("--args @\(path): the file is not UTF-8 text") }
            return try Self.json(text, from: "--args @\(path)")
        }
        return try Self.json(arguments)
    }

    /// The job the options describe; a ValidationError (exit 64) says what is wrong with them.
    /// With --jsonl the class may be missing (empty): lines give their own.
    private func job(arguments args: JSON) throws -> NewJob {
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
        // The store checks the rest (names, ranges) and says what is wrong (exit 64).
        if runAfterFailure && after.isEmpty { throw ValidationError("--run-after-failure goes with --after") }
        try JobID.check(after)
        if let batch, batch < 1 { throw ValidationError("--batch \(batch) is out of range: batch ids are whole numbers from 1") }
        return NewJob(
            className ?? "", arguments: args, queue: queue, priority: priority, runAt: runAt, maxAttempts: maxAttempts, timeout: limit,
            uniqueKey: uniqueKey, after: after, runAfterFailure: runAfterFailure, batchID: batch)
    }

    func run() throws {
        if let jsonl {
            let defaults = try job(arguments: .emptyObject)
            var reader = try LineReader(path: jsonl)  // a missing file is bad usage, before any database
            return try database.withQueue { queue in try enqueueLines(from: &reader, defaults: defaults, into: queue) }
        }
        let job = try job(arguments: try readArguments())
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
