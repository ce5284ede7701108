import CProcess
import DroverPersistence
import DroverQueue
import Foundation
import Synchronization

/// `drover start`: runs the configured workers and dispatchers as children, keeps them running, and
/// talks to systemd (docs/architecture.md).
///
/// One loop on the main thread waits on a signalfd (TERM, INT, QUIT, HUP, CHLD), the database agent's
/// wakeup and its timers. Children are reaped as soon as SIGCHLD arrives; a child that died has its
/// jobs released by the agent and is started again after a backoff.
public final class Supervisor {
    private let body: () -> Int32

    /// Resolves the database (``DatabaseLocation``) and makes the supervisor of its backend.
    public init(options: Options) throws {
        let location = DatabaseLocation.resolve(
            commandLineURL: options.commandLineURL, commandLineSchema: options.commandLineSchema,
            environment: options.environment, configuration: options.configuration)
        if location.isSQLite {
            let process = try SupervisorProcess<SQLiteDriver>(options: options, location: location)
            body = process.run
        } else {
            let process = try SupervisorProcess<PostgresDriver>(options: options, location: location)
            body = process.run
        }
    }

    /// Runs until stopped; returns the exit status.
    public func run() -> Int32 { body() }

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
        /// The rate limits of the app's Swift job types (a handler of the same class wins).
        public var jobRateLimitRules: [RateLimitRule] = []
        /// The failure hooks of the app's Swift job types; a handler of the configuration with the
        /// same class wins.
        public var jobFailureHooks: [FailureHook] = []
        /// The classes of the app's Swift job types, to tell a failure hook no one here runs.
        public var jobClasses: Set<String> = []

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

    /// The dashboard's password must be there to be read (by its child), which only a running
    /// supervisor can tell (`drover check` runs where a systemd credential may not be).
    static func checkWebPassword(_ configuration: Configuration, environment: [String: String]) throws(ConfigurationError) {
        guard let auth = configuration.web?.auth else { return }
        do {
            _ = try auth.read(environment: environment)
        } catch {
            throw ConfigurationError(path: configuration.path ?? "the configuration", key: "web.auth", message: error.description)
        }
    }

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

}

/// The supervisor of one backend (``RuntimeDriver``): everything ``Supervisor`` does.
final class SupervisorProcess<Driver: RuntimeDriver> {
    typealias Options = Supervisor.Options

    /// What the agent's tasks leave for the loop.
    final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var _registered: Set<String> = []
        var _totals = ProcessTotals()
        var _ownRowGone = false
        var _deregistered = false
        var _recurringTasksExist = false

