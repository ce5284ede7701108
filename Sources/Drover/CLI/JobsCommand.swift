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

struct JobsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List jobs, newest first.",
        discussion: "Every condition given must hold; the same filters select jobs for jobs cancel and failed list|retry|discard.")

    @Option(help: ArgumentHelp(
        "Only jobs in this state: \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "state"))
    var state: String?

    @OptionGroup var filter: JobFilterOptions
    @OptionGroup var listing: ListingOptions
    @OptionGroup var database: DatabaseOptions

    func validate() throws { _ = try parseState(state) }

    func run() throws {
        let filter = try filter.filter(state: parseState(state))
        try database.withQueue { queue in
            try printJobs(queue.findJobs(filter, before: nil, limit: listing.limit).jobs, json: listing.json)
        }
    }
}

/// `--state`'s value, checked (exit 64 names the states).
func parseState(_ text: String?) throws -> JobState? {
    guard let text else { return nil }
    guard let state = JobState(rawValue: text) else {
        throw ValidationError("--state \"\(text)\" is not a state; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return state
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
    case .waiting: return "waits for the jobs it depends on"
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
            let rateLimited = job.state == .scheduled ? try queue.rateLimitWait(of: id) : nil
            let dependencies = try queue.dependencies(of: id)
            let dependants = try queue.dependants(of: id)
            if json {
                var shown = JobJSON(job)
                shown.rateLimit = rateLimited.map { RateLimitWaitJSON(key: $0.key, until: $0.until) }
                if !dependencies.isEmpty { shown.after = dependencies.map { DependencyJSON(jobID: $0.jobID, outcome: $0.outcome?.rawValue) } }
                if !dependants.isEmpty { shown.dependants = dependants }
                print(try shown.text())
                return
            }
            var lines: [(String, String)] = [
                ("id", String(job.id)), ("class", job.className), ("queue", job.queue), ("state", job.state.rawValue),
                ("priority", String(job.priority)), ("attempts", "\(job.attempts) failed of \(job.maxAttempts)"),
                ("crashes", String(job.crashes)), ("created", formatTime(job.createdAt)),
            ]
            if job.snoozes > 0 { lines.insert(("snoozes", String(job.snoozes)), at: 7) }
            if let next = job.nextRunAt { lines.append(("next run", formatTime(next))) }
            if let wait = rateLimited { lines.append(("waits for", "its start under the rate limit of key \(wait.key)")) }
            if let batch = job.batchID { lines.append(("batch", String(batch))) }
            if !dependencies.isEmpty {
                let open = dependencies.filter { $0.outcome == nil }.map { String($0.jobID) }
                if job.state == .waiting && !open.isEmpty { lines.append(("waits for", "job\(open.count == 1 ? "" : "s") \(open.joined(separator: ", ")) to end")) }
                lines.append(("after", dependencies.map { "\($0.jobID) (\($0.outcome?.rawValue ?? "not ended"))" }.joined(separator: ", ")))
            }
            if !dependants.isEmpty { lines.append(("dependants", dependants.map(String.init).joined(separator: ", "))) }
            if let process = job.claimedBy { lines.append(("running in", "process \(process)")) }
            if let finished = job.finishedAt { lines.append(("finished", formatTime(finished))) }
            if let failed = job.failedAt { lines.append(("failed", formatTime(failed))) }
            if let error = job.lastError {
                var text = "\(error.errorClass): \(error.message)"
                if let status = error.exitStatus { text += " (exit status \(status))" }
                if let signal = error.signal { text += " (signal \(signal))" }
                lines.append(("last error", text))
                if let delay = error.retryIn {
                    // The delay the retry policy computed after that error (scheduled_at is "next run").
                    let policy = error.backoff.map { " (\($0))" } ?? ""
                    lines.append(("retried in", DurationText.format(.milliseconds(Int64((delay * 1000).rounded()))) + policy))
                }
            }
            lines.append(("arguments", job.arguments?.text ?? "{}"))
            if let result = job.result { lines.append(("result", result.text)) }
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
        abstract: "Cancel a job, or every job a filter matches: delete it if it waits, stop it if it runs.",
        discussion: """
            A ready, scheduled, blocked or waiting job is deleted at once. A running job's worker is asked to \
            stop it (a command gets TERM, then KILL after its handler's grace_period; a Swift job's \
            task is cancelled); it then fails with the error class Cancelled and is not retried. A \
            finished or failed job cannot be cancelled (exit 65); discard a failed one with \
            drover failed discard.

            Without an id, every job the filters match is cancelled, --batch-size at a time (at least \
            one filter, or --all for every waiting and running job); jobs that finished or failed \
            meanwhile are skipped. --dry-run prints the count and the newest of them instead.
            """)

    @Argument(help: "The job's id.")
    var id: Int?

    @Option(help: ArgumentHelp("With filters: only jobs in this state: ready, scheduled, blocked, waiting or claimed.", valueName: "state"))
    var state: String?

    @Flag(help: "Every waiting and running job (instead of an id or filters).")
    var all = false

    @OptionGroup var filter: JobFilterOptions
    @OptionGroup var bulk: BulkOptions

    @Flag(help: "Print JSON for programs instead of a sentence for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if let id {
            try JobID.check([id])
            guard filter.isEmpty && state == nil && !all && !bulk.dryRun else {
                throw ValidationError("give a job id or filters (or --all), not both")
            }
            return
        }
        guard !filter.isEmpty || state != nil || all else {
            throw ValidationError("name the job by id, or select jobs with filters (--queue, --class, --state, …) or --all")
        }
        guard !(all && (!filter.isEmpty || state != nil)) else { throw ValidationError("give filters or --all, not both") }
        if let state = try parseState(state), !BulkAction.cancel.states.contains(state) {
            throw ValidationError("--state \(state.rawValue): only ready, scheduled, blocked, waiting or claimed jobs can be cancelled")
        }
    }

    private struct Outcome: Encodable {
        let id: Int
        let outcome: String
        let was: String?
        let process: Int?
    }

    func run() throws {
        guard let id else {
            let selected = try filter.filter(state: parseState(state))
            return try database.withQueue { queue in
                try runBulk(.cancel, verb: "cancel", filter: selected, described: filter.description, options: bulk, json: json, on: queue)
            }
        }
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
