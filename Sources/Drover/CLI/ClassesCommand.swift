import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime

/// `drover classes`: pause and resume a job class on every queue.
struct ClassesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classes",
        abstract: "List paused job classes; pause or resume a class on every queue.",
        subcommands: [ClassesList.self, ClassesPause.self, ClassesResume.self]
    )
}

struct ClassesList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the paused job classes, with their jobs waiting in ready.")

    @Flag(help: "Print JSON for programs instead of a table for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct PausedJSON: Encodable {
        let className: String
        let pausedAt: String
        let ready: Int
        enum CodingKeys: String, CodingKey { case className = "class", pausedAt = "paused_at", ready }
    }

    func run() throws {
        try database.withQueue { queue in
            let paused = try queue.pausedClasses()
            if json {
                return try printJSON(paused.map { PausedJSON(className: $0.className, pausedAt: formatTime($0.pausedAt), ready: $0.ready) })
            }
            guard !paused.isEmpty else { return print("No job class is paused.") }
            var table = Table("CLASS", "PAUSED AT", "READY")
            for entry in paused { table.add(entry.className, formatTime(entry.pausedAt), String(entry.ready)) }
            print(table.render())
        }
    }
}

struct ClassArgument: ParsableArguments {
    @Argument(help: "The job class, as jobs are enqueued with it.")
    var className: String

    func validate() throws {
        do { try JobRules.checkClassName(className) } catch { throw ValidationError(error.message) }
    }
}

struct ClassesPause: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop workers from taking jobs of a class, on every queue; enqueueing goes on.",
        discussion: """
            Jobs of the class already running finish; its other jobs wait in ready until it is \
            resumed. Claims pass over the paused class's waiting jobs one by one, so a class with \
            many jobs at the head of a queue slows claims on that queue while it is paused; when a \
            queue holds that class alone, pause the queue instead.
            """)
    @OptionGroup var name: ClassArgument
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let changed = try queue.pauseClass(name.className)
            print(changed ? "paused class \(name.className)" : "class \(name.className) was paused already")
        }
    }
}

struct ClassesResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let workers take jobs of a paused class again.")
    @OptionGroup var name: ClassArgument
    @OptionGroup var database: DatabaseOptions

    func run() throws {
        try database.withQueue { queue in
            let changed = try queue.resumeClass(name.className)
            print(changed ? "resumed class \(name.className)" : "class \(name.className) was not paused")
        }
    }
}
