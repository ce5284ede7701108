import CProcess
import DroverPersistence
import DroverQueue
import Foundation
import Synchronization

/// `drover start`: runs the configured workers and dispatchers as children, keeps them running, and
/// talks to systemd (DESIGN.md §2).
///
/// One loop on the main thread waits on a signalfd (TERM, INT, QUIT, HUP, CHLD), the database agent's
/// wakeup and its timers. Children are reaped as soon as SIGCHLD arrives; a child that died has its
/// jobs released by the agent and is started again after a backoff.
public final class Supervisor {
    public struct Options {
        public var configuration: Configuration
        /// `--config`, to read the same file again on SIGHUP.
        public var configPath: String?
        public var commandLineURL: String?
        public var commandLineSchema: String?
        public var environment: [String: String]
        /// Lets children run Drover's own test handlers (DROVER_TEST_HANDLERS=1).
        public var testHandlers: Bool
        /// The concurrency limits of the app's Swift job types (`Drover.main(jobs:)`); a handler of
        /// the configuration with the same class wins.
        public var jobConcurrencyRules: [ConcurrencyRule] = []

        public init(configuration: Configuration, configPath: String?, commandLineURL: String?, commandLineSchema: String?,
                    environment: [String: String], testHandlers: Bool) {
            self.configuration = configuration
            self.configPath = configPath
            self.commandLineURL = commandLineURL
            self.commandLineSchema = commandLineSchema
            self.environment = environment
            self.testHandlers = testHandlers
        }
    }

    /// Exit statuses of `drover start` (DESIGN.md §2).
    public enum ExitStatus {
        public static let stopped: Int32 = 0
        public static let unavailable: Int32 = 69
        public static let software: Int32 = 70
        public static let configuration: Int32 = 78
    }

    /// What the agent's tasks leave for the loop.
    private final class Shared: @unchecked Sendable {
        private let lock = NSLock()
        private var _registered: Set<String> = []
        private var _totals = Totals()
        private var _ownRowGone = false
        private var _deregistered = false
        private var _recurringTasksExist = false
        struct Totals: Equatable { var running = 0; var finished = 0; var failed = 0 }

        func with<R>(_ body: (Shared) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(self) }
        var registered: Set<String> { get { with { $0._registered } } set { with { $0._registered = newValue } } }
        var totals: Totals { get { with { $0._totals } } set { with { $0._totals = newValue } } }
        var ownRowGone: Bool { get { with { $0._ownRowGone } } set { with { $0._ownRowGone = newValue } } }
        var deregistered: Bool { get { with { $0._deregistered } } set { with { $0._deregistered = newValue } } }
        /// Whether the database has recurring tasks (some may have been added at run time).
        var recurringTasksExist: Bool {
            get { with { $0._recurringTasksExist } }
            set { with { $0._recurringTasksExist = newValue } }
        }
    }

    private enum Phase {
        case running
        case stopping(deadline: ContinuousClock.Instant, status: Int32, immediate: Bool)
    }

    private var options: Options
    private var location: DatabaseLocation
    private let log: Log
    private let notifier: SystemdNotifier
    private let signals = SignalReader(Signals.handled)
    private let name = "supervisor-" + randomSuffix()
    private let shared = Shared()
    private var store: JobStore
    private var agent: DatabaseAgent!
    private var heartbeat: Heartbeat!
    private var supervisorID = 0
    private var slots: [ChildSlot] = []
    /// Children asked to stop (removed by a reload), by pid: they drain and are not replaced.
    private var draining: [pid_t: String] = [:]
    private var deathPipe: [Int32] = [-1, -1]
    private var intensity: RestartIntensity
    private var phase = Phase.running
    private var awaitingReady = true
    private var lastStatus = ""
    /// The last problem worth a line in STATUS: a child that died.
    private var lastError: String?
    private var nextHeartbeat = ContinuousClock.now
    private var nextPrune = ContinuousClock.now
    private var nextWatchdog = ContinuousClock.now
    private var nextRegistrationCheck = ContinuousClock.now

