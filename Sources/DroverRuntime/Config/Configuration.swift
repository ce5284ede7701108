import DroverPersistence
import DroverQueue

/// Drover's configuration file (docs/architecture.md), with every default filled in.
public struct Configuration: Sendable, Equatable {
    public struct Database: Sendable, Equatable {
        /// A `postgresql://` URL or libpq `key=value` string; nil means "not set here".
        public var url: String?
        /// The PostgreSQL schema Drover's tables live in.
        public var schema = DroverSchema.defaultName
        /// How long a dead network path to PostgreSQL may go unnoticed (TCP keepalives and
        /// `tcp_user_timeout` on every runtime connection); nil: ``networkTimeout(aliveThreshold:)``.
        public var networkTimeout: Duration?
        /// The longest a runtime statement may run before PostgreSQL cancels it; nil:
        /// ``statementTimeout(aliveThreshold:heartbeatInterval:)``.
        public var statementTimeout: Duration?

        public init(url: String? = nil, schema: String = DroverSchema.defaultName) {
            self.url = url
            self.schema = schema
        }

        /// `network_timeout`, by default a quarter of `alive_threshold` between 1 s and 30 s: well
        /// inside the lease, so that a worker whose path died learns it while it can still stop
        /// its jobs in order.
        public func networkTimeout(aliveThreshold: Duration) -> Duration {
            networkTimeout ?? min(.seconds(30), max(.seconds(1), aliveThreshold / 4))
        }

        /// `statement_timeout`, by default half of what the lease leaves before a worker fences
        /// itself (`alive_threshold` less one `heartbeat_interval`), at least 1 s.
        public func statementTimeout(aliveThreshold: Duration, heartbeatInterval: Duration) -> Duration {
            statementTimeout ?? max(.seconds(1), (aliveThreshold - heartbeatInterval) / 2)
        }
    }

    /// One `workers:` entry: `processes` worker processes alike.
    public struct Worker: Sendable, Equatable {
        public var queues: QueueSelection = ["*"]
        /// Jobs one worker process runs at once.
        public var threads = 5
        public var processes = 1
        /// How often an idle worker looks for jobs when no notification wakes it.
        public var pollingInterval: Duration = .seconds(1)

        public init() {}
    }

    /// One `dispatchers:` entry.
    public struct Dispatcher: Sendable, Equatable {
        /// How often it looks for due scheduled jobs.
        public var pollingInterval: Duration = .seconds(1)
        /// Jobs moved per statement.
        public var batchSize = 500

        public init() {}
    }

    /// A command a job class runs: argv (never a shell), with the job's arguments as JSON on stdin.
    public struct Handler: Sendable, Equatable {
        public var command: [String]
        /// How long one attempt may run; a job's own timeout (at enqueue) wins.
        public var timeout: Duration?
        /// After TERM (timeout, cancellation), how long the command has to exit before KILL.
        public var gracePeriod: Duration = .seconds(10)
        /// Overrides the job's own max_attempts when set.
        public var maxAttempts: Int?
        /// How long a failed attempt waits before the next (`retry:`); nil for the default policy.
        public var retry: RetryPolicy?
        /// How many times a job may snooze (exit 101) before a snooze counts as a failed attempt.
        public var maxSnoozes = SnoozeRules.defaultMaxSnoozes
        /// The job class enqueued when a job of this class fails for good (`on_failure`).
        public var onFailure: OnFailure?
        /// Added to the command's environment (which does not inherit the worker's secrets).
        public var environment: [String: String] = [:]
        public var workingDirectory: String?
        /// The user the command runs as; switching needs the supervisor to run as root.
        public var user: String?
        /// At most `limit` jobs with one key run at once.
        public var concurrency: Concurrency?
        /// At most `limit` jobs with one key start in any `period`.
        public var rateLimit: RateLimit?

        public init(command: [String]) { self.command = command }
    }

    /// `handlers.X.rate_limit`: at most `limit` jobs of the class with the same key start in any
    /// `period`, across every host.
    public struct RateLimit: Sendable, Equatable {
        /// `{name}` stands for the job's argument `name`: `account:{account_id}`; nil: the class
        /// name, one key for the whole class.
        public var key: String?
        public var limit: Int
        public var period: Duration

        public init(key: String? = nil, limit: Int, period: Duration) {
            self.key = key
            self.limit = limit
            self.period = period
        }

        /// The database's rule for jobs of `className`.
        public func rule(for className: String) -> RateLimitRule {
            RateLimitRule(className: className, keyTemplate: key, limit: limit, period: period)
        }
    }

