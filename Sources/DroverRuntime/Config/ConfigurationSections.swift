import Foundation
import DroverPersistence
import DroverQueue
import Yams

/// One function per section of the file; each knows its keys, types and limits.
extension ConfigReader {
    func database(_ node: Node) throws(ConfigurationError) -> Configuration.Database {
        var database = Configuration.Database()
        for entry in try mapping(node, "database", allowed: Self.sectionKeys["database"]) {
            switch entry.key {
            case "url":
                let url = try string(entry.value, "database.url")
                database.url = url.isEmpty ? nil : url
            case "network_timeout":
                database.networkTimeout = try duration(entry.value, "database.network_timeout", .seconds(1)...(.seconds(3600)))
            case "statement_timeout":
                database.statementTimeout = try duration(entry.value, "database.statement_timeout", .milliseconds(100)...(.seconds(86_400)))
            default:
                let schema = try string(entry.value, "database.schema")
                do {
                    _ = try SQLIdentifier.validated(schema, what: "schema name")
                } catch {
                    throw self.error(entry.value, "database.schema", "\(error.message) (default: drover)")
                }
                database.schema = schema
            }
        }
        return database
    }

    func workers(_ node: Node) throws(ConfigurationError) -> [Configuration.Worker] {
        var workers: [Configuration.Worker] = []
        for (i, item) in try sequence(node, "workers").enumerated() {
            let key = "workers[\(i)]"
            var worker = Configuration.Worker()
            for entry in try mapping(item, key, allowed: Self.sectionKeys["workers"]) {
                let field = "\(key).\(entry.key)"
                switch entry.key {
                case "queues":
                    let names = entry.value.sequence != nil ? try strings(entry.value, field) : [try string(entry.value, field)]
                    do {
                        worker.queues = try QueueSelection(names)
                    } catch {
                        throw self.error(entry.value, field, error.message)
                    }
                case "threads": worker.threads = try int(entry.value, field, 1...256)
                case "processes": worker.processes = try int(entry.value, field, 1...64)
                default: worker.pollingInterval = try duration(entry.value, field, .milliseconds(10)...(.seconds(3600)))
                }
            }
            workers.append(worker)
        }
        return workers
    }

    func dispatchers(_ node: Node) throws(ConfigurationError) -> [Configuration.Dispatcher] {
        var dispatchers: [Configuration.Dispatcher] = []
        for (i, item) in try sequence(node, "dispatchers").enumerated() {
            let key = "dispatchers[\(i)]"
            var dispatcher = Configuration.Dispatcher()
            for entry in try mapping(item, key, allowed: Self.sectionKeys["dispatchers"]) {
                let field = "\(key).\(entry.key)"
                if entry.key == "batch_size" {
                    dispatcher.batchSize = try int(entry.value, field, 1...10_000)
                } else {
                    dispatcher.pollingInterval = try duration(entry.value, field, .milliseconds(10)...(.seconds(3600)))
                }
            }
            dispatchers.append(dispatcher)
        }
        return dispatchers
    }

    /// The keys of the sections that are not per-entry mappings (drover.yml(5) documents each).
    static let sectionKeys: [String: [String]] = [
        "database": ["url", "schema", "network_timeout", "statement_timeout"],
        "workers": ["queues", "threads", "processes", "polling_interval"],
        "dispatchers": ["polling_interval", "batch_size"],
        "supervisor": ["heartbeat_interval", "alive_threshold", "shutdown_timeout", "max_crashes", "max_restarts", "restart_window"],
        "retention": ["preserve_finished_jobs", "clear_finished_after"],
    ]

    /// The keys of a `recurring:` entry (drover.yml(5) documents each).
    static let recurringKeys = ["class", "args", "schedule", "time_zone", "queue", "priority", "catch_up", "description"]

    /// The keys of a `handlers:` entry (drover.yml(5) documents each).
    static let handlerKeys = [
        "command", "timeout", "grace_period", "max_attempts", "retry", "max_snoozes", "on_failure", "env", "working_directory", "user", "concurrency",
        "rate_limit",
    ]

