import DroverQueue
import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

@Suite("The configuration file's database section")
struct ConfigurationLoaderTests {
    @Test("reads database.url and database.schema, and accepts the design's other sections")
    func readsDatabaseSection() throws {
        let yaml = """
            # Drover
            database:
              url: postgresql:///drover?host=/run/postgresql
              schema: jobs_2
            workers:
              - queues: [critical, default]
                threads: 5
            supervisor:
              shutdown_timeout: 30s
            """
        let config = try ConfigurationLoader.parse(yaml, path: "/etc/drover/drover.yml")
        #expect(config.database.url == "postgresql:///drover?host=/run/postgresql")
        #expect(config.database.schema == "jobs_2")
        #expect(config.path == "/etc/drover/drover.yml")
    }

    @Test("an empty file, or one without a database section, means defaults")
    func emptyMeansDefaults() throws {
        for yaml in ["", "# nothing\n", "database:\n", "workers: []\n"] {
            let config = try ConfigurationLoader.parse(yaml, path: "d.yml")
            #expect(config.database == Configuration.Database())
        }
    }

    @Test("errors name the file, the line and the key", arguments: [
        ("database:\n  url: x\n  shema: drover\n", "d.yml:3: database.shema: unknown key"),
        ("databse:\n  url: x\n", "d.yml:1: databse: unknown key"),
        ("database:\n  url: [a, b]\n", "d.yml:2: database.url: must be a string"),
        ("database:\n  schema: Drover-Jobs\n", "d.yml:2: database.schema: schema name \"Drover-Jobs\" is not valid"),
        ("database: postgresql:///x\n", "d.yml:1: database: must be a mapping"),
        ("- just\n- a list\n", "d.yml:1: the top level must be a mapping"),
        ("database:\n  url: x\n  url: y\n", "d.yml:2: is not valid YAML: the key url appears twice"),
        ("database:\n  url: \"unterminated\n", "d.yml:3: is not valid YAML: found unexpected end of stream while scanning a quoted scalar that starts on line 2"),
    ])
    func errorsNameLineAndKey(_ yaml: String, _ expected: String) {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml, path: "d.yml") }
        #expect(error?.description.hasPrefix(expected) == true, "got: \(error?.description ?? "no error")")
    }

    @Test("a file its group or others can write, or that a user other than root or the one running Drover owns, is refused with the chmod or chown that fixes it; a missing file named explicitly is an error")
    func fileChecks() throws {
        let temporary = try TemporaryDirectory("drover-config")
        let directory = temporary.url
        let path = try temporary.file("database:\n  schema: s1\n")
        #expect(try ConfigurationLoader.load(path: path).database.schema == "s1")
        for (mode, words) in [(0o646, "is writable by other users (mode 0646)"), (0o664, "is writable by its group (mode 0664)"),
                              (0o666, "is writable by its group and by other users (mode 0666)"), (0o660, "is writable by its group (mode 0660)")] {
            chmod(path, mode_t(mode))
            let writable = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path) }
            #expect(writable?.description == "\(path): \(words); it decides which commands Drover runs, so Drover refuses it; run: chmod go-w \(path)",
                    "\(String(describing: writable))")
        }
        chmod(path, 0o640)
        #expect(try ConfigurationLoader.load(path: path).database.schema == "s1", "readable by its group is fine")
        if geteuid() == 0 {
            // A real file owned by someone else (root may chown; the other branch is the table below).
            let nobody = try #require(getpwnam("nobody")).pointee.pw_uid
            #expect(chown(path, nobody, 0) == 0)
            let owned = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path) }
            #expect(owned?.description == "\(path): is owned by nobody (uid \(nobody)), not by root; it decides which commands Drover runs, so Drover refuses it; run: chown root \(path)",
                    "\(String(describing: owned))")
            #expect(chown(path, 0, 0) == 0)
        }
        let missing = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: directory.appendingPathComponent("nope.yml").path, environment: [:])
        }
        #expect(missing?.description.contains("No such file") == true)
        let fromEnvironment = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: nil, environment: ["DROVER_CONFIG": directory.appendingPathComponent("env.yml").path])
        }
        #expect(fromEnvironment?.path.hasSuffix("env.yml") == true)
    }
}

