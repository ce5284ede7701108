import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The dashboard's HTTP server (Hummingbird): the routes of ``WebRoutes/all`` behind
/// ``SecurityMiddleware``, on the address of its ``WebSettings``. `drover web` runs one in the
/// foreground; the supervisor's web child runs one as its ``ChildService``.
///
/// It runs on Hummingbird's event loops and Swift's concurrency threads, beside the thread that
/// started it, which keeps reading signals: ``start()`` returns at once, ``state`` says when it
/// serves, ``stop(timeout:)`` stops it gracefully (in-flight requests finish, idle connections
/// close).
///
/// ```swift
/// let server = try WebServer(settings: settings)
/// server.start()
/// while server.state == .starting { … }
/// server.stop(timeout: .seconds(5))
/// ```
public final class WebServer: ChildService, @unchecked Sendable {
    // @unchecked: the mutable state is behind `lock`.
    public let settings: WebSettings
    public let store: WebStore
    let csrfToken = Secrets.randomToken()
    let templates: Templates
    private let lock = NSLock()
    private var _state = ChildServiceState.starting
    private var group: ServiceGroup?
    private var stopping = false
    private var boundAddress: String?
    /// The unix socket's file, to remove it on the way out only if it is still this server's.
    private var socketInode: ino_t?
    private var requests = 0
    private let finished = DispatchSemaphore(value: 0)

    public init(settings: WebSettings) throws {
        self.settings = settings
        store = WebStore(url: settings.databaseURL, options: settings.storeOptions)
        templates = try Templates()
    }

    public var state: ChildServiceState { lock.withLock { _state } }

    /// Where it listens (the port it got, for port 0), once it serves.
    public var address: String? { lock.withLock { boundAddress } }

    public var metadata: JSON {
        let (address, requests) = lock.withLock { (boundAddress ?? settings.listen.description, self.requests) }
        struct Metadata: Encodable {
            let listen: String
            let readOnly: Bool
            let authentication: Bool
            let requests: Int
        }
        return (try? JSON(encoding: Metadata(listen: address, readOnly: settings.readOnly,
                                             authentication: settings.requiresPassword, requests: requests))) ?? .emptyObject
    }

    public func start() {
        Task { await serve() }
    }

    public func stop(timeout: Duration) {
        let group: ServiceGroup? = lock.withLock {
            stopping = true
            return self.group
        }
        if let group { Task { await group.triggerGracefulShutdown() } }
        if finished.wait(timeout: .now() + timeout.seconds) == .timedOut {
            settings.log.warning("the web server did not stop within the shutdown timeout; leaving its connections")
        }
    }

    private func serve() async {
        defer {
            removeSocketFile()
            finished.signal()
        }
        let deadline = ContinuousClock.now + settings.addressInUseWait
        var logged = false
        while true {
            let group = ServiceGroup(configuration: .init(
                services: [makeApplication()], gracefulShutdownSignals: [], cancellationSignals: [], logger: hummingbirdLogger))
            let stopNow: Bool = lock.withLock {
                self.group = group
                return stopping
            }
            if stopNow { return }
            do {
                try await group.run()
                lock.withLock {
                    if !stopping { _state = .failed("the server stopped by itself", status: .software) }
                }
                return
            } catch let error as IOError where error.errnoCode == EADDRINUSE && state == .starting && ContinuousClock.now < deadline {
                if !logged {
                    settings.log.info("the address is in use; trying again for a while", [("listen", settings.listen.description)])
                    logged = true
                }
                try? await Task.sleep(for: .milliseconds(100))
            } catch {
                let failure = Self.describe(error, listen: settings.listen)
                lock.withLock { _state = .failed(failure.message, status: failure.status) }
                return
            }
        }
    }

    /// A failure to serve, and how the child exits for it: an address in use or not there yet may
    /// pass; one the process may not use (a port below 1024, a directory it cannot write) will not.
    static func describe(_ error: any Error, listen: ListenAddress) -> (message: String, status: ExitStatus) {
        guard let error = error as? IOError else { return ("\(error)", .software) }
        let reason = String(cString: strerror(error.errnoCode))
        switch error.errnoCode {
        case EADDRINUSE:
            return ("cannot listen on \(listen): \(reason); another program holds it: stop it, or choose another address", .transient)
        case EACCES, EPERM:
            return ("cannot listen on \(listen): \(reason); a port below 1024 needs privileges Drover does not have, "
                    + "and a unix socket needs a directory Drover may write: choose another", .config)
        case EADDRNOTAVAIL:
            return ("cannot listen on \(listen): \(reason); no network interface of this host has that address", .transient)
        case ENOENT:
            return ("cannot listen on \(listen): \(reason); create the socket's directory first", .config)
        default:
            return ("cannot listen on \(listen): \(reason)", .transient)
        }
    }

