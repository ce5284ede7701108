import DroverPersistence
import DroverQueue
import Foundation

/// Something a child serves beside the runtime's loop, provided by a layer above the runtime:
/// the web dashboard (`DroverWeb`), which the runtime does not depend on. The supervisor only
/// spawns `drover _child web`; `drover`'s `_child` hands ``runChildProcess(extraHandlers:services:jobServices:)``
/// the factory that makes it.
///
/// ```swift
/// exit(runChildProcess(services: [.web: { spec, log in try WebChildService(spec: spec, log: log) }]))
/// ```
public protocol ChildService: AnyObject {
    /// Begins serving, returning at once; ``state`` says when it serves or why it could not.
    func start()
    var state: ChildServiceState { get }
    /// What its heartbeats write into `processes.metadata` (the address it listens on, say).
    var metadata: JSON { get }
    /// Stops gracefully (what is in flight finishes), within `timeout`.
    func stop(timeout: Duration)
}

public enum ChildServiceState: Sendable, Equatable {
    case starting
    case serving
    /// It stopped, or could not start; the child exits with `status` (``ExitStatus/transient``:
    /// started again after the backoff; ``ExitStatus/config``: not started again; anything
    /// else: a crash, started again after the backoff).
    case failed(String, status: ExitStatus)
}

/// Makes the service of a child from its spec; throwing ``ValidationFailure`` says that its part
/// of the configuration cannot work (exit 78), ``TransientFailure`` that it may work later.
public typealias ChildServiceFactory = @Sendable (ChildSpec, Log) throws -> any ChildService

/// A child that runs a ``ChildService``: it starts the service, registers once it serves, heartbeats
/// and gives signs of life like every child, and stops the service on TERM, on its supervisor's
/// death, or when its registration is pruned. A service that stops by itself makes it exit to be
/// replaced.
final class ServiceChild<Driver: RuntimeDriver> {
    private let runtime: ChildRuntime<Driver>
    private let service: any ChildService
    private var log: Log { runtime.log }

    init(runtime: ChildRuntime<Driver>, service: any ChildService) {
        self.runtime = runtime
        self.service = service
    }

    func run() -> Int32 {
        service.start()
        while service.state == .starting, !runtime.stopping {
            _ = runtime.wait(timeout: .milliseconds(50))
        }
        if runtime.stopping {
            service.stop(timeout: Duration(milliseconds: runtime.spec.shutdownTimeoutMilliseconds))
            return ExitStatus.ok.rawValue
        }
        if case .failed(let reason, let status) = service.state {
            log.error("cannot serve", [("error", reason), ("status", String(status.rawValue))])
            return status.rawValue
        }
        guard runtime.register(metadata: service.metadata) else {
            service.stop(timeout: Duration(milliseconds: runtime.spec.shutdownTimeoutMilliseconds))
            return ExitStatus.ok.rawValue
        }
        while true {
            if runtime.stopping {
                service.stop(timeout: Duration(milliseconds: runtime.spec.shutdownTimeoutMilliseconds))
                runtime.deregister()
                return ExitStatus.ok.rawValue
            }
            if case .failed(let reason, let status) = service.state {
                log.error("stopped serving by itself; exiting to be replaced", [("error", reason)])
                runtime.deregister()
                return status == .ok ? ExitStatus.software.rawValue : status.rawValue
            }
            if let status = runtime.heartbeatIfDue(metadata: service.metadata) {
                service.stop(timeout: .seconds(1))
                return status
            }
            var deadlines = [runtime.nextHeartbeat]
            if let retry = runtime.session.nextRetry { deadlines.append(retry) }
            // The wait is at most a quarter of a heartbeat interval, so a failed service is seen soon.
            _ = runtime.wait(timeout: ContinuousClock.now.duration(to: deadlines.min()!))
        }
    }
}