    /// `handlers.X.concurrency`: at most `limit` jobs of the class with the same key run at once.
    public struct Concurrency: Sendable, Equatable {
        /// `{name}` stands for the job's argument `name`: `account:{account_id}`.
        public var key: String
        public var limit: Int
        /// After this long without movement, a key's slots are counted again from its jobs.
        public var duration: Duration = .seconds(300)
        public var onConflict: ConcurrencyRule.OnConflict = .block

        public init(key: String, limit: Int) {
            self.key = key
            self.limit = limit
        }
    }

    /// A task enqueued on a schedule by the scheduler processes, each run once across all hosts.
    public struct RecurringTask: Sendable, Equatable {
        public var className: String
        public var arguments: JSON = .emptyObject
        public var schedule: String
        public var timeZone: String?
        public var queue: String?
        public var priority: Int?
        public var catchUp = false
        public var description: String?

        public init(className: String, schedule: String) {
            self.className = className
            self.schedule = schedule
        }
    }

    public struct Supervisor: Sendable, Equatable {
        public var heartbeatInterval: Duration = .seconds(10)
        /// A process whose heartbeat is older than this is taken for dead and its jobs recovered.
        public var aliveThreshold: Duration = .seconds(60)
        /// How long a stopping process may finish its running jobs before they are released.
        public var shutdownTimeout: Duration = .seconds(30)
        /// A job that kills its worker this many times fails instead of running again.
        public var maxCrashes = 3
        /// More restarts than this within `restartWindow` stops the supervisor (a crash loop).
        public var maxRestarts = 10
        public var restartWindow: Duration = .seconds(60)

        public init() {}
    }

    public struct Retention: Sendable, Equatable {
        public var preserveFinishedJobs = true
        public var clearFinishedAfter: Duration = .seconds(86_400)

        public init() {}
    }

    public var database = Database()
    public var workers: [Worker] = [Worker()]
    public var dispatchers: [Dispatcher] = [Dispatcher()]
    public var handlers: [String: Handler] = [:]
    public var recurring: [String: RecurringTask] = [:]
    public var supervisor = Supervisor()
    public var retention = Retention()
    /// The job class enqueued when a job of a class with no `on_failure` of its own fails for good.
    public var onFailure: OnFailure?
    /// The dashboard; nil: none (no `web:` section).
    public var web: Web?
    /// The file this was read from, nil when no file was read.
    public var path: String?

    public init(database: Database = Database(), path: String? = nil) {
        self.database = database
        self.path = path
    }

    /// `on_failure: CLASS` or `on_failure: {class: CLASS, cancelled: true}`.
    public struct OnFailure: Sendable, Equatable {
        public var hookClass: String
        /// Whether a job cancelled while it ran (`drover jobs cancel`) counts as failed for the hook.
        public var includeCancelled: Bool

        public init(_ hookClass: String, includeCancelled: Bool = false) {
            self.hookClass = hookClass
            self.includeCancelled = includeCancelled
        }
    }
}

extension Configuration {
    /// The `recurring:` section as the static tasks of the database.
    public var staticTasks: [DroverQueue.RecurringTask] {
        recurring.sorted { $0.key < $1.key }.map { key, task in
            DroverQueue.RecurringTask(
                key: key, schedule: task.schedule, timeZone: task.timeZone ?? "UTC", className: task.className,
                arguments: task.arguments, queue: task.queue, priority: task.priority, catchUp: task.catchUp, isStatic: true,
                description: task.description)
        }
    }

    /// The `concurrency:` of every handler, as the database's rules.
    /// The failure hooks of the handlers, and the top-level one for every other class.
    public var failureHooks: [FailureHook] {
        var hooks = handlers.sorted { $0.key < $1.key }.compactMap { name, handler in
            handler.onFailure.map { FailureHook(className: name, hookClass: $0.hookClass, includeCancelled: $0.includeCancelled) }
        }
        if let onFailure {
            hooks.append(FailureHook(className: FailureHook.everyClass, hookClass: onFailure.hookClass, includeCancelled: onFailure.includeCancelled))
        }
        return hooks
    }

    /// The `rate_limit:` of every handler, as the database's rules.
    public var rateLimitRules: [RateLimitRule] {
        handlers.sorted { $0.key < $1.key }.compactMap { name, handler in handler.rateLimit?.rule(for: name) }
    }

    public var concurrencyRules: [ConcurrencyRule] {
        handlers.sorted { $0.key < $1.key }.compactMap { name, handler in
            handler.concurrency.map {
                ConcurrencyRule(className: name, keyTemplate: $0.key, maxRunning: $0.limit, duration: $0.duration, onConflict: $0.onConflict)
            }
        }
    }
}
