import DroverPersistence
import DroverQueue
import Foundation

extension Configuration {
    /// The configuration with every default filled in, as YAML that reads back as the same
    /// configuration. Strings are written JSON-quoted (valid YAML); the database password is `***`,
    /// and so is a handler's `env` value whose name looks secret (``isSecretName(_:)``).
    public func renderedYAML() -> String {
        var lines: [String] = []
        func quote(_ s: String) -> String {
            let data = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
        func list(_ values: [String]) -> String { "[" + values.map(quote).joined(separator: ", ") + "]" }
        func map(_ values: [String: String]) -> String {
            "{" + values.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \(quote($0.value))" }.joined(separator: ", ") + "}"
        }
        func duration(_ d: Duration) -> String { DurationText.format(d) }

        lines.append("database:")
        if let url = database.url {
            lines.append("  url: \(quote(Connection.redacted(url)))")
        } else {
            lines.append("  # url: not set here (--database-url, DROVER_DATABASE_URL or libpq's defaults apply)")
        }
        lines.append("  schema: \(quote(database.schema))")
        lines.append("workers:")
        for worker in workers {
            lines.append("  - queues: \(list(worker.queues.patterns.map(\.description)))")
            lines.append("    threads: \(worker.threads)")
            lines.append("    processes: \(worker.processes)")
            lines.append("    polling_interval: \(duration(worker.pollingInterval))")
        }
        if workers.isEmpty { lines[lines.count - 1] = "workers: []" }
        lines.append("dispatchers:")
        for dispatcher in dispatchers {
            lines.append("  - polling_interval: \(duration(dispatcher.pollingInterval))")
            lines.append("    batch_size: \(dispatcher.batchSize)")
        }
        if dispatchers.isEmpty { lines[lines.count - 1] = "dispatchers: []" }
        lines.append(handlers.isEmpty ? "handlers: {}" : "handlers:")
        for (name, handler) in handlers.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(quote(name)):")
            lines.append("    command: \(list(handler.command))")
            if let timeout = handler.timeout { lines.append("    timeout: \(duration(timeout))") }
            lines.append("    grace_period: \(duration(handler.gracePeriod))")
            if let maxAttempts = handler.maxAttempts { lines.append("    max_attempts: \(maxAttempts)") }
            if let retry = handler.retry {
                lines.append("    retry: {backoff: \(retry.backoff.rawValue), base: \(duration(retry.baseDelay)), max: \(duration(retry.maxDelay)), "
                             + "jitter: \(retry.jitter)}")
            }
            if handler.maxSnoozes != SnoozeRules.defaultMaxSnoozes { lines.append("    max_snoozes: \(handler.maxSnoozes)") }
            if let hook = handler.onFailure { lines.append("    on_failure: {class: \(quote(hook.hookClass)), cancelled: \(hook.includeCancelled)}") }
            if !handler.environment.isEmpty {
                let shown = Dictionary(uniqueKeysWithValues: handler.environment.map { ($0.key, Self.isSecretName($0.key) ? "***" : $0.value) })
                lines.append("    env: \(map(shown))")
            }
            if let directory = handler.workingDirectory { lines.append("    working_directory: \(quote(directory))") }
            if let user = handler.user { lines.append("    user: \(quote(user))") }
            if let limit = handler.concurrency {
                lines.append("    concurrency: {key: \(quote(limit.key)), limit: \(limit.limit), duration: \(duration(limit.duration)), "
                             + "on_conflict: \(limit.onConflict.rawValue)}")
            }
            if let limit = handler.rateLimit {
                let key = limit.key.map { "key: \(quote($0)), " } ?? ""
                let note = limit.key == nil ? "   # key: the class's name" : ""
                lines.append("    rate_limit: {\(key)limit: \(limit.limit), period: \(duration(limit.period))}\(note)")
            }
        }
        lines.append(recurring.isEmpty ? "recurring: {}" : "recurring:")
        for (name, task) in recurring.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(quote(name)):")
            lines.append("    class: \(quote(task.className))")
            lines.append("    args: \(task.arguments.text)")
            lines.append("    schedule: \(quote(task.schedule))")
            if let zone = task.timeZone { lines.append("    time_zone: \(quote(zone))") }
            if let queue = task.queue { lines.append("    queue: \(quote(queue))") }
            if let priority = task.priority { lines.append("    priority: \(priority)") }
            lines.append("    catch_up: \(task.catchUp)")
            if let description = task.description { lines.append("    description: \(quote(description))") }
        }
        lines.append("supervisor:")
        lines.append("  heartbeat_interval: \(duration(supervisor.heartbeatInterval))")
        lines.append("  alive_threshold: \(duration(supervisor.aliveThreshold))")
        lines.append("  shutdown_timeout: \(duration(supervisor.shutdownTimeout))")
        lines.append("  max_crashes: \(supervisor.maxCrashes)")
        lines.append("  max_restarts: \(supervisor.maxRestarts)")
        lines.append("  restart_window: \(duration(supervisor.restartWindow))")
        lines.append("retention:")
        lines.append("  preserve_finished_jobs: \(retention.preserveFinishedJobs)")
        lines.append("  clear_finished_after: \(duration(retention.clearFinishedAfter))")
        if let hook = onFailure { lines.append("on_failure: {class: \(quote(hook.hookClass)), cancelled: \(hook.includeCancelled)}") }
        if let web {
            lines.append("web:")
            lines.append("  listen: \(quote(web.listen.description))")
            switch web.auth {
            case .file(let path)?: lines.append("  auth: {password_file: \(quote(path))}")
            case .credential(let name)?: lines.append("  auth: {credential: \(quote(name))}")
            case nil: lines.append("  # auth: not set (only a loopback address or a unix socket may go without)")
            }
            lines.append("  read_only: \(web.readOnly)")
        } else {
            lines.append("# web: not set (no dashboard; drover web serves one in the foreground)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether an environment variable's name says it holds a secret: PASSWORD, PASSWD, SECRET,
    /// TOKEN, KEY or CREDENTIAL in any case (`API_KEY`, `db_password`, `GithubToken`).
    public static func isSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"].contains { upper.contains($0) }
    }
}
