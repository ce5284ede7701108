import CProcess
import DroverPersistence
import DroverQueue
import Foundation

/// What every child of the supervisor does the same way: read signals, notice the supervisor's
/// death on fd 3, register, heartbeat, and stop. (Its spec came on fd 5, ``ChildSpec/read()``.)
final class ChildRuntime<Driver: RuntimeDriver> {
    static var parentDeathDescriptor: Int32 { ChildProcess.parentDeathDescriptor }

    let spec: ChildSpec
    let log: Log
    let store: JobStore<Driver>
    let session: DatabaseSession<Driver.Database>
    let signals = SignalReader([SIGTERM, SIGINT, SIGQUIT, SIGHUP])
    private(set) var heartbeat: Heartbeat?
    private(set) var stopping = false
    private(set) var stopDeadline: ContinuousClock.Instant?
    private(set) var nextHeartbeat = ContinuousClock.now
    private var parentAlive = true
    /// The lease on the jobs this process claims, renewed by each heartbeat that is stored.
    private(set) var lease: Lease
    private let lifeSigns: LifeSignSender?

    init(spec: ChildSpec) throws {
        self.spec = spec
        log = Log([("process", spec.kind.rawValue), ("name", spec.name), ("pid", String(getpid()))])
        store = try JobStore<Driver>(schema: spec.schema, preserveFinishedJobs: spec.preserveFinishedJobs)
        // The process's name too, so that pg_stat_activity tells one worker's session from another's.
        let applicationName = "drover \(spec.kind.rawValue) \(spec.name)"
        let lockTimeout = RuntimeTimeouts.lockTimeout(
            heartbeatInterval: Duration(milliseconds: spec.heartbeatIntervalMilliseconds),
            aliveThreshold: Duration(milliseconds: spec.aliveThresholdMilliseconds))
        session = DatabaseSession(log: log, maximumBackoff: Duration(milliseconds: spec.heartbeatIntervalMilliseconds)) { [spec] in
            try Driver.openForRuntime(
                url: spec.databaseURL, password: spec.pgpassword, schema: spec.schema, applicationName: applicationName, lockTimeout: lockTimeout,
                timeouts: RuntimeTimeouts(network: Duration(milliseconds: spec.networkTimeoutMilliseconds),
                                          statement: Duration(milliseconds: spec.statementTimeoutMilliseconds),
                                          heartbeatInterval: Duration(milliseconds: spec.heartbeatIntervalMilliseconds)))
        }
        let heartbeatInterval = Duration(milliseconds: spec.heartbeatIntervalMilliseconds)
        lease = Lease(aliveThreshold: Duration(milliseconds: spec.aliveThresholdMilliseconds), margin: heartbeatInterval)
        lifeSigns = ChildProcess.hasLifeSignPipe ? LifeSignSender(interval: heartbeatInterval / 4) : nil
        // A call that returned is progress, even one that failed on a lock: a process whose every
        // statement waits for SQLite's write lock is slow, not hung.
        session.onProgress = { [weak self] in self?.signOfLife() }
    }

    var heartbeatInterval: Duration { Duration(milliseconds: spec.heartbeatIntervalMilliseconds) }

    /// How many jobs the process runs now (a worker's pool; nobody else runs any).
    var runningJobs: () -> Int = { 0 }

    /// Tells the supervisor this process is alive, how many jobs it runs, and until when its lease
    /// holds (``LifeSign``); sends only when due or changed.
    func signOfLife() {
        lifeSigns?.send(running: runningJobs(), lease: lease)
    }

    /// Tells the supervisor, before they start, that `more` jobs are about to run: were this
    /// process to freeze as they start, its supervisor must know they run, to kill it before its
    /// lease ends (the model check found the overlap when the count came after the start). False
    /// when the supervisor could not be told (its pipe full): the jobs must not start.
    func announce(more: Int) -> Bool {
        lifeSigns?.send(running: runningJobs() + more, lease: lease) ?? true
    }

    /// Waits for `descriptors` (its own are added) for at most `timeout`, and at most a quarter
    /// of a heartbeat interval, so that its supervisor keeps getting signs of life; then reacts
    /// to signals and to the supervisor's death.
    func wait(for descriptors: [Int32] = [], timeout: Duration) -> Set<Int32> {
        signOfLife()
        let readable = waitForReadable(self.descriptors + descriptors, timeout: max(.zero, min(timeout, heartbeatInterval / 4)))
        handle(readable)
        return readable
    }

    /// The descriptors the loop must wait on besides its own.
    var descriptors: [Int32] { parentAlive ? [signals.descriptor, Self.parentDeathDescriptor] : [signals.descriptor] }

    /// Reacts to signals and to the supervisor's death among `readable`.
    func handle(_ readable: Set<Int32>) {
        if readable.contains(signals.descriptor) {
            for (signal, _) in signals.pending() {
                switch signal {
                case SIGTERM, SIGINT: beginStopping(reason: signal == SIGTERM ? "SIGTERM" : "SIGINT")
                case SIGQUIT:
                    // Immediate: the supervisor releases this process's jobs.
                    log.info("stopping at once (SIGQUIT)")
                    _exit(ExitStatus.ok.rawValue)
                default: break  // SIGHUP: the supervisor reloads; children do not.
                }
            }
        }
        if parentAlive, readable.contains(Self.parentDeathDescriptor) {
            var byte: UInt8 = 0
            if read(Self.parentDeathDescriptor, &byte, 1) <= 0 {
                parentAlive = false
                beginStopping(reason: "the supervisor is gone")
            }
        }
    }

