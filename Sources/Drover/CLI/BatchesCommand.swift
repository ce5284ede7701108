import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover batches`: groups of jobs with callbacks.
struct BatchesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batches",
        abstract: "Enqueue, list and show batches: groups of jobs with callbacks when they are done.",
        discussion: """
            A batch is a group of jobs enqueued together. When its first job fails for good (or is \
            cancelled or discarded), its on_failure class is enqueued; when none is left to run, \
            on_complete, and on_success if none failed. Each callback is enqueued exactly once, in the \
            transaction of the change that makes it due, with the arguments batch_id, event (success, \
            complete or failure), description, total, finished, failed, pending and, for failure, \
            failed_job_id. A job of the batch may add jobs to it while it runs (drover enqueue --batch \
            $DROVER_BATCH_ID, or batch: in the Swift API); a complete batch takes no more.
            """,
        subcommands: [BatchesList.self, BatchesShow.self, BatchesEnqueue.self],
        defaultSubcommand: BatchesList.self
    )
}

struct BatchJSON: Encodable {
    let id: Int
    let description: String?
    let onSuccess, onComplete, onFailure: String?
    let callbackQueue: String
    let total, pending, finished, failed: Int
    let successJobID, completeJobID, failureJobID: Int?
    let completedAt: Date?
    let createdAt: Date
    var states: [String: Int]?

    init(_ batch: BatchInfo) {
        id = batch.id
        description = batch.description
        onSuccess = batch.onSuccess
        onComplete = batch.onComplete
        onFailure = batch.onFailure
        callbackQueue = batch.callbackQueue
        total = batch.total
        pending = batch.pending
        finished = batch.finished
        failed = batch.failed
        successJobID = batch.successJobID
        completeJobID = batch.completeJobID
        failureJobID = batch.failureJobID
        completedAt = batch.completedAt
        createdAt = batch.createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, description, onSuccess = "on_success", onComplete = "on_complete", onFailure = "on_failure"
        case callbackQueue = "callback_queue", total, pending, finished, failed
        case successJobID = "success_job_id", completeJobID = "complete_job_id", failureJobID = "failure_job_id"
        case completedAt = "completed_at", createdAt = "created_at", states
    }
}

/// A job of a batch; its result is spliced in as stored (see `text`).
struct BatchJobJSON: Encodable {
    let id: Int
    let className: String
    let state: String
    enum CodingKeys: String, CodingKey { case id, className = "class", state }

    static func text(_ job: BatchJob) throws -> String {
        let encoded = try jsonText(BatchJobJSON(id: job.id, className: job.className, state: job.state.rawValue))
        guard let result = job.result else { return encoded }
        return "{\"result\":" + result.text + "," + encoded.dropFirst()
    }
}

struct BatchesList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List batches, newest first, with their counts.")

    @Option(help: ArgumentHelp("At most this many.", valueName: "n"))
    var limit: Int = 50

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit \(limit) is out of range: give 0 or more") }
    }

    func run() throws {
        try database.withQueue { queue in
            let batches = try queue.listBatches(before: nil, limit: limit)
            if json { return try printJSON(batches.map(BatchJSON.init)) }
            guard !batches.isEmpty else { return print("No batches.") }
            var table = Table("ID", "TOTAL", "PENDING", "FINISHED", "FAILED", "COMPLETED", "DESCRIPTION")
            for batch in batches {
                table.add(String(batch.id), String(batch.total), String(batch.pending), String(batch.finished), String(batch.failed),
                          batch.completedAt == nil ? "-" : formatTime(batch.completedAt), oneLine(batch.description ?? ""))
            }
            print(table.render())
        }
    }
}

struct BatchesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a batch: its counts, its jobs by state, its callbacks.",
        discussion: "With --jobs, also each job with its state and result (--json: as stored).")

    @Argument(help: "The batch's id.")
    var id: Int

    @Flag(help: "Also list the batch's jobs, their states and results.")
    var jobs = false

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard id >= 1 else { throw ValidationError("batch id \(id) is out of range: ids are whole numbers from 1") }
    }

    func run() throws {
        try database.withQueue { queue in
            guard let batch = try queue.batch(id) else {
                throw QueueError(.jobNotFound, "no batch with id \(id)")
            }
            let states = try queue.batchStates(id)
            var members: [BatchJob] = []
            if jobs {
                var after = 0
                while true {
                    let page = try queue.batchJobs(id, after: after, limit: 1000)
                    members += page
                    guard page.count == 1000, let last = page.last else { break }
                    after = last.id
                }
            }
            if json {
                var shown = BatchJSON(batch)
                shown.states = Dictionary(uniqueKeysWithValues: states.map { ($0.key.rawValue, $0.value) })
                let encoded = try jsonText(shown)
                guard jobs else { return print(encoded) }
                return print("{\"jobs\":[" + (try members.map(BatchJobJSON.text).joined(separator: ",")) + "]," + encoded.dropFirst())
            }
            var lines: [(String, String)] = [
                ("id", String(batch.id)), ("total", String(batch.total)), ("pending", String(batch.pending)),
                ("finished", String(batch.finished)), ("failed", String(batch.failed)), ("created", formatTime(batch.createdAt)),
            ]
            if let description = batch.description { lines.insert(("description", oneLine(description)), at: 1) }
            lines.append(("completed", batch.completedAt.map { formatTime($0) } ?? "not yet"))
            let byState = JobState.allCases.compactMap { state in states[state].map { "\($0) \(state.rawValue)" } }
            lines.append(("jobs", byState.isEmpty ? "none kept" : byState.joined(separator: ", ")))
            for (name, className, jobID) in [("on_success", batch.onSuccess, batch.successJobID),
                                             ("on_complete", batch.onComplete, batch.completeJobID),
                                             ("on_failure", batch.onFailure, batch.failureJobID)] {
                guard let className else { continue }
                lines.append((name, className + (jobID.map { " (enqueued: job \($0))" } ?? " (not enqueued)")))
            }
            if batch.callbackQueue != JobRules.defaultQueue { lines.append(("callbacks in", batch.callbackQueue)) }
            for (key, value) in lines { print((key + ":").padding(toLength: 13, withPad: " ", startingAt: 0) + value) }
            if jobs {
                var table = Table("JOB", "CLASS", "STATE", "RESULT")
                for job in members { table.add(String(job.id), job.className, job.state.rawValue, oneLine(job.result?.text ?? "")) }
                print("")
                print(table.render())
            }
        }
    }
}

struct BatchesEnqueue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue the jobs of a JSON lines file (or standard input) as one batch, all or nothing.",
        discussion: """
            Each line is a JSON object with the keys of drover enqueue --jsonl (class, arguments, queue, \
            priority, run_at, max_attempts, timeout, unique_key, trace_context, after, run_after_failure), \
            and after_lines: lines of the same file it waits for, by number (a fan-in). The command's class \
            and options are the defaults for what a line leaves out. Every line is checked first: one bad \
            line and nothing is written (each is reported with its number; exit 64). Prints the batch's id \
            on the first line, then the jobs' ids, one a line (--json: an object).
            """)

    @Argument(help: ArgumentHelp("The class of lines that name none.", valueName: "class"))
    var className: String?

    @Option(help: ArgumentHelp("The jobs, one JSON object a line (- for standard input).", valueName: "file"))
    var jsonl: String

    @Option(name: .customLong("on-success"), help: ArgumentHelp("Enqueue a job of this class once every job finished.", valueName: "class"))
    var onSuccess: String?

    @Option(name: .customLong("on-complete"), help: ArgumentHelp(
        "Enqueue a job of this class once every job finished or failed for good.", valueName: "class"))
    var onComplete: String?

    @Option(name: .customLong("on-failure"), help: ArgumentHelp(
        "Enqueue a job of this class when the first job fails for good.", valueName: "class"))
    var onFailure: String?

    @Option(help: ArgumentHelp("Handed to the callbacks (at most 4096 bytes).", valueName: "text"))
    var description: String?

    @Option(name: .customLong("callback-queue"), help: ArgumentHelp("The queue of the callback jobs (default: default).", valueName: "name"))
    var callbackQueue: String = JobRules.defaultQueue

    @Option(help: ArgumentHelp("The default queue of the batch's jobs.", valueName: "name"))
    var queue: String = JobRules.defaultQueue

    @Flag(help: "Print the batch as JSON instead of ids.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    private struct Report: Encodable {
        let batchID: Int
        let ids: [Int]
        enum CodingKeys: String, CodingKey { case batchID = "batch_id", ids }
    }

    func run() throws {
        let batch = NewBatch(description: description, onSuccess: onSuccess, onComplete: onComplete, onFailure: onFailure,
                             callbackQueue: callbackQueue)
        var reader = try LineReader(path: jsonl)
        let defaults = NewJob(className ?? "", queue: queue)
        var number = 0
        var lines: [(number: Int, line: JobLines.Line)] = []
        var bad: [JobLines.BadLine] = []
        var place: [Int: Int] = [:]
        while let bytes = reader.next() {
            number += 1
            guard let text = String(validating: bytes, as: UTF8.self) else {
                bad.append(JobLines.BadLine(number: number, problem: "the line is not UTF-8 text"))
                continue
            }
            if text.allSatisfy(\.isWhitespace) { continue }
            switch JobLines.line(Substring(text), number: number, defaults: defaults, keys: JobLines.batchKeys) {
            case .success(let line):
                if let missing = line.afterLines.first(where: { place[$0] == nil }) {
                    bad.append(JobLines.BadLine(number: number, problem: "after_lines names line \(missing), which holds no job"))
                    continue
                }
                place[number] = lines.count
                lines.append((number, line))
            case .failure(let line): bad.append(line)
            }
        }
        func say(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        if lines.isEmpty && bad.isEmpty { bad.append(JobLines.BadLine(number: max(number, 1), problem: "there are no jobs: a batch needs at least one")) }
        if !bad.isEmpty {
            for line in bad { say("drover: error: \(line.description)") }
            say("drover: nothing was enqueued; fix the line\(bad.count == 1 ? "" : "s") and enqueue the batch again")
            throw ExitCode(ExitStatus.usage.rawValue)
        }
        try database.withQueue { queue in
            let written: (batchID: Int, jobIDs: [Int])
            do {
                written = try queue.enqueueBatch(batch, jobs: lines.map(\.line.job),
                                                 afterPlaces: lines.map { $0.line.afterLines.map { place[$0]! } })
            } catch var error as QueueError where error.code == .invalidJob && error.jobIndex != nil {
                let index = error.jobIndex!
                let prefix = "job \(index + 1): "
                if error.message.hasPrefix(prefix) { error.message = String(error.message.dropFirst(prefix.count)) }
                say("drover: error: line \(lines[index].number): \(error.message)")
                say("drover: nothing was enqueued")
                throw ExitCode(ExitStatus.usage.rawValue)
            }
            if json { return try printJSON(Report(batchID: written.batchID, ids: written.jobIDs)) }
            print(written.batchID)
            print(written.jobIDs.map(String.init).joined(separator: "\n"))
        }
    }
}