    /// The keys of an `on_failure:` given as a mapping.
    static let onFailureKeys = ["class", "cancelled"]

    /// `on_failure: NotifyOps` or `on_failure: {class: NotifyOps, cancelled: true}`.
    func onFailure(_ node: Node, _ key: String) throws(ConfigurationError) -> Configuration.OnFailure {
        func className(_ node: Node, _ field: String) throws(ConfigurationError) -> String {
            let name = try string(node, field)
            do { try JobRules.checkClassName(name) } catch { throw self.error(node, field, "names the job class to enqueue: \(error.message)") }
            return name
        }
        if case .scalar = node { return Configuration.OnFailure(try className(node, key)) }
        var hook: String? = nil
        var includeCancelled = false
        for entry in try mapping(node, key, allowed: Self.onFailureKeys) {
            let field = "\(key).\(entry.key)"
            switch entry.key {
            case "class": hook = try className(entry.value, field)
            default: includeCancelled = try bool(entry.value, field)
            }
        }
        guard let hook else { throw error(node, key, "needs a class: the job class to enqueue when a job fails for good") }
        return Configuration.OnFailure(hook, includeCancelled: includeCancelled)
    }

    /// The keys of a handler's `retry:`.
    static let retryKeys = ["backoff", "base", "max", "jitter"]

    func retry(_ node: Node, _ key: String) throws(ConfigurationError) -> RetryPolicy {
        var policy = RetryPolicy()
        for entry in try mapping(node, key, allowed: Self.retryKeys) {
            let field = "\(key).\(entry.key)"
            switch entry.key {
            case "backoff":
                let text = try string(entry.value, field)
                guard let backoff = RetryPolicy.Backoff(rawValue: text) else {
                    throw error(entry.value, field, "must be exponential, polynomial or fixed, not \"\(text)\"")
                }
                policy.backoff = backoff
            case "base": policy.baseDelay = try duration(entry.value, field, RetryPolicy.delayRange)
            case "max": policy.maxDelay = try duration(entry.value, field, RetryPolicy.delayRange)
            default: policy.jitter = try fraction(entry.value, field)
            }
        }
        // What is left is base against max: say it of the whole entry.
        if let problem = policy.problem() { throw error(node, key, problem) }
        return policy
    }

    /// A concurrency or rate-limit key: 1 to 1000 characters, `{name}` standing for an argument.
    func keyTemplate(_ node: Node, _ field: String) throws(ConfigurationError) -> String {
        let text = try string(node, field)
        guard !text.isEmpty, text.count <= 1000 else { throw error(node, field, "must be 1 to 1000 characters, such as \"account:{account_id}\"") }
        guard text.filter({ $0 == "{" }).count == text.filter({ $0 == "}" }).count else {
            throw error(node, field, "has unbalanced braces; write arguments as {name}")
        }
        return text
    }

    /// The keys of a handler's `rate_limit:`.
    static let rateLimitKeys = ["key", "limit", "period"]

    func rateLimit(_ node: Node, _ key: String) throws(ConfigurationError) -> Configuration.RateLimit {
        var template: String? = nil
        var limit: Int? = nil
        var period: Duration? = nil
        for entry in try mapping(node, key, allowed: Self.rateLimitKeys) {
            let field = "\(key).\(entry.key)"
            switch entry.key {
            case "key": template = try keyTemplate(entry.value, field)
            case "limit": limit = try int(entry.value, field, JobRules.rateLimitRange)
            default: period = try duration(entry.value, field, JobRules.ratePeriodRange)
            }
        }
        guard let limit else { throw error(node, key, "needs a limit: how many jobs with one key may start in each period, such as {limit: 10, period: 1s}") }
        guard let period else { throw error(node, key, "needs a period, such as 1s, 1m or 1h: the limit counts the starts in any period that long") }
        return Configuration.RateLimit(key: template, limit: limit, period: period)
    }

