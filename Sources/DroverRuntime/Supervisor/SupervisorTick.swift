/// What the supervisor's loop does on its clock, decided from what it sees (no I/O): the table
/// below, tested case by case in `LeaseDecisionTests`. ``SupervisorProcess/timers()`` carries the
/// actions out.
///
/// | when | and | the supervisor |
/// |---|---|---|
/// | the heartbeat is due | | heartbeats (through its database thread), next one in `heartbeat_interval` |
/// | a pruning pass is due | the database has answered for `alive_threshold` since it came back | prunes processes of any host older than `alive_threshold`, and orphaned claims |
/// | a pruning pass is due | the database is down, or came back less than `alive_threshold` ago | skips it: live processes have not had the time to heartbeat again |
/// | systemd's watchdog is due | its database thread is not stuck past `alive_threshold` | sends WATCHDOG=1 |
/// | systemd's watchdog is due | its database thread is stuck past `alive_threshold` | withholds it, so that systemd restarts it |
/// | it waits for its children to register | every 100 ms | reads who registered |
enum SupervisorTick {
    struct Clock: Equatable {
        var nextHeartbeat: ContinuousClock.Instant
        var nextPrune: ContinuousClock.Instant
        var nextWatchdog: ContinuousClock.Instant
        var nextRegistrationCheck: ContinuousClock.Instant
    }

    struct View {
        var now: ContinuousClock.Instant
        var heartbeatInterval: Duration
        var aliveThreshold: Duration
        /// systemd's `WATCHDOG_USEC`, when it watches.
        var watchdogInterval: Duration?
        var databaseDown: Bool
        /// Since when the database has answered; nil while it never has since an outage.
        var connectedSince: ContinuousClock.Instant?
        /// How long its database thread has been in its current task, if it is in one.
        var databaseThreadBusyFor: Duration?
        var awaitingReady: Bool
    }

    enum Action: Equatable {
        case heartbeat
        case prune
        case feedWatchdog
        /// The watchdog is due and withheld: the database thread is stuck.
        case withholdWatchdog
        case checkRegistrations
    }

    static func decide(_ view: View, _ clock: inout Clock) -> [Action] {
        var actions: [Action] = []
        let now = view.now
        if now >= clock.nextHeartbeat {
            clock.nextHeartbeat = now + view.heartbeatInterval
            actions.append(.heartbeat)
        }
        if now >= clock.nextPrune {
            clock.nextPrune = now + max(.milliseconds(100), view.aliveThreshold / 2)
            if !view.databaseDown, let since = view.connectedSince, now - since >= view.aliveThreshold {
                actions.append(.prune)
            }
        }
        if let interval = view.watchdogInterval, now >= clock.nextWatchdog {
            clock.nextWatchdog = now + interval / 2
            let stuck = view.databaseThreadBusyFor.map { $0 > view.aliveThreshold } ?? false
            actions.append(stuck ? .withholdWatchdog : .feedWatchdog)
        }
        if view.awaitingReady, now >= clock.nextRegistrationCheck {
            clock.nextRegistrationCheck = now + .milliseconds(100)
            actions.append(.checkRegistrations)
        }
        return actions
    }
}

/// How a reload reconciles the children with a new configuration (no I/O): a child whose spec
/// (its role: everything but its name) is still asked for keeps running, untouched; a role asked
/// for anew gets a new slot; a child no longer asked for drains (SIGTERM: it finishes its jobs and
/// is not replaced). Roles that appear several times are matched one for one.
enum ReloadPlan {
    struct Plan: Equatable {
        /// For each wanted role in order: the index of the current slot it keeps, or nil for a new one.
        var slots: [Int?]
        /// Indexes of current slots no longer wanted.
        var drained: [Int]
    }

    static func reconcile(current: [ChildSpec], wanted: [ChildSpec]) -> Plan {
        var unmatched = Array(current.indices)
        var slots: [Int?] = []
        for role in wanted {
            if let position = unmatched.firstIndex(where: { current[$0] == role }) {
                slots.append(unmatched.remove(at: position))
            } else {
                slots.append(nil)
            }
        }
        return Plan(slots: slots, drained: unmatched)
    }
}
