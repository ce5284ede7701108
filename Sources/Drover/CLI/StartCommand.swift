import ArgumentParser
import DroverRuntime
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

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try reportingErrors {
            try ConfigurationLoader.load(explicitPath: database.configPath, environment: environment) ?? Configuration()
        }
        var options = Supervisor.Options(
            configuration: configuration, configPath: database.configPath, commandLineURL: database.databaseURL,
            commandLineSchema: database.schema, environment: environment,
            testHandlers: environment["DROVER_TEST_HANDLERS"] == "1")
        options.jobConcurrencyRules = Drover.registeredJobs.withLock { $0.concurrencyRules }
        let supervisor = try reportingErrors { try Supervisor(options: options) }
        let status = supervisor.run()
        if status != 0 { throw ExitCode(status) }
    }
}

/// `drover _child`: a worker or dispatcher, started by `drover start` with its spec in the environment.
struct ChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_child", abstract: "A supervisor's child process (started by drover start).", shouldDisplay: false)

    func run() throws {
        let status = runChildProcess(extraHandlers: Drover.registeredJobs.withLock { $0 })
        if status != 0 { throw ExitCode(status) }
    }
}
