import DroverPersistence
import DroverQueue
import Foundation
import Synchronization

/// Builds an app's services (a database pool, an HTTP client) once per worker process, when the
/// worker starts: `Drover.main(jobs:services:)`'s closure. Every job of that worker gets the same
/// value through ``JobContext/services(_:)``.
public typealias ServicesSetup = @Sendable () async throws -> any Sendable

/// Services that must be closed when their worker stops: `shutdown()` is called once, after the
/// worker's last job, on a graceful stop (SIGTERM, a reload, `drover start` stopping). Not when
/// the worker lost its lease or was killed: those exit at once.
///
/// ```swift
/// final class AppServices: ServicesShutdown {
///     let pool: ConnectionPool
///     init() async throws { pool = try await ConnectionPool.connect() }
///     func shutdown() async throws { try await pool.close() }
/// }
/// ```
public protocol ServicesShutdown: Sendable {
    func shutdown() async throws
}

/// A job asked its context for services it does not have.
public struct ServicesError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// The worker (or the test's context) has no services at all.
        case missing
        /// It has services of another type than the one asked for.
        case wrongType
    }

    public let code: Code
    /// The type the job asked for, module-qualified (`Signup.AppServices`).
    public let expected: String
    /// The type of the services there are; nil when there are none.
    public let actual: String?
    public let jobID: Int
    public let className: String

    public var description: String {
        let asked = "job \(jobID) (\(className)) asked for services of type \(expected)"
        switch code {
        case .missing:
            return "\(asked), but its worker has none: give Drover.main(jobs:services:) a closure that builds them, "
                + "such as services: { try await \(Self.shortName(expected))() } (in a test, JobContext(services:))"
        case .wrongType:
            return "\(asked), but its worker's services are of type \(actual ?? "?"): ask for that type, or have "
                + "Drover.main(jobs:services:) build a \(Self.shortName(expected))"
        }
    }

    static func shortName(_ name: String) -> String { name.split(separator: ".").last.map(String.init) ?? name }
}

/// The services of one worker process, from start to stop. Setup and shutdown are async; the
/// worker's loop is not, so its main thread waits for them in ``ChildRuntime/wait(for:timeout:)``,
/// which keeps the signs of life going to the supervisor (a slow connect is not a hang) and
/// reads signals (a TERM during setup cancels it).
enum WorkerServices {
    enum Started {
        /// Built (or none were asked for: nil).
        case ready((any Sendable)?)
        /// Asked to stop before the setup finished: the setup was cancelled.
        case stopped
    }

    /// Why a worker could not start: the app's setup threw. The status is ``ExitStatus/transient``:
    /// the setup is the app's code, and what it fails on (a database not up yet, a name that does
    /// not resolve yet) usually passes, so the supervisor starts the worker again after its
    /// restart backoff rather than retiring the slot.
    struct SetupFailed: Error, CustomStringConvertible {
        let errorType: String
        let message: String
        var description: String { "the services setup threw \(errorType): \(message)" }
    }

    /// Runs `setup` and waits for it. Its error is logged by the caller, its type named and the
    /// worker's own database secrets masked in its message.
    static func start<Driver>(_ setup: ServicesSetup?, runtime: ChildRuntime<Driver>) throws -> Started {
        guard let setup else { return .ready(nil) }
        let started = ContinuousClock.now
        runtime.log.debug("building the services")
        switch runtime.awaitTask(cancelOnStop: true, setup) {
        case .finished(.success(let services)):
            runtime.log.info("services ready", [
                ("type", String(reflecting: type(of: services))),
                ("took", DurationText.format(ContinuousClock.now - started)),
            ])
            return .ready(services)
        case .finished(.failure(let error)) where runtime.stopping && error is CancellationError:
            return .stopped
        case .finished(.failure(let error)):
            throw SetupFailed(errorType: String(reflecting: type(of: error)), message: runtime.masked("\(error)"))
        case .stoppedWaiting:
            return .stopped
        }
    }

    /// Calls `services`' ``ServicesShutdown/shutdown()`` if it has one. It may take what is left
    /// of `shutdown_timeout` and a second more (the supervisor kills its children 2 s after that);
    /// an error, or a shutdown still running then, is logged and the worker exits as it would have.
    static func shutdown<Driver>(_ services: (any Sendable)?, runtime: ChildRuntime<Driver>) {
        guard let closable = services as? any ServicesShutdown else { return }
        let stopBy = runtime.stopDeadline ?? .now + Duration(milliseconds: runtime.spec.shutdownTimeoutMilliseconds)
        let deadline = max(ContinuousClock.now + .milliseconds(500), stopBy + .seconds(1))
        switch runtime.awaitTask(cancelOnStop: false, deadline: deadline, { try await closable.shutdown() }) {
        case .finished(.success):
            runtime.log.info("services shut down")
        case .finished(.failure(let error)):
            runtime.log.error("the services' shutdown failed", [
                ("error_type", String(reflecting: type(of: error))), ("error", runtime.masked("\(error)")),
            ])
        case .stoppedWaiting:
            runtime.log.warning("the services' shutdown did not end within shutdown_timeout; exiting without it")
        }
    }
}

extension ChildRuntime {
    enum TaskOutcome<T> {
        case finished(Result<T, any Error>)
        /// The deadline passed, or a stop came (`cancelOnStop`) and the task did not end within a
        /// second of its cancellation.
        case stoppedWaiting
    }

    /// Runs `operation` as a task and waits for it on this thread, sending signs of life and
    /// reading signals meanwhile. With `cancelOnStop`, a stop (TERM, the supervisor's death)
    /// cancels the task.
    func awaitTask<T: Sendable>(
        cancelOnStop: Bool, deadline: ContinuousClock.Instant? = nil, _ operation: @escaping @Sendable () async throws -> T
    ) -> TaskOutcome<T> {
        let done = Wakeup()
        let result = Mutex<Result<T, any Error>?>(nil)
        let task = Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await operation()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        var cancelledAt: ContinuousClock.Instant?
        while true {
            if let finished = result.withLock({ $0 }) { return .finished(finished) }
            if cancelOnStop && stopping && cancelledAt == nil {
                task.cancel()
                cancelledAt = .now
            }
            var limit = deadline
            if let cancelledAt { limit = min(limit ?? cancelledAt + .seconds(1), cancelledAt + .seconds(1)) }
            if let limit, ContinuousClock.now >= limit {
                task.cancel()
                return .stoppedWaiting
            }
            let timeout = limit.map { ContinuousClock.now.duration(to: $0) } ?? heartbeatInterval
            let readable = wait(for: [done.descriptor], timeout: timeout)
            if readable.contains(done.descriptor) { done.drain() }
        }
    }

    /// `text` with the secrets this process knows masked: the database URL's passwords and the
    /// supervisor's `PGPASSWORD`. For messages of the app's code, which may quote them.
    func masked(_ text: String) -> String {
        Connection.redacting(text, secretsOf: spec.databaseURL, password: spec.pgpassword)
    }
}
