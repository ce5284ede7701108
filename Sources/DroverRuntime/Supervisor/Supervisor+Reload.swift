import DroverPersistence
import DroverQueue
import Foundation

/// SIGHUP: read the configuration again and reconcile the children with it.
extension SupervisorProcess {

    func reload() {
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
            try Supervisor.checkHandlerUsers(configuration)
            try Supervisor.checkWebPassword(configuration, environment: options.environment)
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
        let rateLimits = rateLimitRules(for: configuration)
        let hooks = failureHooks(for: configuration)
        warnAboutUnhandledHooks(hooks)
        agent.submit("update the recurring tasks, concurrency and rate limits and failure hooks of the configuration", essential: true) { connection in
            try store.syncStaticTasks(tasks, on: connection)
            try store.syncConcurrencyRules(rules, on: connection)
            try store.syncRateLimitRules(rateLimits, on: connection)
            try store.syncFailureHooks(hooks, on: connection)
            shared.recurringTasksExist = try store.hasTasks(on: connection)
        }
        intensity = RestartIntensity(maxRestarts: configuration.supervisor.maxRestarts, window: configuration.supervisor.restartWindow)
        let wanted = roles(for: configuration)
        let plan = ReloadPlan.reconcile(current: slots.map(\.role), wanted: wanted)
        let kept = zip(wanted, plan.slots).map { role, index in index.map { slots[$0] } ?? ChildSlot(role: role) }
        let added = plan.slots.filter { $0 == nil }.count
        let unmatched = plan.drained.map { slots[$0] }
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
}