@Suite("The whole configuration file")
struct FullConfigurationTests {
    static let designExample = """
        database:
          url: postgresql:///drover?host=/run/postgresql
          schema: drover
        workers:
          - queues: [critical, default, "mail*"]
            threads: 5
            processes: 2
            polling_interval: 1s
          - queues: "*"
            threads: 1
        dispatchers:
          - polling_interval: 250ms
            batch_size: 500
        handlers:
          SendReport:
            command: [/usr/local/bin/send-report, --verbose]
            timeout: 5m
            max_attempts: 10
            retry: {backoff: polynomial, base: 2s, max: 6h, jitter: 0.1}
            max_snoozes: 20
            on_failure: {class: NotifyOps, cancelled: true}
            env: {LANG: C.UTF-8}
          Cleanup:
            command: [cleanup]
            concurrency: {key: "cleanup:{table}", limit: 2, duration: 10m, on_conflict: discard}
            grace_period: 2s
            working_directory: /var/lib/drover
            user: root
        recurring:
          nightly_report: {class: SendReport, args: {kind: nightly, count: 3}, schedule: "0 3 * * *", time_zone: Europe/Berlin}
        supervisor:
          heartbeat_interval: 10s
          alive_threshold: 60s
          shutdown_timeout: 30s
          max_crashes: 3
        retention:
          preserve_finished_jobs: false
          clear_finished_after: 1d
        on_failure: PageOnCall
        """

