import ArgumentParser
import DroverQueue
import DroverRuntime
import Foundation
// An app names `Logger` and `LogHandler` (its job's `context.logger`, `main(jobs:logHandler:)`)
// with `import Drover` alone.
@_exported import Logging
import Synchronization

/// Drover's swift-log handler: logfmt lines on stderr, or journald with structured fields.
public typealias DroverLogHandler = DroverRuntime.DroverLogHandler

/// Drover's entry points.
///
/// The `drover` binary is `Drover.main()`. An application that embeds Drover calls it from its own
/// `main` to give its executable the whole command line.
public enum Drover {
    /// This release.
    public static let version = "0.1.0"

    /// Gives the app's executable the whole `drover` command line, with workers that run `jobs`
    /// (besides the commands of the configuration's `handlers:`, which win on a shared class name):
    /// `myapp start` supervises worker processes that are `myapp` itself.
    ///
    /// `services` builds what the jobs need from the app (a database pool, an HTTP client) once
    /// per worker process, when the worker starts; every job of that worker gets the same value
    /// through `try context.services(AppServices.self)`. Services that adopt ``ServicesShutdown``
    /// are shut down when the worker stops gracefully, after its last job. Only workers run it:
    /// not the supervisor, the dispatcher, the scheduler or the other commands. A setup that
    /// throws makes the worker log the error (its type, and its message with the database's
    /// password masked) and exit 71: the supervisor starts it again after its restart backoff.
    ///
    /// Every line, Drover's own and each job's `context.logger`'s, goes through swift-log. It
    /// bootstraps the logging system with `logHandler` when given, else with ``DroverLogHandler``
    /// (logfmt on stderr, or journald), in every process (the workers run `main` again). The
    /// logging system can be bootstrapped once per process: an app that gives `logHandler` does
    /// not call `LoggingSystem.bootstrap` itself. Drover sets the level of the loggers it makes,
    /// its own and the jobs', to `--log-level` (or `DROVER_LOG_LEVEL`, else info).
    ///
    /// ```swift
    /// // Sources/MyApp/main.swift
    /// import Drover
    /// Drover.main(jobs: [SendWelcomeEmail.self, ResizeImage.self])
    ///
    /// // with services built once per worker, and the app's own handler for every line:
    /// Drover.main(jobs: [SendWelcomeEmail.self], services: { try await AppServices() },
    ///             logHandler: { label in JSONLogHandler(label: label) })
    /// ```
    public static func main(
        jobs: [any Job.Type], services: ServicesSetup? = nil, arguments: [String]? = nil,
        logHandler: (@Sendable (_ label: String) -> any LogHandler)? = nil
    ) -> Never {
        // A job type's retry policy out of range is the app's bug: said before anything starts.
        for type in jobs {
            if let problem = type.retryPolicy?.problem() {
                printError("drover: error: \(String(reflecting: type)).retryPolicy: \(problem)")
                exit(ExitStatus.config.rawValue)
            }
            if let hook = type.onFailure {
                do { try JobRules.checkClassName(hook.hookClass) } catch {
                    printError("drover: error: \(String(reflecting: type)).onFailure: \(error.message)")
                    exit(ExitStatus.config.rawValue)
                }
            }
            if let limit = type.rateLimit {
                do { try limit.rule(for: type.className).check() } catch {
                    printError("drover: error: \(String(reflecting: type)).rateLimit: \(error.message)")
                    exit(ExitStatus.config.rawValue)
                }
            }
            if !SnoozeRules.maxSnoozesRange.contains(type.maxSnoozes) {
                printError("drover: error: \(String(reflecting: type)).maxSnoozes: \(type.maxSnoozes) is out of range: use 0 to 1000000")
                exit(ExitStatus.config.rawValue)
            }
        }
        registeredJobs.withLock { $0 = JobHandlers(jobs: jobs) }
        registeredServices.withLock { $0 = services }
        LoggingSystem.bootstrap(logHandler ?? { DroverLogHandler(label: $0) })
        run(arguments)
    }

    /// The Swift job types of `main(jobs:)`, for the worker processes `_child` starts.
    static let registeredJobs = Mutex(JobHandlers())
    /// The services setup of `main(jobs:services:)`, which only worker processes run.
    static let registeredServices = Mutex<ServicesSetup?>(nil)

    /// Runs the `drover` command line with `arguments` (default: the process's) and exits, logging
    /// through ``DroverLogHandler``.
    public static func main(_ arguments: [String]? = nil) -> Never {
        LoggingSystem.bootstrap { DroverLogHandler(label: $0) }
        run(arguments)
    }

    private static func run(_ arguments: [String]?) -> Never {
        if arguments == nil, let message = ProcessArguments.invalidUTF8Message(ProcessArguments.bytes) {
            printError("drover: error: \(message)")
            exit(ExitStatus.usage.rawValue)
        }
        let arguments = arguments ?? Array(ProcessArguments.all.dropFirst())
        // The supervisor and its children read signals from a signalfd: block them before any
        // thread exists, so that every thread inherits the mask (docs/architecture.md).
        if let command = arguments.first, ["start", "_child", "web"].contains(command) {
            Signals.block()
        }
        // A child process goes straight to its work: the command-line parser is not needed (and
        // not paged in: about 0.4 MiB of each worker's resident memory).
        if arguments.first == "_child", arguments.count <= 2, arguments.dropFirst().allSatisfy({ !$0.hasPrefix("-") }) {
            exit(ChildCommand.runChild())
        }
        if let message = JobID.negativeIDMessage(arguments) {
            printError("Error: \(message)")
            exit(ExitStatus.usage.rawValue)
        }
        if let first = arguments.first, !first.hasPrefix("-"), let message = UnknownCommand.message(for: first) {
            printError("drover: error: \(message)")
            exit(ExitStatus.usage.rawValue)
        }
        DroverCommand.main(arguments)
        exit(0)
    }
}
