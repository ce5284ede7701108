import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// `drover rate-limits`: the limits in force and each key's use.
struct RateLimitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate-limits",
        abstract: "Show rate limits and each key's use.",
        discussion: """
            Limits come from the configuration's handlers (rate_limit: {key, limit, period}) and from the app's \
            Swift job types; drover start records them in the database. At most limit jobs with one key start \
            in any period, across every host. A job over the limit waits in scheduled until the time its key \
            gave it, spending no attempt.
            """,
        subcommands: [RateLimitsList.self],
        defaultSubcommand: RateLimitsList.self
    )
}

struct RateLimitsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the limits and each key's use.")

    @Flag(help: "Print JSON for programs instead of tables for people.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    struct RuleJSON: Encodable {
        let className, key: String
        let limit: Int
        let periodSeconds: Double
        enum CodingKeys: String, CodingKey { case className = "class", key, limit, periodSeconds = "period_seconds" }
    }

    struct KeyJSON: Encodable {
        let key: String
        let limit, started, waiting: Int
        let periodSeconds: Double
        let lastWaitingAt: Date?
        enum CodingKeys: String, CodingKey {
            case key, limit, started, waiting, periodSeconds = "period_seconds", lastWaitingAt = "last_waiting_at"
        }
    }

    struct Listing: Encodable {
        let rules: [RuleJSON]
        let keys: [KeyJSON]
    }

    func run() throws {
        try database.withQueue { queue in
            let rules = try queue.rateLimitRules()
            let keys = try queue.rateLimitKeys()
            if json {
                return try printJSON(Listing(
                    rules: rules.map { RuleJSON(className: $0.className, key: $0.keyTemplate, limit: $0.limit, periodSeconds: $0.period.seconds) },
                    keys: keys.map {
                        KeyJSON(key: $0.key, limit: $0.limit, started: $0.started, waiting: $0.waiting, periodSeconds: $0.period.seconds,
                                lastWaitingAt: $0.lastWaitingAt)
                    }))
            }
            guard !rules.isEmpty || !keys.isEmpty else { return print("No rate limits.") }
            var table = Table("CLASS", "KEY", "LIMIT", "PERIOD")
            for rule in rules { table.add(rule.className, rule.keyTemplate, String(rule.limit), DurationText.format(rule.period)) }
            print(table.render())
            guard !keys.isEmpty else { return }
            print("")
            var inUse = Table("KEY", "STARTED", "LIMIT", "PERIOD", "WAITING", "LINE ENDS")
            for key in keys {
                inUse.add(key.key, String(key.started), String(key.limit), DurationText.format(key.period), String(key.waiting),
                          key.lastWaitingAt == nil ? "-" : formatTime(key.lastWaitingAt))
            }
            print(inUse.render())
        }
    }
}