    private func makeApplication() -> some ApplicationProtocol {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: SecurityMiddleware(settings: settings, publicPaths: Set(WebRoutes.all.filter(\.isPublic).map(\.path))))
        let guardian = ActionGuard(csrfToken: csrfToken, readOnly: settings.readOnly)
        for route in WebRoutes.all {
            router.on(RouterPath(route.path), method: route.method) { [self] request, context in
                countRequest()
                var form: [String: String] = [:]
                if route.kind == .action {
                    switch await guardian.check(request) {
                    case .success(let fields): form = fields
                    case .failure(let refusal): return WebRoute.text(refusal.message, status: refusal.status)
                    }
                }
                do {
                    return try await route.handler(WebContext(
                        store: store, settings: settings, csrfToken: csrfToken, templates: templates, request: request,
                        parameters: context.parameters, form: form))
                } catch let error as QueueError {
                    // What the store refused, in its words: a missing job, a job in another state, a bad value.
                    let status: HTTPResponse.Status = switch error.code {
                    case .jobNotFound, .taskNotFound: .notFound
                    case .wrongState, .staticTask: .conflict
                    default: .badRequest
                    }
                    return WebRoute.text(error.message + "\n", status: status)
                } catch let error as HTTPError {
                    // A page's own refusal (a bad id, no such job): its words, as text.
                    return WebRoute.text((error.body ?? "\(error.status)") + "\n", status: error.status)
                } catch let error as DatabaseError where [.connectionFailed, .connectionLost].contains(error.code) {
                    // The error itself goes to the log, not the page: it can name the database's host.
                    settings.log.warning("the dashboard could not reach the database", [("path", request.uri.path), ("error", error.message)])
                    return WebRoute.text("The database does not answer. The dashboard reconnects by itself; try again.\n",
                                         status: .serviceUnavailable)
                }
            }
        }
        let address: BindAddress = switch settings.listen {
        case .tcp(let host, let port): .hostname(host, port: port)
        case .unixSocket(let path): .unixDomainSocket(path: Self.bindingPath(path))
        }
        return Application(
            router: router,
            // An idle connection (a keep-alive, or a client that sends nothing) is closed after a
            // while: a dashboard serves few people, and must not run out of descriptors.
            server: .http1(configuration: .init(idleTimeout: Self.idleTimeout)),
            configuration: .init(address: address, serverName: nil, reuseAddress: true),
            onServerRunning: { [self] channel in serving(on: channel) }, logger: hummingbirdLogger)
    }

    static let idleTimeout = TimeAmount.seconds(30)

    private func countRequest() { lock.withLock { requests += 1 } }

    /// Where a unix socket is bound before it is renamed to its path. When a web child replaces
    /// another (a reload), the new socket takes the path in one rename, and the old server,
    /// which removes its socket's file when it closes, removes its own name, which is gone,
    /// rather than the new socket. Binding at the path itself would leave it with no socket.
    static func bindingPath(_ path: String) -> String { "\(path).\(getpid())" }

    private func serving(on channel: any Channel) {
        var address = settings.listen.description
        switch settings.listen {
        case .unixSocket(let path):
            // Owner and group may connect (a reverse proxy in Drover's group); the unit's umask
            // (0027) would leave the group without the write permission connect(2) needs.
            let bound = Self.bindingPath(path)
            guard chmod(bound, 0o660) == 0, rename(bound, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(bound)
                lock.withLock { _state = .failed("cannot put the socket at \(path): \(reason)", status: .config) }
                return
            }
            var info = stat()
            if stat(path, &info) == 0 { lock.withLock { socketInode = info.st_ino } }
        case .tcp(let host, _):
            if let port = channel.localAddress?.port { address = ListenAddress.tcp(host: host, port: port).description }
        }
        lock.withLock {
            boundAddress = address
            _state = .serving
        }
        settings.log.info("serving the dashboard", [
            ("listen", address), ("read_only", String(settings.readOnly)), ("authentication", settings.requiresPassword ? "password" : "none"),
        ])
    }

    /// Removes the socket's file once stopped, unless another server's socket replaced it.
    private func removeSocketFile() {
        guard case .unixSocket(let path) = settings.listen, let inode = lock.withLock({ socketInode }) else { return }
        var info = stat()
        if stat(path, &info) == 0, info.st_ino == inode { unlink(path) }
    }

    /// Hummingbird's and the service group's own lines go to Drover's log (its handler, with
    /// this process's fields), from warnings up: a server that cannot accept connections says so,
    /// and its per-request lines do not flood the journal. Drover logs what the dashboard does
    /// itself.
    private var hummingbirdLogger: Logger {
        var logger = settings.log.logger
        logger.logLevel = max(logger.logLevel, .warning)
        return logger
    }
}