    func beginStopping(reason: String) {
        guard !stopping else { return }
        stopping = true
        stopDeadline = .now + Duration(milliseconds: spec.shutdownTimeoutMilliseconds)
        log.info("stopping", [("reason", reason), ("timeout", DurationText.format(Duration(milliseconds: spec.shutdownTimeoutMilliseconds)))])
    }

    /// Registers, waiting out a database outage; false when asked to stop first.
    func register(metadata: JSON) -> Bool {
        while !stopping {
            let sent = HostInstant.now()
            do {
                let record = try session.run { connection in
                    try store.register(
                        kind: spec.kind, name: spec.name, pid: getpid(), hostname: ChildProcess.hostname,
                        supervisorID: spec.supervisorID, metadata: metadata, on: connection)
                }
                if let record {
                    heartbeat = try Heartbeat(record: record)
                    lease.renewed(sentAt: sent)
                    signOfLife()
                    nextHeartbeat = .now + heartbeatInterval
                    log.info("registered", [("id", String(heartbeat!.processID))])
                    StartupPages.trim(log: log)
                    return true
                }
            } catch {
                // Not an outage (a missing table, say): try again in a while rather than spin.
                log.error("cannot register", [("error", "\(error)")])
                let until = ContinuousClock.now + .seconds(1)
                while !stopping, ContinuousClock.now < until { _ = wait(timeout: ContinuousClock.now.duration(to: until)) }
                continue
            }
            let until = session.nextRetry ?? (ContinuousClock.now + .seconds(1))
            while !stopping, ContinuousClock.now < until { _ = wait(timeout: ContinuousClock.now.duration(to: until)) }
        }
        return false
    }

    /// Beats when due, renewing the lease when the beat is stored. Returns an exit status when the
    /// process must stop at once. A worker (`fencesItself`) is never stopped here for heartbeats
    /// that fail: it fences itself when its lease runs low (``Worker``); the others, which hold
    /// no jobs, exit to be replaced once theirs have failed for `alive_threshold`.
    func heartbeatIfDue(metadata: @autoclosure () -> JSON, fencesItself: Bool = false) -> Int32? {
        defer { signOfLife() }
        guard let heartbeat, ContinuousClock.now >= nextHeartbeat else { return nil }
        nextHeartbeat = .now + heartbeatInterval
        let sent = HostInstant.now()
        switch heartbeat.beat(metadata: metadata(), at: store.now().sql, session: session) {
        case .beat:
            lease.renewed(sentAt: sent)
            return nil
        case .outage:
            return nil
        case .rowGone:
            log.warning("this process's registration is gone: it was taken for dead and its jobs recovered; exiting to be replaced")
            return ExitStatus.replaceMe.rawValue
        case .failed(let reason):
            let limit = Duration(milliseconds: spec.aliveThresholdMilliseconds)
            if !fencesItself && heartbeat.failingFor > limit {
                log.error("heartbeats have failed for longer than alive_threshold; exiting to be replaced", [("error", reason)])
                return ExitStatus.replaceMe.rawValue
            }
            // One postponed heartbeat is routine (a row lock held for a moment); its change stays
            // pending and the next heartbeat writes it.
            log.debug("heartbeat failed; its change stays pending for the next one", [("error", reason)])
            if heartbeat.failingFor > heartbeatInterval * 2 {
                log.warning("heartbeats are failing", [("error", reason)])
            }
            return nil
        }
    }

    /// Gives back the jobs still held and removes the registration.
    func deregister() {
        guard let heartbeat else { return }
        do {
            let outcome = try session.run { connection in
                try store.deregister(processID: heartbeat.processID, reason: .graceful, on: connection)
            }
            if let outcome, !outcome.released.isEmpty {
                log.info("released unfinished jobs", [("jobs", outcome.released.map(String.init).joined(separator: ","))])
            } else if outcome == nil {
                log.warning("cannot deregister: the database is unreachable; the supervisor will release this process's jobs")
            }
        } catch {
            log.error("cannot deregister; the supervisor will release this process's jobs", [("error", "\(error)")])
        }
    }
}

/// What is the same for every child, whichever backend it runs on.
enum ChildProcess {
    /// The read end of the pipe whose write end only the supervisor holds: EOF means it died.
    static let parentDeathDescriptor: Int32 = 3

    /// Whether descriptor 4 is the life-sign pipe the supervisor gave (``LifeSign``).
    static let hasLifeSignPipe: Bool = {
        var info = stat()
        return fstat(LifeSignSender.descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
    }()

    /// How a child that could not start exits: only an error that names a setting which cannot
    /// work retires its slot (``ExitStatus/config``); anything else (a descriptor limit, a user
    /// database that did not answer, an error nobody foresaw) may pass, and the supervisor tries
    /// again after its restart backoff (``ExitStatus/transient``).
    static func startFailureStatus(_ error: any Error) -> ExitStatus {
        switch error {
        // The app's services setup (a database not up yet): the app's own code, retried.
        case is TransientFailure, is WorkerServices.SetupFailed: .transient
        case is ValidationFailure, is ConfigurationError, is QueueError: .config
        default: .transient
        }
    }

    static let hostname: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(cString: buffer)
    }()
}

/// Memory a process used only to start.
enum StartupPages {
    /// Drops the pages of the program's and libraries' files that this process maps unchanged
    /// (code and read-only data; a written page, such as relocated data, stays). Most of what a
    /// process has mapped by then served only to start it: the dynamic linker's relocation
    /// tables, start-up code, and the neighbours the kernel maps with every page it faults in. The
    /// pages stay in the page cache; those the process still uses come back on a minor fault.
    /// Called once a process has started its work (a child registered, the supervisor ready).
    static func trim(log: Log) {
        let dropped = drover_trim_file_pages()
        if dropped >= 0 { log.debug("dropped start-up pages", [("kib", String(dropped))]) }
    }
}