    /// The keys of a handler's `concurrency:`.
    static let concurrencyKeys = ["key", "limit", "duration", "on_conflict"]

    func concurrency(_ node: Node, _ key: String) throws(ConfigurationError) -> Configuration.Concurrency {
        var template: String? = nil
        var limit: Int? = nil
        var result = Configuration.Concurrency(key: "", limit: 1)
        for entry in try mapping(node, key, allowed: Self.concurrencyKeys) {
            let field = "\(key).\(entry.key)"
            switch entry.key {
            case "key": template = try keyTemplate(entry.value, field)
            case "limit": limit = try int(entry.value, field, JobRules.concurrencyLimitRange)
            case "duration": result.duration = try duration(entry.value, field, JobRules.concurrencyDurationRange)
            default:
                let text = try string(entry.value, field)
                guard let value = ConcurrencyRule.OnConflict(rawValue: text) else {
                    throw error(entry.value, field, "must be block or discard, not \"\(text)\"")
                }
                result.onConflict = value
            }
        }
        guard let template else { throw error(node, key, "needs a key, such as \"account:{account_id}\"") }
        guard let limit else { throw error(node, key, "needs a limit: how many jobs with one key may run at once") }
        result.key = template
        result.limit = limit
        return result
    }

    func handlers(_ node: Node) throws(ConfigurationError) -> [String: Configuration.Handler] {
        var handlers: [String: Configuration.Handler] = [:]
        for handlerEntry in try mapping(node, "handlers") {
            let key = "handlers.\(handlerEntry.key)"
            do {
                try JobRules.checkClassName(handlerEntry.key)
            } catch {
                throw self.error(handlerEntry.node, key, "the handler's name is a job class: \(error.message)")
            }
            var command: [String]? = nil
            var handler = Configuration.Handler(command: [])
            for entry in try mapping(handlerEntry.value, key,
                                     allowed: Self.handlerKeys) {
                let field = "\(key).\(entry.key)"
                switch entry.key {
                case "command":
                    let argv = try strings(entry.value, field)
                    guard let program = argv.first, !program.isEmpty else {
                        throw error(entry.value, field, "must name a program, as a list: [/usr/local/bin/send-report, --verbose]")
                    }
                    command = argv
                case "timeout": handler.timeout = try duration(entry.value, field, .seconds(1)...(.seconds(7 * 86_400)))
                case "concurrency": handler.concurrency = try concurrency(entry.value, field)
                case "rate_limit": handler.rateLimit = try rateLimit(entry.value, field)
                case "grace_period": handler.gracePeriod = try duration(entry.value, field, .milliseconds(100)...(.seconds(3600)))
                case "max_attempts": handler.maxAttempts = try int(entry.value, field, JobRules.maxAttemptsRange)
                case "retry": handler.retry = try retry(entry.value, field)
                case "max_snoozes": handler.maxSnoozes = try int(entry.value, field, SnoozeRules.maxSnoozesRange)
                case "on_failure": handler.onFailure = try onFailure(entry.value, field)
                case "env": handler.environment = try stringMap(entry.value, field)
                case "working_directory":
                    let directory = try string(entry.value, field)
                    guard directory.hasPrefix("/") else { throw error(entry.value, field, "must be an absolute path") }
                    handler.workingDirectory = directory
                default:
                    let user = try string(entry.value, field)
                    guard getpwnam(user) != nil else {
                        throw error(entry.value, field, "no user named \"\(user)\" on this host: create it, or name an existing user")
                    }
                    handler.user = user
                }
            }
            guard let command else { throw error(handlerEntry.node, key, "needs a command: [/path/to/program, arguments…]") }
            handler.command = command
            handlers[handlerEntry.key] = handler
        }
        return handlers
    }

