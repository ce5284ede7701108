import DroverPersistence
import DroverQueue
import Foundation

/// What the supervisor does on a clock (heartbeats, pruning, the watchdog, registration checks) and
/// what it does with the database agent's news (readiness, STATUS).
extension SupervisorProcess {

    func timers() {
        var clock = SupervisorTick.Clock(
            nextHeartbeat: nextHeartbeat, nextPrune: nextPrune, nextWatchdog: nextWatchdog, nextRegistrationCheck: nextRegistrationCheck)
        let health = agent.health
        let view = SupervisorTick.View(
            now: .now, heartbeatInterval: settings.heartbeatInterval, aliveThreshold: settings.aliveThreshold,
            watchdogInterval: notifier.watchdogInterval, databaseDown: health.isDown, connectedSince: health.connectedSince,
            databaseThreadBusyFor: agent.busyFor, awaitingReady: awaitingReady)
        let actions = SupervisorTick.decide(view, &clock)
        (nextHeartbeat, nextPrune, nextWatchdog, nextRegistrationCheck) =
            (clock.nextHeartbeat, clock.nextPrune, clock.nextWatchdog, clock.nextRegistrationCheck)
        for action in actions {
            switch action {
            case .heartbeat: heartbeatNow()
            case .prune: prune()
            case .feedWatchdog:
                watchdogWithheld = false
                notifier.watchdog()
            case .withholdWatchdog:
                // A database thread stuck past alive_threshold (every statement has a timeout, every
                // connection keepalives) is a supervisor that cannot release, prune or heartbeat:
                // systemd's watchdog restarts it.
                if !watchdogWithheld {
                    watchdogWithheld = true
                    log.error("the database thread is stuck; no longer feeding systemd's watchdog, so that systemd restarts this supervisor",
                              [("task", agent.currentTask ?? "-"), ("for", DurationText.format(agent.busyFor ?? .zero))])
                }
            case .checkRegistrations: checkRegistrations()
            }
        }
    }

    func heartbeatNow() {
        let heartbeat = self.heartbeat!
        let shared = self.shared
        let store = self.store
        let id = supervisorID
        let metadata = (try? JSON(encoding: SupervisorMetadata(children: slots.filter { $0.pid != nil }.count, restarts: restarts))) ?? .emptyObject
        agent.submit("heartbeat") { connection in
            do {
                try heartbeat.write(metadata: metadata, at: store.now().sql, on: connection)
            } catch let error as DatabaseError where error.code == .recordNotFound {
                shared.ownRowGone = true
                return
            }
            shared.totals = try store.processTotals(supervisorID: id, on: connection)
        }
    }

    func checkRegistrations() {
        let store = self.store
        let shared = self.shared
        let id = supervisorID
        agent.submit("check registrations") { connection in
            shared.registered = try store.processNames(supervisorID: id, on: connection)
        }
    }

    func prune() {
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
            shared.recurringTasksExist = try store.hasTasks(on: connection)
        }
    }

    func afterAgentNews() {
        addSchedulerIfNeeded()
        if shared.ownRowGone, case .running = phase {
            log.error("this supervisor's registration is gone (another supervisor took it for dead); stopping")
            beginStopping(status: ExitStatus.software.rawValue, immediate: false, reason: "registration lost")
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
                if !trimmedStartupPages {
                    trimmedStartupPages = true
                    StartupPages.trim(log: log)
                }
                return
            }
        }
        let line = statusLine()
        if line != lastStatus, !awaitingReady {
            lastStatus = line
            notifier.status(line)
        }
    }

    func statusLine() -> String {
        let workers = slots.filter { $0.role.kind == .worker && $0.pid != nil }.count
        let dispatchers = slots.filter { $0.role.kind == .dispatcher && $0.pid != nil }.count
        let totals = shared.totals
        let schedulers = slots.filter { $0.role.kind == .scheduler && $0.pid != nil }.count
        let web = slots.first { $0.role.kind == .web && $0.pid != nil }?.role.web.map { ", web on \($0.listen)" } ?? ""
        var line = "\(workers) worker\(workers == 1 ? "" : "s"), \(dispatchers) dispatcher\(dispatchers == 1 ? "" : "s")"
            + (schedulers > 0 ? ", \(schedulers) scheduler" : "") + web + "; "
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
}

/// What a supervisor's row says of it: its running children, and the restarts by kind.
struct SupervisorMetadata: Codable {
    let children: Int
    let restarts: [String: Int]
}