    public init(options: Options) throws {
        try Self.checkHandlerUsers(options.configuration)
        self.options = options
        location = DatabaseLocation.resolve(
            commandLineURL: options.commandLineURL, commandLineSchema: options.commandLineSchema,
            environment: options.environment, configuration: options.configuration)
        log = Log([("process", "supervisor"), ("pid", String(getpid()))])
        notifier = SystemdNotifier(environment: options.environment)
        store = try JobStore(schema: location.schema)
        intensity = RestartIntensity(maxRestarts: options.configuration.supervisor.maxRestarts,
                                     window: options.configuration.supervisor.restartWindow)
    }

    private var settings: Configuration.Supervisor { options.configuration.supervisor }

    /// Handlers that run as another user need this process to be root, which only a running
    /// supervisor can tell (`drover check` only checks that the user exists).
    static func checkHandlerUsers(_ configuration: Configuration) throws(ConfigurationError) {
        for (name, handler) in configuration.handlers.sorted(by: { $0.key < $1.key }) {
            guard let user = handler.user else { continue }
            do {
                _ = try CommandHandler.credentials(of: user, handler: name)
            } catch {
                throw ConfigurationError(path: configuration.path ?? "the configuration", key: "handlers.\(name).user",
                                         message: String(error.description.drop { $0 != ":" }.dropFirst(2)))
            }
        }
    }

    // MARK: - Running

    /// Runs until stopped; returns the exit status.
    public func run() -> Int32 {
        if let status = start() { return status }
        log.info("started", [("name", name), ("id", String(supervisorID)), ("children", String(slots.count))])
        while true {
            if case .stopping(let deadline, let status, _) = phase {
                if slots.allSatisfy({ $0.pid == nil }) && draining.isEmpty { return finish(status) }
                if ContinuousClock.now >= deadline { killRemaining() }
            }
            startDueChildren()
            timers()
            let readable = waitForReadable([signals.descriptor, agent.wakeup.descriptor], timeout: max(.zero, ContinuousClock.now.duration(to: nextDeadline())))
            if readable.contains(agent.wakeup.descriptor) { agent.wakeup.drain() }
            if readable.contains(signals.descriptor) { handleSignals() }
            reap()
            afterAgentNews()
        }
    }

    private func nextDeadline() -> ContinuousClock.Instant {
        var deadlines = [nextHeartbeat, nextPrune]
        if notifier.watchdogInterval != nil { deadlines.append(nextWatchdog) }
        if awaitingReady { deadlines.append(nextRegistrationCheck) }
        for slot in slots where slot.pid == nil && !slot.givenUp { if let at = slot.startAt { deadlines.append(at) } }
        if case .stopping(let deadline, _, _) = phase { deadlines.append(deadline) }
        return deadlines.min()!
    }

    // MARK: - Start

