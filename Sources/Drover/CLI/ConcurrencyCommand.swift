import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover concurrency`: the limits in force and the keys in use.
struct ConcurrencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "concurrency",
        abstract: "Show concurrency limits and the keys in use.",
        discussion: """
            Limits come from the configuration's handlers (concurrency: {key, limit, duration, on_conflict}) \
            and from the app's Swift job types; drover start records them in the database. A job's key is \
            rendered from its arguments at enqueue; at most limit jobs with one key run at once, the others \
            wait as blocked.
            """,
        subcommands: [ConcurrencyList.self],
        defaultSubcommand: ConcurrencyList.self
    )
}

struct ConcurrencyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the limits and the keys in use.")

    @Flag(help: "Print JSON for programs instead of tables for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct RuleJSON: Encodable {
        let className, key, onConflict: String
        let limit: Int
        let durationSeconds: Double
        enum CodingKeys: String, CodingKey {
            case className = "class", key, limit, onConflict = "on_conflict", durationSeconds = "duration_seconds"
        }
    }

    struct KeyJSON: Encodable {
        let key: String
        let limit, running, blocked: Int
        let expiresAt: Date?
        enum CodingKeys: String, CodingKey { case key, limit, running, blocked, expiresAt = "expires_at" }
    }

    struct Listing: Encodable {
        let rules: [RuleJSON]
        let keys: [KeyJSON]
    }

    func run() throws {
        try database.withQueue { queue in
            let rules = try queue.concurrencyRules()
            let keys = try queue.concurrencyKeys()
            if json {
                return try printJSON(Listing(
                    rules: rules.map {
                        RuleJSON(className: $0.className, key: $0.keyTemplate, onConflict: $0.onConflict.rawValue, limit: $0.maxRunning,
                                 durationSeconds: $0.duration.seconds)
                    },
                    keys: keys.map { KeyJSON(key: $0.key, limit: $0.maxRunning, running: $0.holding, blocked: $0.blocked, expiresAt: $0.expiresAt) }))
            }
            guard !rules.isEmpty || !keys.isEmpty else { return print("No concurrency limits.") }
            var table = Table("CLASS", "KEY", "LIMIT", "DURATION", "ON CONFLICT")
            for rule in rules {
                table.add(rule.className, rule.keyTemplate, String(rule.maxRunning), DurationText.format(rule.duration), rule.onConflict.rawValue)
            }
            print(table.render())
            guard !keys.isEmpty else { return }
            print("")
            var inUse = Table("KEY", "RUNNING", "LIMIT", "BLOCKED")
            for key in keys { inUse.add(key.key, String(key.holding), String(key.maxRunning), String(key.blocked)) }
            print(inUse.render())
        }
    }
}