    @Test("a handler's rate_limit: with a key from the arguments, or the class as the one key")
    func rateLimits() throws {
        let config = try ConfigurationLoader.parse("""
            handlers:
              CallStripe:
                command: [/usr/local/bin/call-stripe]
                rate_limit: {limit: 100, period: 1s}
              SyncAccount:
                command: [sync]
                rate_limit: {key: "account:{account_id}", limit: 10, period: 1m}
              Plain:
                command: [plain]
            """, path: "d.yml")
        #expect(config.handlers["CallStripe"]?.rateLimit == .init(limit: 100, period: .seconds(1)))
        #expect(config.handlers["SyncAccount"]?.rateLimit == .init(key: "account:{account_id}", limit: 10, period: .seconds(60)))
        #expect(config.handlers["Plain"]?.rateLimit == nil)
        #expect(config.rateLimitRules == [
            RateLimitRule(className: "CallStripe", keyTemplate: "CallStripe", limit: 100, period: .seconds(1)),
            RateLimitRule(className: "SyncAccount", keyTemplate: "account:{account_id}", limit: 10, period: .seconds(60)),
        ])
        var back = try ConfigurationLoader.parse(config.renderedYAML(), path: "d.yml")
        back.path = config.path
        #expect(back == config, "the rendered configuration reads back the same: \(config.renderedYAML())")
    }

    @Test("the design's example file reads as written, with defaults for what it leaves out")
    func designExampleParses() throws {
        let config = try ConfigurationLoader.parse(Self.designExample, path: "d.yml")
        #expect(config.workers.count == 2)
        #expect(config.workers[0].queues.patterns == [.exact("critical"), .exact("default"), .prefix("mail")])
        #expect(config.workers[0].threads == 5 && config.workers[0].processes == 2 && config.workers[0].pollingInterval == .seconds(1))
        #expect(config.workers[1].queues.patterns == [.all] && config.workers[1].processes == 1)
        #expect(config.dispatchers[0].pollingInterval == .milliseconds(250) && config.dispatchers[0].batchSize == 500)
        let handler = try #require(config.handlers["SendReport"])
        #expect(handler.command == ["/usr/local/bin/send-report", "--verbose"])
        #expect(handler.timeout == .seconds(300) && handler.maxAttempts == 10 && handler.environment == ["LANG": "C.UTF-8"])
        #expect(handler.gracePeriod == .seconds(10), "grace_period defaults to 10s")
        #expect(handler.retry == RetryPolicy(backoff: .polynomial, baseDelay: .seconds(2), maxDelay: .seconds(6 * 3600), jitter: 0.1))
        #expect(handler.maxSnoozes == 20)
        let cleanup = try #require(config.handlers["Cleanup"])
        #expect(cleanup.concurrency?.key == "cleanup:{table}" && cleanup.concurrency?.limit == 2)
        #expect(cleanup.concurrency?.duration == .seconds(600) && cleanup.concurrency?.onConflict == .discard)
        #expect(handler.concurrency == nil)
        #expect(cleanup.retry == nil && cleanup.maxSnoozes == 100, "no retry: the worker's policy; 100 snoozes")
        #expect(handler.onFailure == .init("NotifyOps", includeCancelled: true) && cleanup.onFailure == nil)
        #expect(config.onFailure == .init("PageOnCall"))
        #expect(config.failureHooks == [
            FailureHook(className: "SendReport", hookClass: "NotifyOps", includeCancelled: true),
            FailureHook(className: "*", hookClass: "PageOnCall"),
        ])
        #expect(config.concurrencyRules.map(\.className) == ["Cleanup"])
        #expect(cleanup.gracePeriod == .seconds(2) && cleanup.workingDirectory == "/var/lib/drover" && cleanup.user == "root")
        let task = try #require(config.recurring["nightly_report"])
        #expect(task.className == "SendReport" && task.schedule == "0 3 * * *" && task.timeZone == "Europe/Berlin")
        #expect(task.arguments.text == #"{"count":3,"kind":"nightly"}"#)
        #expect(config.supervisor.aliveThreshold == .seconds(60) && config.supervisor.maxRestarts == 10)
        #expect(!config.retention.preserveFinishedJobs && config.retention.clearFinishedAfter == .seconds(86_400))
    }

    @Test("with no file, one worker on every queue and one dispatcher run")
    func defaults() {
        let config = Configuration()
        #expect(config.workers.count == 1 && config.workers[0].queues.patterns == [.all] && config.workers[0].threads == 5)
        #expect(config.dispatchers.count == 1)
        #expect(config.supervisor.heartbeatInterval == .seconds(10) && config.supervisor.shutdownTimeout == .seconds(30))
    }

    @Test("the rendered configuration reads back as the same configuration")
    func renderingRoundTrips() throws {
        let config = try ConfigurationLoader.parse(Self.designExample, path: "d.yml")
        var back = try ConfigurationLoader.parse(config.renderedYAML(), path: "d.yml")
        back.path = config.path
        #expect(back == config)
        let secret = try ConfigurationLoader.parse("database:\n  url: postgresql://u:hunter22@h/db\n", path: "d.yml")
        #expect(secret.renderedYAML().contains("postgresql://u:***@h/db"))
        #expect(!secret.renderedYAML().contains("hunter22"))
    }

    @Test("every wrong type, impossible value and unknown key names the file, the line and the key", arguments: [
        ("workers:\n  - threads: 0\n", "d.yml:2: workers[0].threads: 0 is out of range: use 1 to 256"),
        ("workers:\n  - threads: five\n", "d.yml:2: workers[0].threads: must be a whole number from 1 to 256"),
        ("workers:\n  - queues: [a]\n  - queues: [\"*mail\"]\n", "d.yml:3: workers[1].queues: queue pattern \"*mail\" is not valid"),
        ("workers:\n  - polling_interval: 10\n", "d.yml:2: workers[0].polling_interval: \"10\" is not a duration; use 500ms, 30s, 5m, 1h30m or 2d (a bare number has no unit: write 10s)"),
        ("workers:\n  - polling_interval: 2h\n", "d.yml:2: workers[0].polling_interval: 2h is out of range: use 10ms to 1h"),
        ("workers:\n  - thread: 5\n", "d.yml:2: workers[0].thread: unknown key; the keys allowed here are: queues, threads, processes, polling_interval"),
        ("workers:\n  queues: [a]\n", "d.yml:2: workers: must be a list"),
        ("dispatchers:\n  - batch_size: many\n", "d.yml:2: dispatchers[0].batch_size: must be a whole number from 1 to 10000"),
        ("handlers:\n  Send:\n    command: []\n", "d.yml:3: handlers.Send.command: must name a program"),
        ("handlers:\n  Send:\n    command: /bin/true\n", "d.yml:3: handlers.Send.command: must be a list"),
        ("handlers:\n  Send:\n    timeout: 5m\n", "d.yml:2: handlers.Send: needs a command"),
        ("handlers:\n  \"Send Report\":\n    command: [/bin/true]\n", "d.yml:2: handlers.Send Report: the handler's name is a job class"),
        ("handlers:\n  Send:\n    command: [/bin/true]\n    working_directory: tmp\n", "d.yml:4: handlers.Send.working_directory: must be an absolute path"),
        ("handlers:\n  Send:\n    command: [/bin/true]\n    env: [A]\n", "d.yml:4: handlers.Send.env: must be a mapping"),
        ("handlers:\n  Send:\n    command: [/bin/true]\n    user: no-such-user-here\n",
         "d.yml:4: handlers.Send.user: no user named \"no-such-user-here\" on this host"),
        ("handlers:\n  Send:\n    command: [/bin/true]\n    grace_period: 50ms\n", "d.yml:4: handlers.Send.grace_period:"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {backoff: linear}\n",
         "d.yml:4: handlers.S.retry.backoff: must be exponential, polynomial or fixed, not \"linear\""),
        ("handlers:\n  S:\n    command: [x]\n    retry: {base: 0s}\n", "d.yml:4: handlers.S.retry.base: 0s is out of range: use 1ms to 30d"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {base: 10}\n", "d.yml:4: handlers.S.retry.base: \"10\" is not a duration"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {max: 60d}\n", "d.yml:4: handlers.S.retry.max: 60d is out of range: use 1ms to 30d"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {base: 2h, max: 1h}\n", "d.yml:4: handlers.S.retry: max (1h) must be at least base (2h)"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {jitter: 2}\n", "d.yml:4: handlers.S.retry.jitter: 2 is out of range: use 0 to 1"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {jitter: lots}\n", "d.yml:4: handlers.S.retry.jitter: must be a number from 0 to 1"),
        ("handlers:\n  S:\n    command: [x]\n    retry: {delay: 5s}\n", "d.yml:4: handlers.S.retry.delay: unknown key; the keys allowed here are: backoff, base, max, jitter"),
        ("handlers:\n  S:\n    command: [x]\n    retry: exponential\n", "d.yml:4: handlers.S.retry: must be a mapping"),
        ("handlers:\n  S:\n    command: [x]\n    on_failure: \"Notify Ops\"\n", "d.yml:4: handlers.S.on_failure: names the job class to enqueue"),
        ("handlers:\n  S:\n    command: [x]\n    on_failure: {cancelled: true}\n", "d.yml:4: handlers.S.on_failure: needs a class"),
        ("handlers:\n  S:\n    command: [x]\n    on_failure: {class: N, cancelled: maybe}\n", "d.yml:4: handlers.S.on_failure.cancelled: must be true or false"),
        ("handlers:\n  S:\n    command: [x]\n    on_failure: {class: N, queue: q}\n", "d.yml:4: handlers.S.on_failure.queue: unknown key"),
        ("on_failure: [A]\n", "d.yml:1: on_failure: must be a mapping"),
        ("handlers:\n  S:\n    command: [x]\n    max_snoozes: -1\n", "d.yml:4: handlers.S.max_snoozes: -1 is out of range: use 0 to 1000000"),
        ("recurring:\n  r:\n    class: C\n    schedule: \"0 25 * * *\"\n", "d.yml:4: recurring.r.schedule: schedule \"0 25 * * *\": hour 25 is out of range 0–23"),
        ("recurring:\n  report:\n    class: C\n    schedule: \"0 0 30 2 *\"\n",
         "d.yml:4: recurring.report.schedule: schedule \"0 0 30 2 *\" can never run: February has no day 30"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {limit: 2}\n", "d.yml:4: handlers.S.rate_limit: needs a period, such as 1s"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {period: 1s}\n", "d.yml:4: handlers.S.rate_limit: needs a limit"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {limit: 0, period: 1s}\n", "d.yml:4: handlers.S.rate_limit.limit: 0 is out of range: use 1 to 10000"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {limit: 5, period: 500ms}\n", "d.yml:4: handlers.S.rate_limit.period:"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {limit: 5, period: 8d}\n", "d.yml:4: handlers.S.rate_limit.period:"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {key: \"a:{id\", limit: 1, period: 1s}\n", "d.yml:4: handlers.S.rate_limit.key: has unbalanced braces"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: {limit: 1, period: 1s, burst: 3}\n", "d.yml:4: handlers.S.rate_limit.burst: unknown key"),
        ("handlers:\n  S:\n    command: [x]\n    rate_limit: 10\n", "d.yml:4: handlers.S.rate_limit: must be a mapping"),
        ("handlers:\n  S:\n    command: [x]\n    concurrency: {limit: 2}\n", "d.yml:4: handlers.S.concurrency: needs a key"),
        ("handlers:\n  S:\n    command: [x]\n    concurrency: {key: \"a:{id}\"}\n", "d.yml:4: handlers.S.concurrency: needs a limit"),
        ("handlers:\n  S:\n    command: [x]\n    concurrency: {key: \"a:{id\", limit: 1}\n", "d.yml:4: handlers.S.concurrency.key: has unbalanced braces"),
        ("handlers:\n  S:\n    command: [x]\n    concurrency: {key: k, limit: 0}\n", "d.yml:4: handlers.S.concurrency.limit:"),
        ("handlers:\n  S:\n    command: [x]\n    concurrency: {key: k, limit: 1, on_conflict: queue}\n",
         "d.yml:4: handlers.S.concurrency.on_conflict: must be block or discard, not \"queue\""),
        ("recurring:\n  r:\n    class: C\n    schedule: \"@daily\"\n    time_zone: Nowhere/Town\n",
         "d.yml:5: recurring.r.time_zone: time zone \"Nowhere/Town\" is not in the time zone database"),
        ("recurring:\n  nightly: {schedule: \"0 3 * * *\"}\n", "d.yml:2: recurring.nightly: needs a class"),
        ("recurring:\n  nightly: {class: X}\n", "d.yml:2: recurring.nightly: needs a schedule"),
        ("recurring:\n  nightly: {class: X, schedule: \"@daily\", priority: 99999}\n", "d.yml:2: recurring.nightly.priority: 99999 is out of range"),
        ("recurring:\n  nightly: {class: X, schedule: \"@daily\", args: 5}\n", "d.yml:2: recurring.nightly.args: must be a mapping or a list"),
        ("supervisor:\n  heartbeat_interval: 10s\n  alive_threshold: 15s\n", "d.yml:3: supervisor.alive_threshold: 15s is less than twice heartbeat_interval (10s)"),
        ("supervisor:\n  max_crashes: 0\n", "d.yml:2: supervisor.max_crashes: 0 is out of range: use 1 to 1000"),
        ("retention:\n  preserve_finished_jobs: yes\n", "d.yml:2: retention.preserve_finished_jobs: must be true or false"),
        ("retention:\n  keep: 1d\n", "d.yml:2: retention.keep: unknown key"),
    ])
    func errors(_ yaml: String, _ expected: String) {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml, path: "d.yml") }
        #expect(error?.description.hasPrefix(expected) == true, "got: \(error?.description ?? "no error")")
    }
}

