import CProcess
import DroverPersistence
import DroverQueue
import Foundation

/// Starting up: the database (waited for), the schema, the registration, recovery of claims left
/// behind, the configuration's recurring tasks and concurrency limits, and the children it asks for.
extension SupervisorProcess {

    /// Connects (waiting out an unreachable database), checks the schema, registers, recovers claims
    /// left by processes that vanished, and starts the children. Returns an exit status to stop with.
    func start() -> Int32? {
        // The first line says which database this is, and why.
        if location.source == .embeddedDefault {
            log.info("no database configured: using SQLite at \(DatabaseLocation.sqlitePath(location.connectionString) ?? "")", [
                ("hint", "set database.url (or DROVER_DATABASE_URL) to a postgresql:// URL to use PostgreSQL"),
            ])
        } else {
            // In the message itself: the journal shows only the message.
            log.info("using \(location.isSQLite ? "SQLite" : "PostgreSQL") \(location.redacted) (\(location.source.description))")
        }
        var lastExtension = ContinuousClock.now - .seconds(60)
        var backoff = Duration.milliseconds(250)
        var waitingLogged = false
        let lockTimeout = RuntimeTimeouts.lockTimeout(heartbeatInterval: settings.heartbeatInterval, aliveThreshold: settings.aliveThreshold)
        while true {
            do {
                let connection = try Driver.openForRuntime(
                    url: location.connectionString, schema: location.schema, applicationName: "drover supervisor \(name)", lockTimeout: lockTimeout,
                    timeouts: runtimeTimeouts)
                let pending = try store.driver.prepareSchema(of: store, on: connection, log: log)
                if !pending.isEmpty {
                    log.error("the database schema is not up to date: run drover migrate", [
                        ("schema", location.schema), ("pending", pending.map(String.init).joined(separator: ",")),
                    ])
                    return ExitStatus.unavailable.rawValue
                }
                let record = try store.register(
                    kind: .supervisor, name: name, pid: getpid(), hostname: ChildProcess.hostname, supervisorID: nil,
                    metadata: .emptyObject, on: connection)
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
                try store.syncRateLimitRules(rateLimitRules(for: options.configuration), on: connection)
                let hooks = failureHooks(for: options.configuration)
                try store.syncFailureHooks(hooks, on: connection)
                warnAboutUnhandledHooks(hooks)
                shared.recurringTasksExist = try store.hasTasks(on: connection)
                break
            } catch let error as DatabaseError
                where Driver.waitsForDatabase && ([.connectionFailed, .connectionLost].contains(error.code) || error.sqlState == "57P03") {
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
                    return ExitStatus.ok.rawValue
                }
                backoff = min(backoff * 2, .seconds(5))
            } catch let error as DatabaseError {
                let status = error.code == .invalidConnectionString ? ExitStatus.config.rawValue : ExitStatus.unavailable.rawValue
                let hint = error.code == .undefinedTable || error.sqlState == "3F000" ? "; run drover migrate" : ""
                log.error("cannot start: \(error.message)\(hint)", [("database", location.source.description)])
                return status
            } catch {
                log.error("cannot start", [("error", "\(error)")])
                return ExitStatus.software.rawValue
            }
        }
        do {
            try Orphans.adopt()
        } catch {
            log.error("cannot become the subreaper of the job commands", [("error", error.description)])
            return ExitStatus.software.rawValue
        }
        guard drover_pipe_high(&deathPipe, 0) == 0 else {
            log.error("cannot create the parent-death pipe", [("error", String(cString: strerror(errno)))])
            return ExitStatus.software.rawValue
        }
        do {
            lifeSigns = try LifeSignReader()
        } catch {
            log.error("cannot create the children's life-sign pipe", [("error", error.description)])
            return ExitStatus.software.rawValue
        }
        let location = self.location
        let runtimeTimeouts = self.runtimeTimeouts
        let name = self.name
        let session = DatabaseSession<Driver.Database>(log: log, maximumBackoff: settings.heartbeatInterval) {
            try Driver.openForRuntime(
                url: location.connectionString, schema: location.schema, applicationName: "drover supervisor \(name)",
                lockTimeout: lockTimeout, timeouts: runtimeTimeouts)
        }
        agent = DatabaseAgent(session: session, log: log)
        slots = roles(for: options.configuration).map(ChildSlot.init(role:))
        nextHeartbeat = .now + settings.heartbeatInterval
        nextPrune = .now + settings.aliveThreshold / 2
        notifier.status("starting \(slots.count) processes")
        return nil
    }

    func waitAndReadSignals(timeout: Duration) -> [(signal: Int32, sender: pid_t)] {
        _ = waitForReadable([signals.descriptor], timeout: timeout)
        return signals.pending()
    }

    /// The children a configuration asks for, as specs without names.
    func roles(for configuration: Configuration) -> [ChildSpec] {
        let location = DatabaseLocation.resolve(
            commandLineURL: options.commandLineURL, commandLineSchema: options.commandLineSchema,
            environment: options.environment, configuration: configuration)
        let s = configuration.supervisor
        func base(_ kind: ProcessKind) -> ChildSpec {
            ChildSpec(
                kind: kind, name: "", supervisorID: supervisorID, databaseURL: location.connectionString, schema: location.schema,
                heartbeatIntervalMilliseconds: s.heartbeatInterval.wholeMilliseconds,
                aliveThresholdMilliseconds: s.aliveThreshold.wholeMilliseconds,
                networkTimeoutMilliseconds: configuration.database.networkTimeout(aliveThreshold: s.aliveThreshold).wholeMilliseconds,
                statementTimeoutMilliseconds: configuration.database.statementTimeout(
                    aliveThreshold: s.aliveThreshold, heartbeatInterval: s.heartbeatInterval).wholeMilliseconds,
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
        if let web = configuration.web {
            var spec = base(.web)
            spec.web = .init(listen: web.listen, readOnly: web.readOnly, auth: web.auth,
                             passwordStamp: web.auth?.stamp(environment: options.environment))
            roles.append(spec)
        }
        return roles
    }

    /// The configuration's limits, then the Swift job types' for classes it does not have.
    func concurrencyRules(for configuration: Configuration) -> [ConcurrencyRule] {
        let configured = configuration.concurrencyRules
        let classes = Set(configuration.handlers.keys)
        return configured + options.jobConcurrencyRules.filter { !classes.contains($0.className) }
    }

    func rateLimitRules(for configuration: Configuration) -> [RateLimitRule] {
        let classes = Set(configuration.handlers.keys)
        return configuration.rateLimitRules + options.jobRateLimitRules.filter { !classes.contains($0.className) }
    }

    /// A hook class that neither a handler nor a Swift job type of this host runs: its jobs would
    /// fail as an unknown class here (another host may run it, so this is a warning).
    func warnAboutUnhandledHooks(_ hooks: [FailureHook]) {
        let known = Set(options.configuration.handlers.keys).union(options.jobClasses)
        for hookClass in Set(hooks.map(\.hookClass)).sorted() where !known.contains(hookClass) {
            log.warning("on_failure names a job class no handler or job type of this host runs: its jobs will fail here as an "
                        + "unknown class; declare a handler for it", [("class", hookClass)])
        }
    }

    func failureHooks(for configuration: Configuration) -> [FailureHook] {
        let classes = Set(configuration.handlers.keys)
        return configuration.failureHooks + options.jobFailureHooks.filter { !classes.contains($0.className) }
    }

    func schedulerRole(_ base: ChildSpec) -> ChildSpec {
        var spec = base
        spec.scheduler = .init(pollingIntervalMilliseconds: 1000)
        return spec
    }

    /// Starts a scheduler when recurring tasks were added at run time and none runs yet.
    func addSchedulerIfNeeded() {
        guard case .running = phase, shared.recurringTasksExist, !slots.contains(where: { $0.role.kind == .scheduler }),
              let role = roles(for: options.configuration).first(where: { $0.kind == .scheduler }) else { return }
        slots.append(ChildSlot(role: role))
        log.info("recurring tasks exist: starting a scheduler")
    }
}
