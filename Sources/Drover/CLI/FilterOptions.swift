import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// The filter language of `drover jobs list|cancel` and `drover failed list|retry|discard`, the
/// same conditions the dashboard's job filter has (``JobFilter``): every one given must hold.
struct JobFilterOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only jobs of this queue.", valueName: "name"))
    var queue: String?

    @Option(name: .customLong("class"), help: ArgumentHelp("Only jobs of this class.", valueName: "class"))
    var className: String?

    @Option(help: ArgumentHelp("Only jobs whose last error holds this text (case-sensitive).", valueName: "text"))
    var error: String?

    @Option(name: .customLong("args-contain"), help: ArgumentHelp(
        "Only jobs whose arguments contain this JSON object or array, as PostgreSQL's @> means it: "
            + "'{\"user\": 42}' matches {\"user\": 42, \"mail\": true}.", valueName: "json"))
    var argumentsContain: String?

    @Option(name: .customLong("older-than"), help: ArgumentHelp(
        "Only jobs enqueued longer ago than this (\(DurationText.examples)).", valueName: "duration"))
    var olderThan: String?

    @Option(name: .customLong("newer-than"), help: ArgumentHelp(
        "Only jobs enqueued less long ago than this (\(DurationText.examples)).", valueName: "duration"))
    var newerThan: String?

    func validate() throws { _ = try filter(state: nil) }

    /// Whether any condition was given.
    var isEmpty: Bool {
        queue == nil && className == nil && error == nil && argumentsContain == nil && olderThan == nil && newerThan == nil
    }

    /// The conditions as a filter, with `state`; a ValidationError (exit 64) names a bad one.
    func filter(state: JobState?, now: Date = Date()) throws -> JobFilter {
        var filter = JobFilter(state: state, queue: queue, className: className)
        if let queue { try usage { try JobRules.checkQueueName(queue, field: "--queue") } }
        if let error {
            guard !error.isEmpty, error.count <= JobFilter.maxTextLength else {
                throw ValidationError("--error must be 1 to \(JobFilter.maxTextLength) characters")
            }
            filter.errorText = error
        }
        if let argumentsContain {
            let wanted: JSON
            do {
                wanted = try JSON(validating: argumentsContain)
            } catch {
                throw ValidationError("--args-contain is \(error.message); for example --args-contain '{\"user\": 42}'")
            }
            guard wanted.isObject || wanted.isArray else {
                throw ValidationError("--args-contain must be a JSON object or array, such as '{\"user\": 42}'")
            }
            filter.argumentsContain = wanted
        }
        for (name, text) in [("--older-than", olderThan), ("--newer-than", newerThan)] {
            guard let text else { continue }
            guard let duration = DurationText.parse(text), duration > .zero, duration <= .seconds(100 * 365 * 86_400) else {
                throw ValidationError("\(name) \"\(text)\" is not a duration from 1ms to 100 years; use \(DurationText.examples)")
            }
            let cut = now.addingTimeInterval(-duration.seconds)
            if name == "--older-than" { filter.enqueuedBefore = cut } else { filter.enqueuedAfter = cut }
        }
        if let before = filter.enqueuedBefore, let after = filter.enqueuedAfter, after >= before {
            throw ValidationError("--newer-than \(newerThan!) and --older-than \(olderThan!) leave no time between them")
        }
        return filter
    }

    /// The conditions in words, for messages.
    var description: String {
        let parts = [("queue", queue), ("class", className), ("error containing", error.map { "\"\($0)\"" }),
                     ("arguments containing", argumentsContain), ("enqueued more than", olderThan.map { "\($0) ago" }),
                     ("enqueued less than", newerThan.map { "\($0) ago" })]
        return parts.compactMap { name, value in value.map { "\(name) \($0)" } }.joined(separator: ", ")
    }

    private func usage(_ body: () throws -> Void) throws {
        do { try body() } catch let error as QueueError { throw ValidationError(error.message) }
    }
}

/// `--limit` and `--json` of a listing.
struct ListingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Show at most this many jobs, newest first (1 to 100000).", valueName: "n"))
    var limit: Int = 50

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit \(limit) is not from 1 to 100000") }
    }
}