        func with<R>(_ body: (Shared) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(self) }
        var registered: Set<String> { get { with { $0._registered } } set { with { $0._registered = newValue } } }
        var totals: ProcessTotals { get { with { $0._totals } } set { with { $0._totals = newValue } } }
        var ownRowGone: Bool { get { with { $0._ownRowGone } } set { with { $0._ownRowGone = newValue } } }
        var deregistered: Bool { get { with { $0._deregistered } } set { with { $0._deregistered = newValue } } }
        /// Whether the database has recurring tasks (some may have been added at run time).
        var recurringTasksExist: Bool {
            get { with { $0._recurringTasksExist } }
            set { with { $0._recurringTasksExist = newValue } }
        }
    }

    enum Phase {
        case running
        case stopping(deadline: ContinuousClock.Instant, status: Int32, immediate: Bool)
    }

    var options: Options
    var location: DatabaseLocation
    let log: Log
    let notifier: SystemdNotifier
    let signals = SignalReader(Signals.handled)
    let name = "supervisor-" + randomSuffix()
    let shared = Shared()
    var store: JobStore<Driver>
    var agent: DatabaseAgent<Driver.Database>!
    var heartbeat: Heartbeat!
    var supervisorID = 0
    var slots: [ChildSlot] = []
    /// Children asked to stop (removed by a reload), by pid: they drain and are not replaced.
    var draining: [pid_t: String] = [:]
    var deathPipe: [Int32] = [-1, -1]
    /// The children's signs of life (``LifeSign``), read on this loop, no database involved.
    var lifeSigns: LifeSignReader!
    /// What the watch knows of each live child, by pid.
    var watched: [pid_t: WatchedChild] = [:]
    var intensity: RestartIntensity
    var phase = Phase.running
    var awaitingReady = true
    var trimmedStartupPages = false
    var lastStatus = ""
    /// The last problem worth a line in STATUS: a child that died.
    var lastError: String?
    /// Children started again after they exited, by kind, since this supervisor started: its
    /// heartbeat carries them (`drover_process_restarts_total`).
    var restarts: [String: Int] = [:]
    var nextHeartbeat = ContinuousClock.now
    var nextPrune = ContinuousClock.now
    var nextWatchdog = ContinuousClock.now
    /// Set while WATCHDOG=1 is withheld because the database thread is stuck.
    var watchdogWithheld = false
    var nextRegistrationCheck = ContinuousClock.now

    init(options: Options, location: DatabaseLocation) throws {
        try Supervisor.checkHandlerUsers(options.configuration)
        try Supervisor.checkWebPassword(options.configuration, environment: options.environment)
        self.options = options
        self.location = location
        log = Log([("process", "supervisor"), ("pid", String(getpid()))])
        notifier = SystemdNotifier(environment: options.environment)
        store = try JobStore<Driver>(schema: location.schema, preserveFinishedJobs: options.configuration.retention.preserveFinishedJobs)
        intensity = RestartIntensity(maxRestarts: options.configuration.supervisor.maxRestarts,
                                     window: options.configuration.supervisor.restartWindow)
    }

    var settings: Configuration.Supervisor { options.configuration.supervisor }

    var runtimeTimeouts: RuntimeTimeouts {
        let database = options.configuration.database
        return RuntimeTimeouts(
            network: database.networkTimeout(aliveThreshold: settings.aliveThreshold),
            statement: database.statementTimeout(aliveThreshold: settings.aliveThreshold, heartbeatInterval: settings.heartbeatInterval),
            heartbeatInterval: settings.heartbeatInterval)
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
            watchChildren()
            let readable = waitForReadable([signals.descriptor, agent.wakeup.descriptor, lifeSigns.descriptor],
                                           timeout: max(.zero, ContinuousClock.now.duration(to: nextDeadline())))
            if readable.contains(agent.wakeup.descriptor) { agent.wakeup.drain() }
            if readable.contains(lifeSigns.descriptor) { readLifeSigns() }
            if readable.contains(signals.descriptor) { handleSignals() }
            reap()
            afterAgentNews()
        }
    }

    func nextDeadline() -> ContinuousClock.Instant {
        var deadlines = [nextHeartbeat, nextPrune]
        if notifier.watchdogInterval != nil { deadlines.append(nextWatchdog) }
        if awaitingReady { deadlines.append(nextRegistrationCheck) }
        for slot in slots where slot.pid == nil && !slot.givenUp { if let at = slot.startAt { deadlines.append(at) } }
        if case .stopping(let deadline, _, _) = phase { deadlines.append(deadline) }
        if let watch = nextWatch() { deadlines.append(watch) }
        return deadlines.min()!
    }

    // MARK: - Children

    func startDueChildren() {
        guard case .running = phase else { return }
        for slot in slots where slot.pid == nil && !slot.givenUp && (slot.startAt ?? .now) <= .now {
            spawn(slot)
        }
    }

    func spawn(_ slot: ChildSlot) {
        let childName = "\(slot.role.kind.rawValue)-" + Self.randomSuffix()
        var spec = slot.role
        spec.name = childName
        var environment = options.environment
        // Only the supervisor talks to systemd. The database URL and PGPASSWORD travel in the
        // spec, not in the environment, which every process of the same user can read in
        // /proc/PID/environ for as long as the child lives.
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                    "DROVER_DATABASE_URL", "DROVER_TEST_HANDLERS"] {
            environment[key] = nil
        }
        let pgpassword = environment.removeValue(forKey: "PGPASSWORD")
        if !location.isSQLite { spec.pgpassword = pgpassword }
        do {
            let specFile = try spec.memoryFile()
            defer { close(specFile) }
            let pid = try Spawn.start(
                "/proc/self/exe", argv0: ProcessArguments.all.first ?? "drover", arguments: ["_child", spec.kind.rawValue],
                environment: environment, descriptors: [deathPipe[0], lifeSigns.childEnd, specFile])
            watched[pid] = WatchedChild(startedAt: .now())
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
    func reap() {
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

    func killOrphans() {
        let killed = Orphans.kill(except: Set(slots.compactMap(\.pid)).union(draining.keys))
        if !killed.isEmpty {
            log.warning("killed processes left behind by a child that is gone", [("pids", killed.map(String.init).joined(separator: ","))])
        }
    }

    func childExited(_ pid: pid_t, status: Int32) {
        let exitCode: Int32? = (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
        let signal: Int32? = exitCode == nil ? status & 0x7f : nil
        let how = exitCode.map { "exited with status \($0)" } ?? "was killed by signal \(signal!) (\(Signals.signalName(signal!)))"
        let killedBecause = watched.removeValue(forKey: pid)?.killedBecause
        let stopping: Bool = { if case .stopping = phase { return true } else { return false } }()
        if let childName = draining.removeValue(forKey: pid) {
            let decision = ChildExit.decide(status: exitCode, supervisorStopping: stopping, removedByReload: true)
            log.info("child stopped", [("name", childName), ("how", how)])
            releaseJobs(of: childName, kind: nil, crashed: decision.releaseAsCrashed, how: how, exitCode: exitCode, signal: signal)
            return
        }
        guard let slot = slots.first(where: { $0.pid == pid }), let childName = slot.name else { return }
        slot.pid = nil
        slot.name = nil
        let decision = ChildExit.decide(status: exitCode, supervisorStopping: stopping, removedByReload: false)
        let reason = killedBecause.map { " after it was killed for \($0)" } ?? ""
        if decision.died {
            log.warning("child died", [("name", childName), ("kind", slot.role.kind.rawValue), ("how", how + reason)])
            lastError = "\(slot.role.kind.rawValue) \(childName) \(how)\(reason)"
        } else {
            log.info("child exited", [("name", childName), ("how", how)])
        }
        releaseJobs(of: childName, kind: slot.role.kind, crashed: decision.releaseAsCrashed, how: how + reason,
                    exitCode: exitCode, signal: signal)
        switch decision.restart {
        case .none:
            return
        case .never:
            slot.givenUp = true
            log.error("child exited with a configuration error (78); not starting it again", [("name", childName)])
            return
        case .now, .afterBackoff:
            let delay = slot.scheduleRestart(crashed: decision.restart == .afterBackoff)
            restarts[slot.role.kind.rawValue, default: 0] += 1
            log.info("starting a replacement", [("kind", slot.role.kind.rawValue), ("in", DurationText.format(delay))])
            if intensity.record() { crashLoop() }
        }
    }

    /// Reads the signs of life the children sent.
    func readLifeSigns() {
        for sign in lifeSigns.take() {
            guard var child = watched[sign.pid] else { continue }
            if child.sign.map({ sign.sentAt >= $0.sentAt }) ?? true { child.sign = sign }
            watched[sign.pid] = child
        }
    }

    /// Kills the children that stopped giving signs of life, or still run jobs as their lease runs
    /// out (``ChildWatch``). Their jobs are released as crashed when they are reaped, and the
    /// commands they leave behind are killed with them (``killOrphans()``).
    func watchChildren() {
        let now = HostInstant.now()
        for (pid, child) in watched where child.killedBecause == nil {
            let verdict = ChildWatch.verdict(startedAt: child.startedAt, sign: child.sign, now: now,
                                             aliveThreshold: settings.aliveThreshold, margin: settings.heartbeatInterval)
            let name = slots.first(where: { $0.pid == pid })?.name ?? draining[pid] ?? "pid \(pid)"
            let because: String
            switch verdict {
            case .fine:
                continue
            case .hung(let silentFor):
                because = "giving no sign of life for \(DurationText.format(silentFor)) (hung: frozen, or stuck in a call)"
                log.error("a child is hung; killing it (SIGKILL), releasing its jobs as crashed, and replacing it", [
                    ("name", name), ("child_pid", String(pid)), ("silent_for", DurationText.format(silentFor)),
                    ("heartbeat_age", child.sign.map { DurationText.format(now - $0.sentAt) } ?? "never"),
                ])
            case .leaseRunningOut(let running, let remaining):
                because = "still running \(running) jobs \(DurationText.format(max(.zero, remaining))) before its lease ran out"
                log.error("a child still runs jobs as its lease runs out (it did not fence itself: frozen, or stuck); "
                          + "killing it (SIGKILL) before another host may take its jobs over", [
                              ("name", name), ("child_pid", String(pid)), ("running", String(running)),
                              ("lease_left", DurationText.format(remaining)),
                              ("heartbeat_age", DurationText.format(settings.aliveThreshold - remaining)),
                          ])
            }
            watched[pid]?.killedBecause = because
            kill(pid, SIGKILL)
        }
    }

    /// When ``watchChildren()`` must look again.
    func nextWatch() -> ContinuousClock.Instant? {
        let now = HostInstant.now()
        let next = watched.values.filter { $0.killedBecause == nil }.map {
            ChildWatch.nextCheck(startedAt: $0.startedAt, sign: $0.sign, aliveThreshold: settings.aliveThreshold, margin: settings.heartbeatInterval)
        }.min()
        return next.map { ContinuousClock.now + max(.zero, $0 - now) }
    }

    /// Has the agent give back the jobs of a child that is gone: as crashed (counting against each
    /// job's max_crashes) when it died, as released when it stopped.
    func releaseJobs(
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

    func crashLoop() {
        guard case .running = phase else { return }
        log.error("children keep crashing: more than max_restarts restarts within restart_window; stopping", [
            ("max_restarts", String(settings.maxRestarts)), ("restart_window", DurationText.format(settings.restartWindow)),
        ])
        beginStopping(status: ExitStatus.software.rawValue, immediate: false, reason: "children keep crashing")
    }

    // MARK: - Signals

    func handleSignals() {
        for (signal, _) in signals.pending() {
            switch signal {
            case SIGTERM, SIGINT:
                beginStopping(status: ExitStatus.ok.rawValue, immediate: false, reason: signal == SIGTERM ? "SIGTERM" : "SIGINT")
            case SIGQUIT:
                beginStopping(status: ExitStatus.ok.rawValue, immediate: true, reason: "SIGQUIT")
            case SIGHUP:
                reload()
            default:
                break  // SIGCHLD: reap() runs after every wakeup.
            }
        }
    }

    func beginStopping(status: Int32, immediate: Bool, reason: String) {
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

    func killRemaining() {
        for pid in slots.compactMap(\.pid) + draining.keys { kill(pid, SIGKILL) }
    }

    /// Deregisters (its children's jobs were released first: the agent runs tasks in order) and
    /// returns `status`, waiting a little for the database but not forever.
    func finish(_ status: Int32) -> Int32 {
        killOrphans()
        let store = self.store
        let id = supervisorID
        let shared = self.shared
        agent.submit("deregister", essential: true) { connection in
            _ = try store.deregister(processID: id, reason: .graceful, on: connection)
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

}