@Suite("Which database: --database-url, DROVER_DATABASE_URL, database.url, libpq defaults, SQLite")
struct DatabaseLocationTests {
    let config = Configuration(database: .init(url: "postgresql:///from_config", schema: "cfg"), path: "/etc/drover/drover.yml")

    @Test("the command line wins over everything")
    func commandLineFirst() {
        let location = DatabaseLocation.resolve(
            commandLineURL: "postgresql:///from_flag", environment: ["DROVER_DATABASE_URL": "postgresql:///from_env"],
            configuration: config)
        #expect(location.connectionString == "postgresql:///from_flag")
        #expect(location.source == .commandLine)
        #expect(location.schema == "cfg", "the schema still comes from the file")
    }

    @Test("then the environment, then the file, then libpq's defaults when PGHOST, PGDATABASE or PGSERVICE is set")
    func thenEnvironmentThenFileThenDefaults() {
        let env = DatabaseLocation.resolve(
            commandLineURL: nil, environment: ["DROVER_DATABASE_URL": "postgresql:///from_env"], configuration: config)
        #expect(env.connectionString == "postgresql:///from_env")
        #expect(env.source == .environment)
        let file = DatabaseLocation.resolve(commandLineURL: nil, environment: ["DROVER_DATABASE_URL": ""], configuration: config)
        #expect(file.connectionString == "postgresql:///from_config")
        #expect(file.source == .configurationFile(path: "/etc/drover/drover.yml"))
        for variable in ["PGHOST", "PGDATABASE", "PGSERVICE"] {
            let defaults = DatabaseLocation.resolve(commandLineURL: nil, environment: [variable: "x"], configuration: nil)
            #expect(defaults.connectionString == "")
            #expect(defaults.source == .libpqDefaults)
            #expect(defaults.schema == "drover")
            #expect(!defaults.isSQLite)
        }
    }