    func recurring(_ node: Node) throws(ConfigurationError) -> [String: Configuration.RecurringTask] {
        var tasks: [String: Configuration.RecurringTask] = [:]
        for taskEntry in try mapping(node, "recurring") {
            let key = "recurring.\(taskEntry.key)"
            var className: String? = nil
            var schedule: String? = nil
            var task = Configuration.RecurringTask(className: "", schedule: "")
            for entry in try mapping(taskEntry.value, key, allowed: Self.recurringKeys) {
                let field = "\(key).\(entry.key)"
                switch entry.key {
                case "class":
                    let name = try string(entry.value, field)
                    do { try JobRules.checkClassName(name) } catch { throw self.error(entry.value, field, error.message) }
                    className = name
                case "args": task.arguments = try json(entry.value, field)
                case "schedule": schedule = try string(entry.value, field)
                case "time_zone": task.timeZone = try string(entry.value, field)
                case "queue":
                    let queue = try string(entry.value, field)
                    do { try JobRules.checkQueueName(queue) } catch { throw self.error(entry.value, field, error.message) }
                    task.queue = queue
                case "priority": task.priority = try int(entry.value, field, JobRules.priorityRange)
                case "catch_up": task.catchUp = try bool(entry.value, field)
                default: task.description = try string(entry.value, field)
                }
            }
            guard let className else { throw error(taskEntry.node, key, "needs a class: the job class to enqueue") }
            guard let schedule, !schedule.isEmpty else { throw error(taskEntry.node, key, "needs a schedule, such as \"0 3 * * *\"") }
            do {
                _ = try Schedule(schedule, timeZone: task.timeZone)
            } catch {
                let node = taskEntry.value.mapping?[error.description.hasPrefix("time zone") ? "time_zone" : "schedule"] ?? taskEntry.node
                throw self.error(node, error.description.hasPrefix("time zone") ? "\(key).time_zone" : "\(key).schedule", error.description)
            }
            task.className = className
            task.schedule = schedule
            tasks[taskEntry.key] = task
        }
        return tasks
    }

    func supervisor(_ node: Node) throws(ConfigurationError) -> Configuration.Supervisor {
        var supervisor = Configuration.Supervisor()
        var thresholdNode: Node? = nil
        for entry in try mapping(node, "supervisor", allowed: Self.sectionKeys["supervisor"]) {
            let field = "supervisor.\(entry.key)"
            switch entry.key {
            case "heartbeat_interval": supervisor.heartbeatInterval = try duration(entry.value, field, .milliseconds(100)...(.seconds(3600)))
            case "alive_threshold":
                supervisor.aliveThreshold = try duration(entry.value, field, .milliseconds(300)...(.seconds(86_400)))
                thresholdNode = entry.value
            case "shutdown_timeout": supervisor.shutdownTimeout = try duration(entry.value, field, .zero...(.seconds(86_400)))
            case "max_crashes": supervisor.maxCrashes = try int(entry.value, field, 1...1000)
            case "max_restarts": supervisor.maxRestarts = try int(entry.value, field, 1...10_000)
            default: supervisor.restartWindow = try duration(entry.value, field, .seconds(1)...(.seconds(86_400)))
            }
        }
        // A live process must get at least two heartbeats in before it can be taken for dead.
        guard supervisor.aliveThreshold >= supervisor.heartbeatInterval * 2 else {
            throw error(thresholdNode ?? node, "supervisor.alive_threshold",
                        "\(DurationText.format(supervisor.aliveThreshold)) is less than twice heartbeat_interval "
                            + "(\(DurationText.format(supervisor.heartbeatInterval))): live processes would be taken for dead; "
                            + "make it at least \(DurationText.format(supervisor.heartbeatInterval * 2))")
        }
        return supervisor
    }

    func retention(_ node: Node) throws(ConfigurationError) -> Configuration.Retention {
        var retention = Configuration.Retention()
        for entry in try mapping(node, "retention", allowed: Self.sectionKeys["retention"]) {
            let field = "retention.\(entry.key)"
            if entry.key == "preserve_finished_jobs" {
                retention.preserveFinishedJobs = try bool(entry.value, field)
            } else {
                retention.clearFinishedAfter = try duration(entry.value, field, .seconds(1)...(.seconds(3650 * 86_400)))
            }
        }
        return retention
    }
}
