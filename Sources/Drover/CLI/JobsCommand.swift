import ArgumentParser
import DroverPersistence
import DroverQueue
import Foundation

/// `drover jobs`: look at jobs.
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List jobs, show one, cancel one.",
        subcommands: [JobsList.self, JobsShow.self, JobsCancel.self]
    )
}

/// Options that pick jobs out of a listing.
struct JobFilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only jobs of this queue.", valueName: "name"))
    var queue: String?

    @Option(name: .customLong("class"), help: ArgumentHelp("Only jobs of this class.", valueName: "class"))
    var className: String?

    @Option(help: ArgumentHelp("Show at most this many jobs, newest first.", valueName: "n"))
    var limit: Int = 50

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }
}

struct JobsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")

    @Option(help: ArgumentHelp(
        "Only jobs in this state: \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "state"))
    var state: String?

    @OptionGroup var filter: JobFilterOptions
    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if let state, JobState(rawValue: state) == nil {
            throw ValidationError(
                "--state \"\(state)\" is not a state; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        try database.withQueue { queue in
            let jobs = try queue.listJobs(
                queue: filter.queue, state: state.flatMap(JobState.init(rawValue:)), className: filter.className,
                limit: filter.limit)
            try printJobs(jobs, json: filter.json)
        }
    }
}

/// Prints a listing as a table (with a line on each job's situation) or as a JSON array.
func printJobs(_ jobs: [JobInfo], json: Bool) throws {
    if json {
        print("[" + (try jobs.map { try JobJSON($0).text() }).joined(separator: ",") + "]")
        return
    }
    guard !jobs.isEmpty else {
        print("No jobs.")
        return
    }
    var table = Table("ID", "QUEUE", "CLASS", "STATE", "PRIORITY", "ATTEMPTS", "CREATED", "DETAIL")
    for job in jobs {
        table.add(
            String(job.id), job.queue, job.className, job.state.rawValue, String(job.priority),
            "\(job.attempts)/\(job.maxAttempts)", formatTime(job.createdAt), detail(job))
    }
    print(table.render())
}

/// What a person wants to know about a job in its state.
private func detail(_ job: JobInfo) -> String {
    switch job.state {
    case .scheduled: return "runs at \(formatTime(job.nextRunAt))"
    case .claimed: return job.claimedBy.map { "running in process \($0)" } ?? "running"
    case .finished: return "finished at \(formatTime(job.finishedAt))"
    case .failed: return job.lastError.map { oneLine("\($0.errorClass): \($0.message)") } ?? ""
    case .ready, .blocked: return job.lastError.map { oneLine("last error: \($0.message)") } ?? ""
    }
}

struct JobsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one job, with its arguments and last error.")

    @Argument(help: "The job's id.")
    var id: Int

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws { try JobID.check([id]) }

    func run() throws {
        try database.withQueue { queue in
            guard let job = try queue.job(id) else {
                throw QueueError(.jobNotFound, "no job with id \(id)", jobIDs: [id])
            }
            if json {
                print(try JobJSON(job).text())
                return
            }
            var lines: [(String, String)] = [
                ("id", String(job.id)), ("class", job.className), ("queue", job.queue), ("state", job.state.rawValue),
                ("priority", String(job.priority)), ("attempts", "\(job.attempts) failed of \(job.maxAttempts)"),
                ("crashes", String(job.crashes)), ("created", formatTime(job.createdAt)),
            ]
            if let next = job.nextRunAt { lines.append(("next run", formatTime(next))) }
            if let process = job.claimedBy { lines.append(("running in", "process \(process)")) }
            if let finished = job.finishedAt { lines.append(("finished", formatTime(finished))) }
            if let failed = job.failedAt { lines.append(("failed", formatTime(failed))) }
            if let error = job.lastError {
                var text = "\(error.errorClass): \(error.message)"
                if let status = error.exitStatus { text += " (exit status \(status))" }
                if let signal = error.signal { text += " (signal \(signal))" }
                lines.append(("last error", text))
            }
            lines.append(("arguments", job.arguments?.text ?? "{}"))
            for (key, value) in lines { print((key + ":").padding(toLength: 12, withPad: " ", startingAt: 0) + value) }
            if let output = job.lastError?.output, !output.isEmpty {
                print("output (end):")
                for line in output.split(separator: "\n", omittingEmptySubsequences: false) { print("  " + line) }
            }
        }
    }
}

struct JobsCancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a job: delete it if it waits, stop it if it runs.",
        discussion: """
            A ready, scheduled or blocked job is deleted at once. A running job's worker is asked to \
            stop it (a command gets TERM, then KILL after its handler's grace_period; a Swift job's \
            task is cancelled); it then fails with the error class Cancelled and is not retried. A \
            finished or failed job cannot be cancelled (exit 65); discard a failed one with \
            drover failed discard.
            """)

    @Argument(help: "The job's id.")
    var id: Int

    @Flag(help: "Print JSON for programs instead of a sentence for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws { try JobID.check([id]) }

    private struct Outcome: Encodable {
        let id: Int
        let outcome: String
        let was: String?
        let process: Int?
    }

    func run() throws {
        try database.withQueue { queue in
            switch try queue.cancel(id) {
            case .discarded(let state):
                print(json ? try jsonText(Outcome(id: id, outcome: "discarded", was: state.rawValue, process: nil))
                           : "Job \(id) was \(state.rawValue); it is deleted.")
            case .requested(let processID):
                print(json ? try jsonText(Outcome(id: id, outcome: "stopping", was: nil, process: processID))
                           : "Job \(id) is running in process \(processID); its worker was asked to stop it. "
                                + "It will fail as Cancelled (see drover jobs show \(id)).")
            }
        }
    }
}