    @Test("with nothing configured: SQLite in $STATE_DIRECTORY (its first directory), else in the working directory")
    func embeddedDefault() {
        let systemd = DatabaseLocation.resolve(
            commandLineURL: nil, environment: ["STATE_DIRECTORY": "/var/lib/drover:/var/lib/other"], configuration: nil)
        #expect(systemd.connectionString == "sqlite:///var/lib/drover/drover.sqlite3")
        #expect(systemd.source == .embeddedDefault)
        #expect(systemd.isSQLite)
        let here = DatabaseLocation.resolve(commandLineURL: nil, environment: [:], configuration: nil)
        #expect(here.connectionString == "sqlite://" + FileManager.default.currentDirectoryPath + "/drover.sqlite3")
    }

    @Test("sqlite: URLs: absolute, relative to the working directory, or anything else is PostgreSQL's")
    func sqliteURLs() {
        let cwd = FileManager.default.currentDirectoryPath
        #expect(DatabaseLocation.sqlitePath("sqlite:///var/lib/drover/q.sqlite3") == "/var/lib/drover/q.sqlite3")
        #expect(DatabaseLocation.sqlitePath("sqlite:q.sqlite3") == cwd + "/q.sqlite3")
        #expect(DatabaseLocation.sqlitePath("sqlite://data/../q.sqlite3") == cwd + "/q.sqlite3")
        #expect(DatabaseLocation.sqlitePath("sqlite:") == nil)
        #expect(DatabaseLocation.sqlitePath("postgresql:///drover") == nil)
        #expect(DatabaseLocation.sqlitePath("host=/run/postgresql dbname=sqlite") == nil)
        let location = DatabaseLocation(connectionString: "sqlite:q.sqlite3", source: .commandLine, schema: "drover")
        #expect(location.connectionString == "sqlite://" + cwd + "/q.sqlite3", "made absolute, for every child")
    }

