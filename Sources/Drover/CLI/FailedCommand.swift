import ArgumentParser
import DroverPersistence
import DroverQueue

/// `drover failed`: jobs out of attempts, waiting for a person.
struct FailedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failed",
        abstract: "List, retry or discard failed jobs.",
        subcommands: [FailedList.self, FailedRetry.self, FailedDiscard.self]
    )
}

struct FailedList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List failed jobs, newest first.")

    @OptionGroup var filter: JobFilterOptions
    @OptionGroup var listing: ListingOptions
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let filter = try filter.filter(state: .failed)
        try database.withQueue { queue in
            try printJobs(queue.findJobs(filter, before: nil, limit: listing.limit).jobs, json: listing.json)
        }
    }
}

/// Job ids, --all, or filters.
struct FailedSelection: ParsableArguments {
    @Argument(help: "The ids of the failed jobs.")
    var ids: [Int] = []

    @Flag(help: "Every failed job.")
    var all = false

    @OptionGroup var filter: JobFilterOptions
    @OptionGroup var bulk: BulkOptions

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    func validate() throws {
        let ways = [!ids.isEmpty, all, !filter.isEmpty].filter { $0 }.count
        if ways > 1 { throw ValidationError("give job ids, --all or filters, only one of them") }
        if ways == 0 { throw ValidationError("name the failed jobs by id, select them with filters (--queue, --class, --error, …), or pass --all") }
        if bulk.dryRun && !ids.isEmpty { throw ValidationError("--dry-run goes with --all or filters") }
        try JobID.check(ids)
    }
}

struct CountJSON: Encodable {
    let count: Int
    let ids: [Int]?
}

/// `failed retry` and `failed discard`: by ids (all or nothing), or every failed job --all or
/// the filters select, in batches.
private func changeFailed(_ action: BulkAction, verb: String, selection: FailedSelection, database: DatabaseOptions) throws {
    try database.withQueue { queue in
        if selection.ids.isEmpty {
            // --all is the filter of no condition.
            try runBulk(action, verb: verb, filter: selection.filter.filter(state: .failed), described: selection.filter.description,
                        options: selection.bulk, json: selection.json, on: queue)
            return
        }
        let ids = action == .retry ? try queue.retryFailed(selection.ids) : try queue.discardFailed(selection.ids)
        if selection.json { return try printJSON(CountJSON(count: ids.count, ids: ids)) }
        print("\(pastTense(verb)) \(ids.count) job\(ids.count == 1 ? "" : "s"): " + ids.map(String.init).joined(separator: ", "))
    }
}

struct FailedRetry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed jobs back in their queues with fresh attempts.",
        discussion: """
            By ids, every id must be a failed job; otherwise nothing is retried and the others are named. \
            With --all or filters, every failed job they select is retried, --batch-size at a time; \
            --dry-run prints the count and the newest of them instead.
            """
    )

    @OptionGroup var selection: FailedSelection
    @OptionGroup var database: DatabaseOptions

    func run() throws { try changeFailed(.retry, verb: "retry", selection: selection, database: database) }
}

struct FailedDiscard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discard",
        abstract: "Delete failed jobs.",
        discussion: """
            By ids, every id must be a failed job; otherwise nothing is deleted and the others are named. \
            With --all or filters, every failed job they select is deleted, --batch-size at a time; \
            --dry-run prints the count and the newest of them instead.
            """
    )

    @OptionGroup var selection: FailedSelection
    @OptionGroup var database: DatabaseOptions

    func run() throws { try changeFailed(.discard, verb: "discard", selection: selection, database: database) }
}
