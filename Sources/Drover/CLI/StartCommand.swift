import ArgumentParser
import DroverRuntime
import DroverWeb
import Foundation

/// `drover start`: the supervisor, which the systemd service runs.
struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Run the supervisor: start the configured workers and dispatchers and keep them running.",
        discussion: """
            Signals: TERM or INT stop gracefully (children finish their jobs within shutdown_timeout; \
            what is left is released), QUIT stops at once (jobs are released), HUP reloads the \
            configuration file. Under systemd (Type=notify) it reports READY, STATUS, WATCHDOG, \
            RELOADING and STOPPING. While the database is unreachable it waits for it.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "Log this level and above: debug, info, warning or error (default: $DROVER_LOG_LEVEL, else info). Under "
            + "systemd the log goes to the journal with structured fields; otherwise logfmt lines on stderr.",
        valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, Log.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level \"\(logLevel)\" is not a level; use debug, info, warning or error")
        }
    }

    func run() throws {
        var environment = ProcessInfo.processInfo.environment
        let level = try reportingErrors { try Self.level(logLevel, environment: environment) }
        Log.configure(minimum: level, environment: environment)
        // The children log at the same level.
        environment["DROVER_LOG_LEVEL"] = level.rawValue
        let configuration = try reportingErrors {
            try ConfigurationLoader.load(explicitPath: database.configPath, environment: environment) ?? Configuration()
        }
        var options = Supervisor.Options(
            configuration: configuration, configPath: database.configPath, commandLineURL: database.databaseURL,
            commandLineSchema: database.schema, environment: environment,
            testHandlers: environment["DROVER_TEST_HANDLERS"] == "1")
        options.jobConcurrencyRules = Drover.registeredJobs.withLock { $0.concurrencyRules }
        options.jobRateLimitRules = Drover.registeredJobs.withLock { $0.rateLimitRules }
        options.jobFailureHooks = Drover.registeredJobs.withLock { $0.failureHooks }
        options.jobClasses = Set(Drover.registeredJobs.withLock { $0.classNames })
        let supervisor = try reportingErrors { try Supervisor(options: options) }
        let status = supervisor.run()
        if status != 0 { throw ExitCode(status) }
    }
}

extension StartCommand {
    /// `--log-level`, else `$DROVER_LOG_LEVEL`, else info.
    static func level(_ option: String?, environment: [String: String]) throws -> Log.Level {
        if let option { return Log.Level(rawValue: option) ?? .info }
        guard let text = environment["DROVER_LOG_LEVEL"], !text.isEmpty else { return .info }
        guard let level = Log.Level(rawValue: text) else {
            throw ConfigurationError(path: "the environment", key: "DROVER_LOG_LEVEL",
                                     message: "\"\(text)\" is not a level; use debug, info, warning or error")
        }
        return level
    }
}

/// `drover _child KIND`: a worker, dispatcher, scheduler or web dashboard, started by `drover start` with its spec
/// on descriptor 5 (``ChildSpec/read()``). The kind in argv is for people (`ps`); the spec decides.
struct ChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_child", abstract: "A supervisor's child process (started by drover start).", shouldDisplay: false)

    @Argument(help: "What the child is (worker, dispatcher, scheduler or web), for ps; its spec decides.")
    var kind: String?

    func run() throws {
        let status = Self.runChild()
        if status != 0 { throw ExitCode(status) }
    }

    /// Runs the child its supervisor described; returns its exit status.
    static func runChild() -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        Log.configure(minimum: environment["DROVER_LOG_LEVEL"].flatMap(Log.Level.init(rawValue:)) ?? .info, environment: environment)
        return runChildProcess(extraHandlers: Drover.registeredJobs.withLock { $0 }, services: WebChild.services,
                               jobServices: Drover.registeredServices.withLock { $0 })
    }
}