    @Test("--schema overrides the file's schema")
    func schemaFlag() {
        let location = DatabaseLocation.resolve(commandLineURL: nil, commandLineSchema: "other", environment: [:], configuration: config)
        #expect(location.schema == "other")
    }
}

@Suite("Who may write the configuration file: a decision table")
struct FileGuardTests {
    static func name(_ uid: uid_t) -> String? { [0: "root", 998: "drover", 1000: "alice"][uid] }

    @Test("owner and mode against the user running Drover", arguments: [
        // (mode, owner, running as, problem or nil)
        (0o644, 0, 0, nil), (0o640, 0, 998, nil), (0o600, 998, 998, nil), (0o444, 1000, 1000, nil),
        (0o644, 1000, 0, "is owned by alice (uid 1000), not by root; it decides which commands Drover runs, so Drover refuses it; run: chown root /c"),
        (0o644, 1000, 998, "is owned by alice (uid 1000), not by root or drover (uid 998), the user running Drover; it decides which commands Drover runs, so Drover refuses it; run: chown root /c (or chown drover /c)"),
        (0o644, 4242, 0, "is owned by uid 4242, not by root; it decides which commands Drover runs, so Drover refuses it; run: chown root /c"),
        (0o664, 0, 0, "is writable by its group (mode 0664); it decides which commands Drover runs, so Drover refuses it; run: chmod go-w /c"),
        (0o602, 998, 998, "is writable by other users (mode 0602); it decides which commands Drover runs, so Drover refuses it; run: chmod go-w /c"),
        (0o4777, 0, 0, "is writable by its group and by other users (mode 4777); it decides which commands Drover runs, so Drover refuses it; run: chmod go-w /c"),
    ] as [(Int, Int, Int, String?)])
    func table(_ mode: Int, _ owner: Int, _ running: Int, _ problem: String?) {
        #expect(FileGuard.problem(mode: mode_t(mode), owner: uid_t(owner), runningAs: uid_t(running), path: "/c", name: Self.name) == problem)
    }
}
