import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import DroverWeb
import Foundation

/// `drover web`: the dashboard and `/metrics` in the foreground, the same server the supervisor
/// runs as its web child when the configuration has a `web:` section.
struct WebCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "Serve the web dashboard and /metrics in the foreground, until TERM or INT.",
        discussion: """
            The address, password and read-only mode come from the configuration's web: section, \
            else it listens on 127.0.0.1:8089 with no password; --listen and --read-only override \
            them. An address other hosts can reach is refused unless web.auth names a password \
            (exit 78). The password is taken as HTTP Basic (any user name) or as Authorization: \
            Bearer. Exit status: 0 stopped, 64 bad usage, 69 the database or the address cannot \
            be used, 78 configuration error.
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(name: .customLong("listen"), help: ArgumentHelp(
        "Listen here: 127.0.0.1:PORT, [::1]:PORT, or an absolute unix socket path (default: web.listen, else 127.0.0.1:8089).",
        valueName: "address"))
    var listen: String?

    @Flag(name: .customLong("read-only"), help: "Hide every action and refuse their requests (default: web.read_only).")
    var readOnly = false

    func validate() throws {
        if let listen, case .failure(let error) = ListenAddress.parse(listen) {
            throw ValidationError("--listen: \(error.message)")
        }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        Log.configure(minimum: try reportingErrors { try StartCommand.level(nil, environment: environment) }, environment: environment)
        let log = Log([("process", "web"), ("pid", String(getpid()))])
        let configuration = try reportingErrors {
            try ConfigurationLoader.load(explicitPath: database.configPath, environment: environment)
        }
        let location = DatabaseLocation.resolve(
            commandLineURL: database.databaseURL, commandLineSchema: database.schema, environment: environment,
            configuration: configuration)
        var web = configuration?.web ?? Configuration.Web()
        if let listen, case .success(let address) = ListenAddress.parse(listen) { web.listen = address }
        if readOnly { web.readOnly = true }
        let origin = listen != nil ? "--listen" : configuration?.path ?? "the default address"
        let password: String? = try reportingErrors { () throws -> String? in
            if let problem = web.exposureProblem { throw ConfigurationError(path: origin, key: "web.listen", message: problem) }
            do {
                return try web.auth?.read(environment: environment)
            } catch {
                throw ConfigurationError(path: configuration?.path ?? "the configuration", key: "web.auth", message: "\(error)")
            }
        }
        var options = StoreOptions(schema: location.schema, applicationName: "drover web", lockTimeout: .seconds(5))
        options.networkTimeout = .seconds(10)
        options.statementTimeout = .seconds(30)
        // The database must answer now: better said once here than on every page.
        try reportingErrors(location: location) {
            _ = try StoreFactory.openAdmin(url: location.connectionString, options: options).listQueues()
        }
        var settings = WebSettings(listen: web.listen, readOnly: web.readOnly, password: password,
                                   databaseURL: location.connectionString, storeOptions: options, log: log)
        settings.addressInUseWait = .zero
        let server = try reportingErrors { try WebServer(settings: settings) }
        let status = Self.serve(server, log: log)
        if status != .ok { throw ExitCode(status.rawValue) }
    }

    /// Runs `server` until TERM or INT (graceful) or QUIT (at once); returns the exit status.
    static func serve(_ server: WebServer, log: Log) -> ExitStatus {
        let signals = SignalReader([SIGTERM, SIGINT, SIGQUIT, SIGHUP])
        server.start()
        while true {
            _ = waitForReadable([signals.descriptor], timeout: .milliseconds(100))
            for (signal, _) in signals.pending() {
                switch signal {
                case SIGTERM, SIGINT:
                    log.info("stopping", [("reason", signal == SIGTERM ? "SIGTERM" : "SIGINT")])
                    server.stop(timeout: .seconds(10))
                    return .ok
                case SIGQUIT:
                    return .ok
                default:
                    log.info("drover web does not reload its configuration on SIGHUP: restart it")
                }
            }
            if case .failed(let reason, let status) = server.state {
                printError("drover: error: \(reason)")
                return status == .transient ? .unavailable : status
            }
        }
    }
}