    /// Connects (waiting out an unreachable database), checks the schema, registers, recovers claims
    /// left by processes that vanished, and starts the children. Returns an exit status to stop with.
    private func start() -> Int32? {
        var lastExtension = ContinuousClock.now - .seconds(60)
        var backoff = Duration.milliseconds(250)
        var waitingLogged = false
        while true {
            do {
                let connection = try Connection(location.connectionString, applicationName: "drover supervisor")
                let status = try DroverSchema.migrator(schema: location.schema).status(on: connection)
                if !status.pending.isEmpty {
                    log.error("the database schema is not up to date: run drover migrate", [
                        ("schema", location.schema), ("pending", status.pending.map { String($0.version) }.joined(separator: ",")),
                    ])
                    return ExitStatus.unavailable
                }
                let record = try store.register(
                    kind: .supervisor, name: name, pid: getpid(), hostname: ChildRuntime.hostname, supervisorID: nil,
                    on: connection)
                heartbeat = try Heartbeat(record: record)
                supervisorID = heartbeat.processID
                let orphans = try store.recoverOrphanedClaims(maxCrashes: settings.maxCrashes, on: connection)
                if !orphans.released.isEmpty || !orphans.failed.isEmpty {
                    log.warning("recovered jobs claimed by processes that vanished", [
                        ("released", String(orphans.released.count)), ("failed", String(orphans.failed.count)),
                    ])
                }
                try store.syncStaticTasks(options.configuration.staticTasks, on: connection)
                try store.syncConcurrencyRules(concurrencyRules(for: options.configuration), on: connection)
                shared.recurringTasksExist = !(try store.tasks(on: connection)).isEmpty
                break
            } catch let error as DatabaseError where [.connectionFailed, .connectionLost].contains(error.code) || error.sqlState == "57P03" {
                // Unreachable for now: wait for it, and ask systemd to wait with us.
                if !waitingLogged {
                    log.warning("waiting for the database", [("error", error.message)])
                    waitingLogged = true
                }
                if ContinuousClock.now - lastExtension >= .seconds(10) {
                    notifier.extendTimeout(by: .seconds(30), status: "waiting for database: \(error.message)")
                    lastExtension = .now
                }
                for (signal, _) in waitAndReadSignals(timeout: backoff) where [SIGTERM, SIGINT, SIGQUIT].contains(signal) {
                    log.info("stopped while waiting for the database")
                    return ExitStatus.stopped
                }
                backoff = min(backoff * 2, .seconds(5))
            } catch let error as DatabaseError {
                let status = error.code == .invalidConnectionString ? ExitStatus.configuration : ExitStatus.unavailable
                let hint = error.code == .undefinedTable || error.sqlState == "3F000" ? "; run drover migrate" : ""
                log.error("cannot start: \(error.message)\(hint)", [("database", location.source.description)])
                return status
            } catch {
                log.error("cannot start", [("error", "\(error)")])
                return ExitStatus.software
            }
        }
        do {
            try Orphans.adopt()
        } catch {
            log.error("cannot become the subreaper of the job commands", [("error", error.description)])
            return ExitStatus.software
        }
        guard drover_pipe_cloexec(&deathPipe) == 0 else {
            log.error("cannot create the parent-death pipe", [("error", String(cString: strerror(errno)))])
            return ExitStatus.software
        }
        let session = DatabaseSession(
            url: location.connectionString, applicationName: "drover supervisor",
            lockTimeout: max(.seconds(1), settings.heartbeatInterval / 2), log: log)
        agent = DatabaseAgent(session: session, log: log)
        slots = roles(for: options.configuration).map(ChildSlot.init(role:))
        nextHeartbeat = .now + settings.heartbeatInterval
        nextPrune = .now + settings.aliveThreshold / 2
        notifier.status("starting \(slots.count) processes")
        return nil
    }

    private func waitAndReadSignals(timeout: Duration) -> [(signal: Int32, sender: pid_t)] {
        _ = waitForReadable([signals.descriptor], timeout: timeout)
        return signals.pending()
    }

    /// The children a configuration asks for, as specs without names.
    private func roles(for configuration: Configuration) -> [ChildSpec] {
        let location = DatabaseLocation.resolve(
            commandLineURL: options.commandLineURL, commandLineSchema: options.commandLineSchema,
            environment: options.environment, configuration: configuration)
        let s = configuration.supervisor
        func base(_ kind: ProcessKind) -> ChildSpec {
            ChildSpec(
                kind: kind, name: "", supervisorID: supervisorID, databaseURL: location.connectionString, schema: location.schema,
                heartbeatIntervalMilliseconds: s.heartbeatInterval.wholeMilliseconds,
                aliveThresholdMilliseconds: s.aliveThreshold.wholeMilliseconds,
                shutdownTimeoutMilliseconds: s.shutdownTimeout.wholeMilliseconds, maxCrashes: s.maxCrashes,
                preserveFinishedJobs: configuration.retention.preserveFinishedJobs,
                clearFinishedAfterSeconds: Int(configuration.retention.clearFinishedAfter.seconds),
                testHandlers: options.testHandlers, worker: nil, dispatcher: nil)
        }
        var roles: [ChildSpec] = []
        for worker in configuration.workers {
            var spec = base(.worker)
            spec.worker = .init(queues: worker.queues.patterns.map(\.description), threads: worker.threads,
                                pollingIntervalMilliseconds: worker.pollingInterval.wholeMilliseconds,
                                handlers: configuration.handlers.mapValues(ChildSpec.HandlerPart.init))
            roles += Array(repeating: spec, count: worker.processes)
        }
        for dispatcher in configuration.dispatchers {
            var spec = base(.dispatcher)
            spec.dispatcher = .init(pollingIntervalMilliseconds: dispatcher.pollingInterval.wholeMilliseconds,
                                    batchSize: dispatcher.batchSize)
            roles.append(spec)
        }
        // One scheduler per supervisor when there are recurring tasks; several hosts' schedulers
        // share the work, each run enqueued once.
        if !configuration.recurring.isEmpty || shared.recurringTasksExist {
            roles.append(schedulerRole(base(.scheduler)))
        }
        return roles
    }

