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
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let jobs = try queue.listJobs(
                queue: filter.queue, state: .failed, className: filter.className, limit: filter.limit)
            try printJobs(jobs, json: filter.json)
        }
    }
}

/// Job ids, or --all.
struct FailedSelection: ParsableArguments {
    @Argument(help: "The ids of the failed jobs.")
    var ids: [Int] = []

    @Flag(help: "Every failed job.")
    var all = false

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    func validate() throws {
        if all && !ids.isEmpty { throw ValidationError("give job ids or --all, not both") }
        if !all && ids.isEmpty { throw ValidationError("name the failed jobs by id, or pass --all") }
        try JobID.check(ids)
    }
}

struct CountJSON: Encodable {
    let count: Int
    let ids: [Int]?
}

struct FailedRetry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed jobs back in their queues with fresh attempts.",
        discussion: "Every id must be a failed job; otherwise nothing is retried and the others are named."
    )

    @OptionGroup var selection: FailedSelection
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            if selection.all {
                let count = try queue.retryAllFailed()
                try report(count: count, ids: nil)
            } else {
                let ids = try queue.retryFailed(selection.ids)
                try report(count: ids.count, ids: ids)
            }
        }
    }

    private func report(count: Int, ids: [Int]?) throws {
        if selection.json { return try printJSON(CountJSON(count: count, ids: ids)) }
        let list = ids.map { ": " + $0.map(String.init).joined(separator: ", ") } ?? ""
        print("retried \(count) job\(count == 1 ? "" : "s")\(list)")
    }
}

struct FailedDiscard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "discard",
        abstract: "Delete failed jobs.",
        discussion: "Every id must be a failed job; otherwise nothing is deleted and the others are named."
    )

    @OptionGroup var selection: FailedSelection
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let count: Int
            let ids: [Int]?
            if selection.all {
                count = try queue.discardAllFailed()
                ids = nil
            } else {
                ids = try queue.discardFailed(selection.ids)
                count = ids!.count
            }
            if selection.json { return try printJSON(CountJSON(count: count, ids: ids)) }
            let list = ids.map { ": " + $0.map(String.init).joined(separator: ", ") } ?? ""
            print("discarded \(count) job\(count == 1 ? "" : "s")\(list)")
        }
    }
}
