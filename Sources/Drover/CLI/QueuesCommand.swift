import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime

/// `drover queues`: see and steer queues.
struct QueuesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queues",
        abstract: "List queues; pause, resume or clear one.",
        subcommands: [QueuesList.self, QueuesPause.self, QueuesResume.self, QueuesClear.self]
    )
}

struct QueuesList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List queues that have jobs or are paused, with their counts.")

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct QueueJSON: Encodable {
        let name: String
        let ready, scheduled, claimed, blocked, failed: Int
        let oldestReadyAgeSeconds: Double?
        let paused: Bool

        enum CodingKeys: String, CodingKey {
            case name, ready, scheduled, claimed, blocked, failed, paused
            case oldestReadyAgeSeconds = "oldest_ready_age_seconds"
        }
    }

    func run() throws {
        try database.withQueue { queue in
            let queues = try queue.listQueues()
            if json {
                return try printJSON(queues.map {
                    QueueJSON(name: $0.name, ready: $0.ready, scheduled: $0.scheduled, claimed: $0.claimed,
                              blocked: $0.blocked, failed: $0.failed, oldestReadyAgeSeconds: $0.oldestReadyAge,
                              paused: $0.paused)
                })
            }
            guard !queues.isEmpty else { return print("No queues have jobs.") }
            var table = Table("QUEUE", "READY", "SCHEDULED", "CLAIMED", "BLOCKED", "FAILED", "OLDEST READY", "PAUSED")
            for q in queues {
                let age = q.oldestReadyAge.map { DurationText.format(.seconds(Int64($0.rounded()))) } ?? ""
                table.add(q.name, String(q.ready), String(q.scheduled), String(q.claimed), String(q.blocked),
                          String(q.failed), age, q.paused ? "yes" : "no")
            }
            print(table.render())
        }
    }
}

struct QueueArgument: ParsableArguments {
    @Argument(help: "The queue's name.")
    var queue: String
}

struct QueuesPause: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop workers from taking jobs from a queue; enqueueing goes on.")
    @OptionGroup var name: QueueArgument
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let changed = try queue.pause(name.queue)
            print(changed ? "paused queue \(name.queue)" : "queue \(name.queue) was paused already")
        }
    }
}

struct QueuesResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let workers take jobs from a paused queue again.")
    @OptionGroup var name: QueueArgument
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let changed = try queue.resume(name.queue)
            print(changed ? "resumed queue \(name.queue)" : "queue \(name.queue) was not paused")
        }
    }
}

struct QueuesClear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Delete a queue's ready and scheduled jobs.",
        discussion: "Running jobs go on; failed ones stay (see drover failed discard).")
    @OptionGroup var name: QueueArgument

    @Flag(help: "Print JSON for programs instead of text for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct ClearedJSON: Encodable {
        let queue: String
        let ready: Int
        let scheduled: Int
    }

    func run() throws {
        try database.withQueue { queue in
            let cleared = try queue.clear(name.queue)
            if json { return try printJSON(ClearedJSON(queue: name.queue, ready: cleared.ready, scheduled: cleared.scheduled)) }
            print("cleared queue \(name.queue): deleted \(cleared.ready) ready and \(cleared.scheduled) scheduled jobs")
        }
    }
}