    /// The configuration's limits, then the Swift job types' for classes it does not have.
    private func concurrencyRules(for configuration: Configuration) -> [ConcurrencyRule] {
        let configured = configuration.concurrencyRules
        let classes = Set(configuration.handlers.keys)
        return configured + options.jobConcurrencyRules.filter { !classes.contains($0.className) }
    }

    private func schedulerRole(_ base: ChildSpec) -> ChildSpec {
        var spec = base
        spec.scheduler = .init(pollingIntervalMilliseconds: 1000)
        return spec
    }

    /// Starts a scheduler when recurring tasks were added at run time and none runs yet.
    private func addSchedulerIfNeeded() {
        guard case .running = phase, shared.recurringTasksExist, !slots.contains(where: { $0.role.kind == .scheduler }),
              let role = roles(for: options.configuration).first(where: { $0.kind == .scheduler }) else { return }
        slots.append(ChildSlot(role: role))
        log.info("recurring tasks exist: starting a scheduler")
    }

    // MARK: - Children

    private func startDueChildren() {
        guard case .running = phase else { return }
        for slot in slots where slot.pid == nil && !slot.givenUp && (slot.startAt ?? .now) <= .now {
            spawn(slot)
        }
    }

    private func spawn(_ slot: ChildSlot) {
        let childName = "\(slot.role.kind.rawValue)-" + Self.randomSuffix()
        var spec = slot.role
        spec.name = childName
        var environment = options.environment
        // Only the supervisor talks to systemd; the database URL travels in the spec.
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                    "DROVER_DATABASE_URL", "DROVER_TEST_HANDLERS"] {
            environment[key] = nil
        }
        environment[ChildSpec.environmentVariable] = spec.encoded()
        do {
            let pid = try Spawn.start(
                "/proc/self/exe", argv0: CommandLine.arguments.first ?? "drover", arguments: ["_child"],
                environment: environment, fd3: deathPipe[0])
            slot.pid = pid
            slot.name = childName
            slot.startedAt = .now
            slot.startAt = nil
            awaitingReady = true
            log.info("started \(slot.role.kind.rawValue)", [("name", childName), ("child_pid", String(pid))])
        } catch {
            log.error("cannot start a child", [("error", error.description)])
            slot.startedAt = .now
            _ = slot.scheduleRestart(crashed: true)
            if intensity.record() { crashLoop() }
        }
    }

    /// Reaps every child that has exited (SIGCHLD may stand for several), and kills the orphans a
    /// dead child left (they are this subreaper's children now).
    private func reap() {
        var reaped = false
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { break }
            reaped = true
            childExited(pid, status: status)
        }
        if reaped { killOrphans() }
    }

    private func killOrphans() {
        let killed = Orphans.kill(except: Set(slots.compactMap(\.pid)).union(draining.keys))
        if !killed.isEmpty {
            log.warning("killed processes left behind by a child that is gone", [("pids", killed.map(String.init).joined(separator: ","))])
        }
    }

    private func childExited(_ pid: pid_t, status: Int32) {
        let exitCode: Int32? = (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
        let signal: Int32? = exitCode == nil ? status & 0x7f : nil
        let how = exitCode.map { "exited with status \($0)" } ?? "was killed by signal \(signal!) (\(Self.signalName(signal!)))"
        if let childName = draining.removeValue(forKey: pid) {
            log.info("child stopped", [("name", childName), ("how", how)])
            releaseJobs(of: childName, kind: nil, crashed: exitCode == nil || ![0, 75].contains(exitCode!), how: how,
                        exitCode: exitCode, signal: signal)
            return
        }
        guard let slot = slots.first(where: { $0.pid == pid }), let childName = slot.name else { return }
        slot.pid = nil
        slot.name = nil
        let stopping: Bool = { if case .stopping = phase { return true } else { return false } }()
        // Children that exit 0 or 75 gave back their jobs, or lost them to a pruner.
        let crashed = !stopping && (exitCode == nil || ![0, 75].contains(exitCode!))
        if crashed {
            log.warning("child died", [("name", childName), ("kind", slot.role.kind.rawValue), ("how", how)])
            lastError = "\(slot.role.kind.rawValue) \(childName) \(how)"
        } else {
            log.info("child exited", [("name", childName), ("how", how)])
        }
        releaseJobs(of: childName, kind: slot.role.kind, crashed: crashed, how: how, exitCode: exitCode, signal: signal)
        guard !stopping else { return }
        if exitCode == 78 {
            slot.givenUp = true
            log.error("child exited with a configuration error (78); not starting it again", [("name", childName)])
            return
        }
        let delay = slot.scheduleRestart(crashed: crashed)
        log.info("starting a replacement", [("kind", slot.role.kind.rawValue), ("in", DurationText.format(delay))])
        if intensity.record() { crashLoop() }
    }

    /// Has the agent give back the jobs of a child that is gone: as crashed (counting against each
    /// job's max_crashes) when it died, as released when it stopped.
    private func releaseJobs(
        of childName: String, kind: ProcessKind?, crashed: Bool, how: String, exitCode: Int32?, signal: Int32?
    ) {
        let store = self.store
        let maxCrashes = settings.maxCrashes
        let log = self.log
        agent.submit("release the jobs of \(childName)", essential: true) { connection in
            guard let id = try store.processID(named: childName, on: connection) else { return }
            let failure = JobFailure(
                errorClass: "WorkerCrashed", message: "\(kind?.rawValue ?? "process") \(childName) \(how) while running this job",
                exitStatus: exitCode.map(Int.init), signal: signal.map(Int.init))
            let outcome = try store.deregister(
                processID: id, reason: crashed ? .crashed(failure, maxCrashes: maxCrashes) : .graceful, on: connection)
            if !outcome.released.isEmpty || !outcome.failed.isEmpty {
                log.info("released the jobs of a child that is gone", [
                    ("name", childName), ("released", outcome.released.map(String.init).joined(separator: ",")),
                    ("failed", outcome.failed.map(String.init).joined(separator: ",")),
                ])
            }
        }
    }

    private func crashLoop() {
        guard case .running = phase else { return }
        log.error("children keep crashing: more than max_restarts restarts within restart_window; stopping", [
            ("max_restarts", String(settings.maxRestarts)), ("restart_window", DurationText.format(settings.restartWindow)),
        ])
        beginStopping(status: ExitStatus.software, immediate: false, reason: "children keep crashing")
    }

    // MARK: - Signals

    private func handleSignals() {
        for (signal, _) in signals.pending() {
            switch signal {
            case SIGTERM, SIGINT:
                beginStopping(status: ExitStatus.stopped, immediate: false, reason: signal == SIGTERM ? "SIGTERM" : "SIGINT")
            case SIGQUIT:
                beginStopping(status: ExitStatus.stopped, immediate: true, reason: "SIGQUIT")
            case SIGHUP:
                reload()
            default:
                break  // SIGCHLD: reap() runs after every wakeup.
            }
        }
    }

    private func beginStopping(status: Int32, immediate: Bool, reason: String) {
        if case .stopping(_, let current, let wasImmediate) = phase {
            // Already stopping: a repeated TERM changes nothing; a QUIT makes it immediate.
            if immediate && !wasImmediate {
                phase = .stopping(deadline: .now, status: current, immediate: true)
                killRemaining()
            }
            return
        }
        let grace = immediate ? Duration.zero : settings.shutdownTimeout + .seconds(2)
        phase = .stopping(deadline: .now + grace, status: status, immediate: immediate)
        notifier.stopping(status: "stopping (\(reason))")
        log.info("stopping", [("reason", reason), ("children", String(slots.filter { $0.pid != nil }.count + draining.count))])
        for pid in slots.compactMap(\.pid) + draining.keys { kill(pid, immediate ? SIGKILL : SIGTERM) }
    }

    private func killRemaining() {
        for pid in slots.compactMap(\.pid) + draining.keys { kill(pid, SIGKILL) }
    }

    /// Deregisters (its children's jobs were released first: the agent runs tasks in order) and
    /// returns `status`, waiting a little for the database but not forever.
    private func finish(_ status: Int32) -> Int32 {
        killOrphans()
        let store = self.store
        let id = supervisorID
        let shared = self.shared
        agent.submit("deregister", essential: true) { connection in
            try store.deregister(processID: id, on: connection)
            shared.deregistered = true
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while !shared.deregistered, ContinuousClock.now < deadline {
            _ = waitForReadable([agent.wakeup.descriptor], timeout: ContinuousClock.now.duration(to: deadline))
            agent.wakeup.drain()
        }
        if !shared.deregistered {
            log.warning("stopped without deregistering: the database did not answer; other supervisors will prune this one")
        }
        log.info("stopped", [("status", String(status))])
        return status
    }

    // MARK: - Reload

    private func reload() {
        guard case .running = phase else { return }
        notifier.reloading(status: "reloading the configuration")
        let configuration: Configuration
        do {
            configuration = try ConfigurationLoader.load(explicitPath: options.configPath, environment: options.environment)
                ?? Configuration()
        } catch {
            log.error("the new configuration is not valid; keeping the one in force", [("error", "\(error)")])
            notifier.ready(status: statusLine())
            return
        }
        do {
            try Self.checkHandlerUsers(configuration)
        } catch {
            log.error("the new configuration is not valid; keeping the one in force", [("error", "\(error)")])
            notifier.ready(status: statusLine())
            return
        }
        // The supervisor's own registration, pruning and releases stay on the database it started
        // with; children on another one would be orphans.
        let newLocation = DatabaseLocation.resolve(
            commandLineURL: options.commandLineURL, commandLineSchema: options.commandLineSchema,
            environment: options.environment, configuration: configuration)
        guard newLocation.connectionString == location.connectionString, newLocation.schema == location.schema else {
            log.error("the new configuration names another database or schema, which a reload cannot change; "
                      + "keeping the configuration in force: restart drover to move it")
            notifier.ready(status: statusLine())
            return
        }
        options.configuration = configuration
        let store = self.store
        let shared = self.shared
        let tasks = configuration.staticTasks
        let rules = concurrencyRules(for: configuration)
        agent.submit("update the recurring tasks and concurrency limits of the configuration", essential: true) { connection in
            try store.syncStaticTasks(tasks, on: connection)
            try store.syncConcurrencyRules(rules, on: connection)
            shared.recurringTasksExist = !(try store.tasks(on: connection)).isEmpty
        }
        intensity = RestartIntensity(maxRestarts: configuration.supervisor.maxRestarts, window: configuration.supervisor.restartWindow)
        var unmatched = slots
        var kept: [ChildSlot] = []
        var added = 0
        for role in roles(for: configuration) {
            if let index = unmatched.firstIndex(where: { $0.role == role }) {
                kept.append(unmatched.remove(at: index))
            } else {
                kept.append(ChildSlot(role: role))
                added += 1
            }
        }
        for slot in unmatched {
            if let pid = slot.pid, let childName = slot.name {
                draining[pid] = childName
                kill(pid, SIGTERM)
            }
        }
        slots = kept
        awaitingReady = true
        log.info("reloaded the configuration", [("kept", String(kept.count - added)), ("added", String(added)), ("draining", String(unmatched.count))])
        if added == 0 && unmatched.isEmpty { notifier.ready(status: statusLine()); awaitingReady = false }
    }

    // MARK: - Timers and the agent's news

    private func timers() {
        let now = ContinuousClock.now
        if now >= nextHeartbeat {
            nextHeartbeat = now + settings.heartbeatInterval
            let heartbeat = self.heartbeat!
            let shared = self.shared
            let store = self.store
            let id = supervisorID
            let metadata = (try? JSON(encoding: ["children": slots.filter { $0.pid != nil }.count])) ?? .emptyObject
            agent.submit("heartbeat") { connection in
                do {
                    try heartbeat.write(metadata: metadata, on: connection)
                } catch let error as DatabaseError where error.code == .recordNotFound {
                    shared.ownRowGone = true
                    return
                }
                shared.totals = try Self.totals(of: id, store: store, on: connection)
            }
        }
        if now >= nextPrune {
            nextPrune = now + max(.milliseconds(100), settings.aliveThreshold / 2)
            // After an outage, wait until live processes have had time to heartbeat again.
            if let since = agent.health.connectedSince, now - since >= settings.aliveThreshold, !agent.health.isDown {
                prune()
            }
        }
        if let interval = notifier.watchdogInterval, now >= nextWatchdog {
            nextWatchdog = now + interval / 2
            notifier.watchdog()
        }
        if awaitingReady, now >= nextRegistrationCheck {
            nextRegistrationCheck = now + .milliseconds(100)
            let store = self.store
            let shared = self.shared
            let id = supervisorID
            agent.submit("check registrations") { connection in
                shared.registered = Set(try connection.query(
                    "SELECT name FROM \(store.schema.qualifying("processes")) WHERE supervisor_id = \(id)"
                ).map { try $0.decode("name", as: String.self) })
            }
        }
    }

    private func prune() {
        let store = self.store
        let threshold = settings.aliveThreshold
        let maxCrashes = settings.maxCrashes
        // Itself and its live children: it knows they are alive, whatever their heartbeats say.
        let sparing = [name] + slots.compactMap(\.name) + Array(draining.values)
        let log = self.log
        let shared = self.shared
        agent.submit("prune") { connection in
            for process in try store.pruneDeadProcesses(olderThan: threshold, sparing: sparing, maxCrashes: maxCrashes, on: connection) {
                log.warning("pruned a process that stopped heartbeating", [
                    ("name", process.name), ("host", process.hostname),
                    ("released", String(process.jobs.released.count)), ("failed", String(process.jobs.failed.count)),
                ])
            }
            let orphans = try store.recoverOrphanedClaims(maxCrashes: maxCrashes, on: connection)
            if !orphans.released.isEmpty || !orphans.failed.isEmpty {
                log.warning("recovered jobs of processes that vanished", [("released", String(orphans.released.count))])
            }
            shared.recurringTasksExist = !(try store.tasks(on: connection)).isEmpty
        }
    }

    private static func totals(of supervisorID: Int, store: JobStore, on connection: Connection) throws -> Shared.Totals {
        let row = try connection.query("""
            SELECT coalesce(sum((metadata ->> 'running')::bigint), 0)::bigint AS running,
                   coalesce(sum((metadata ->> 'finished')::bigint), 0)::bigint AS finished,
                   coalesce(sum((metadata ->> 'failed')::bigint), 0)::bigint AS failed
            FROM \(store.schema.qualifying("processes")) WHERE supervisor_id = \(supervisorID)
            """)[0]
        return Shared.Totals(running: try row.decode("running"), finished: try row.decode("finished"), failed: try row.decode("failed"))
    }

    private func afterAgentNews() {
        addSchedulerIfNeeded()
        if shared.ownRowGone, case .running = phase {
            log.error("this supervisor's registration is gone (another supervisor took it for dead); stopping")
            beginStopping(status: ExitStatus.software, immediate: false, reason: "registration lost")
        }
        if awaitingReady, case .running = phase {
            let names = Set(slots.compactMap(\.name))
            let waitingFor = slots.filter { $0.pid == nil && !$0.givenUp }.count
            if waitingFor == 0, names.isSubset(of: shared.registered) {
                awaitingReady = false
                let line = statusLine()
                lastStatus = line
                notifier.ready(status: line)
                log.info("ready", [("status", line)])
                return
            }
        }
        let line = statusLine()
        if line != lastStatus, !awaitingReady {
            lastStatus = line
            notifier.status(line)
        }
    }

    private func statusLine() -> String {
        let workers = slots.filter { $0.role.kind == .worker && $0.pid != nil }.count
        let dispatchers = slots.filter { $0.role.kind == .dispatcher && $0.pid != nil }.count
        let totals = shared.totals
        let schedulers = slots.filter { $0.role.kind == .scheduler && $0.pid != nil }.count
        var line = "\(workers) worker\(workers == 1 ? "" : "s"), \(dispatchers) dispatcher\(dispatchers == 1 ? "" : "s")"
            + (schedulers > 0 ? ", \(schedulers) scheduler" : "") + "; "
            + "\(totals.running) jobs running, \(totals.finished) finished, \(totals.failed) failed"
        let health = agent.health
        if health.isDown { line += "; database unreachable: \(health.lastError ?? "")" }
        if let lastError { line += "; last error: \(lastError)" }
        return line
    }

    static func randomSuffix() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<8).map { _ in letters.randomElement()! })
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGILL: return "SIGILL"
        case SIGBUS: return "SIGBUS"
        case SIGINT: return "SIGINT"
        case SIGQUIT: return "SIGQUIT"
        case SIGTRAP: return "SIGTRAP"
        default: return "signal \(signal)"
        }
    }
}