/// `--dry-run` and `--batch-size` of a change to every job a filter matches.
struct BulkOptions: ParsableArguments {
    @Flag(name: .customLong("dry-run"), help: "Print how many jobs the filter matches and the newest of them; change nothing.")
    var dryRun = false

    @Option(name: .customLong("batch-size"), help: ArgumentHelp(
        "Jobs changed per transaction, from 1 to 10000: no table-wide lock, safe beside running workers. "
            + "Ctrl-C stops between two of them (exit 130).", valueName: "n"))
    var batchSize: Int = 500

    func validate() throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size \(batchSize) is not from 1 to 10000") }
    }
}

/// What a bulk change printed as JSON: how many changed, how many were skipped (no longer in a
/// state the change applies to when their batch came).
struct BulkJSON: Encodable {
    let count: Int
    let skipped: Int
    /// Present (true) only when Ctrl-C stopped it.
    var interrupted: Bool? = nil
}

/// Runs `action` on every job `filter` matches in a state the action applies to (or, with
/// --dry-run, says what it would do). Without a state in the filter, each applicable state is
/// taken in turn, so that "skipped" means only jobs that left it while the change ran.
func runBulk(_ action: BulkAction, verb: String, filter: JobFilter, described: String, options: BulkOptions, json: Bool,
             on queue: any QueueAdmin) throws {
    let filters: [JobFilter] = filter.state != nil ? [filter] : action.states.map(\.rawValue).sorted().compactMap { state in
        var one = filter
        one.state = JobState(rawValue: state)
        return one
    }
    if options.dryRun {
        let count = try filters.reduce(0) { $0 + (try queue.countJobs($1)) }
        let sample = Array(try filters.flatMap { try queue.findJobs($0, before: nil, limit: 10).jobs }.sorted { $0.id > $1.id }.prefix(10))
        if json {
            // How many match, and the newest of them (each job as `drover jobs show --json` prints it).
            return print("{\"count\":\(count),\"sample\":[" + (try sample.map { try JobJSON($0).text() }).joined(separator: ",") + "]}")
        }
        print("would \(verb) \(count) job\(count == 1 ? "" : "s")\(described.isEmpty ? "" : " (\(described))")"
              + (sample.isEmpty ? "" : "; the newest:"))
        if !sample.isEmpty { try printJobs(sample, json: false) }
        return
    }
    var changed = 0
    var skipped = 0
    var interrupted = false
    // Ctrl-C stops between two batches (each its own transaction): what is done stays done.
    Interruption.catchInterrupts()
    var progress = ProgressLine(json: json)
    // The total, for the progress line only (a count costs a scan).
    let total = progress.enabled ? try filters.reduce(0) { $0 + (try queue.countJobs($1)) } : nil
    for one in filters where !interrupted {
        let before = changed
        let outcome = try queue.apply(action, to: one, batchSize: options.batchSize) { soFar in
            progress.update(pastTense(verb), before + soFar.changed.count, of: total)
            return !Interruption.wasRequested
        }
        changed += outcome.changed.count
        skipped += outcome.skipped.count
        interrupted = outcome.interrupted || Interruption.wasRequested
    }
    progress.finish()
    if json {
        try printJSON(BulkJSON(count: changed, skipped: skipped, interrupted: interrupted ? true : nil))
    } else {
        print("\(pastTense(verb)) \(changed) job\(changed == 1 ? "" : "s")"
              + (skipped == 0 ? "" : "; skipped \(skipped) that left the state meanwhile (a worker or a person acted first)"))
    }
    if interrupted {
        printError("drover: interrupted: the \(changed) jobs above were \(pastTense(verb)), the rest are as they were; "
                   + "run the same command again to go on")
        throw ExitCode(130)
    }
}

/// retried, discarded, cancelled.
func pastTense(_ verb: String) -> String {
    switch verb {
    case "retry": "retried"
    case "cancel": "cancelled"
    default: verb + "ed"
    }
}
