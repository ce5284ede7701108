@testable import DroverRuntime
import Foundation
import Testing

/// The lease and the decisions built on it, as tables: no process, no database. What each row
/// means for a user is in docs/reliability.md ("Leases and fencing").
@Suite("Leases and the decisions of the worker's and the supervisor's loops")
struct LeaseDecisionTests {
    static let t0 = HostInstant(nanoseconds: 1_000_000_000_000)
    static func at(_ seconds: Double) -> HostInstant { t0 + .milliseconds(Int64(seconds * 1000)) }

    @Test("a lease ends alive_threshold after the heartbeat that renewed it was sent, and fences one margin before")
    func leasePhases() {
        var lease = Lease(aliveThreshold: .seconds(60), margin: .seconds(10))
        #expect(lease.phase(at: Self.at(1_000)) == .valid, "no lease before registering: nothing held")
        lease.renewed(sentAt: Self.at(0))
        let table: [(Double, Lease.Phase)] = [
            (0, .valid), (49.999, .valid), (50, .fencing), (54.999, .fencing), (55, .killing), (59.999, .killing), (60, .expired), (600, .expired),
        ]
        for (second, phase) in table { #expect(lease.phase(at: Self.at(second)) == phase, "at \(second) s") }
        #expect(lease.supervisorKillAt == Self.at(57.5))
        lease.renewed(sentAt: Self.at(10))
        #expect(lease.phase(at: Self.at(55)) == .valid, "renewed: it moves on")
        lease.renewed(sentAt: Self.at(5))
        #expect(lease.expiry == Self.at(70), "a late answer to an older heartbeat never shortens nor lengthens it wrongly")
    }

    @Test("the margin is a quarter of the threshold at most: at the smallest threshold (2 heartbeats) a whole interval would fence as the next heartbeat leaves")
    func marginCap() {
        #expect(Lease(aliveThreshold: .seconds(2), margin: .seconds(1)).margin == .milliseconds(500))
        #expect(Lease(aliveThreshold: .seconds(60), margin: .seconds(10)).margin == .seconds(10), "the defaults: one heartbeat_interval")
        var lease = Lease(aliveThreshold: .seconds(2), margin: .seconds(1))
        lease.renewed(sentAt: Self.at(0))
        #expect(lease.phase(at: Self.at(1.2)) == .valid, "the next heartbeat, sent at 1 s, has until 1.5 s to be answered")
    }

    typealias V = WorkerPass.View

    @Test("the worker's pass: fence, kill, report, exit, claim; every row of the table")
    func workerPass() {
        let rows: [(String, V, [WorkerPass.Action])] = [
            ("idle, lease valid, claim wanted: claim into every free thread",
             V(busy: 1, threads: 4, claimWanted: true), [.turn(claimLimit: 3)]),
            ("all threads busy: report only when results wait", V(pending: 2, busy: 4, threads: 4, claimWanted: true), [.turn(claimLimit: 0)]),
            ("lingering results wait for their batch", V(pending: 2, busy: 2, threads: 4, claimWanted: true, lingering: true), []),
            ("backing off after a failed turn", V(pending: 2, threads: 4, claimWanted: true, backingOff: true), []),
            ("lease under a margin: fence first, keep reporting, no claim",
             V(lease: .fencing, pending: 1, drained: false, busy: 2, threads: 4, claimWanted: true), [.fence, .turn(claimLimit: 0)]),
            ("fenced, commands still stopping: wait", V(lease: .fencing, fenced: true, drained: false, busy: 1, threads: 4), []),
            ("under half a margin: kill the commands", V(lease: .killing, fenced: true, drained: false, busy: 1, threads: 4), [.killCommands]),
            ("under half a margin with a Swift job running: exit at once",
             V(lease: .killing, fenced: true, pending: 3, drained: false, busy: 1, swiftJobsRunning: true), [.exit(.leaseLost, deregister: false)]),
            ("expired before the worker noticed (it was frozen): fence and kill in the same pass",
             V(lease: .expired, drained: false, busy: 2, threads: 2), [.fence, .killCommands]),
            ("fenced, results still to report: report (the database may be back)", V(lease: .expired, fenced: true, pending: 2), [.turn(claimLimit: 0)]),
            ("fenced, a report backing off: wait", V(lease: .expired, fenced: true, pending: 2, backingOff: true), []),
            ("fenced, nothing left: exit lease lost, without deregistering (the supervisor releases as crashed)",
             V(lease: .expired, fenced: true), [.exit(.leaseLost, deregister: false)]),
            ("fenced even if a heartbeat came back: once fenced it stays fenced",
             V(lease: .valid, fenced: true), [.exit(.leaseLost, deregister: false)]),
            ("fencing wins over a stop", V(lease: .fencing, stopping: true, drained: true), [.fence, .exit(.leaseLost, deregister: false)]),
            ("stopping: report what finished", V(stopping: true, pending: 1, drained: false, busy: 1), [.turn(claimLimit: 0)]),
            ("stopping, done: deregister and exit", V(stopping: true), [.exit(.ok, deregister: true)]),
            ("stopping past shutdown_timeout: kill, deregister (releasing the rest), exit",
             V(stopping: true, stopDeadlinePassed: true, drained: false, busy: 2), [.killCommands, .exit(.ok, deregister: true)]),
        ]
        for (name, view, expected) in rows {
            #expect(WorkerPass.decide(view) == expected, "\(name)")
        }
        #expect(WorkerPass.decide(V(stopping: true), stopStatus: .replaceMe) == [.exit(.replaceMe, deregister: true)],
                "a worker that gave up a job exits to be replaced")
    }

    static func sign(running: Int32, leaseFrom renewal: Double?, sentAt: Double) -> LifeSign {
        LifeSign(pid: 42, running: running, leaseExpiry: renewal.map { at($0) + .seconds(60) }, sentAt: at(sentAt))
    }

    @Test("the supervisor's watch: a silent child is hung after alive_threshold; one still running jobs near its lease's end is killed")
    func childWatch() {
        let rows: [(String, LifeSign?, Double, ChildWatch.Verdict)] = [
            ("started, no sign yet, within the threshold", nil, 59, .fine),
            ("started, never a sign for the threshold: hung", nil, 60, .hung(silentFor: .seconds(60))),
            ("signs keep coming", Self.sign(running: 3, leaseFrom: 100, sentAt: 100), 150, .fine),
            ("a sign 60 s old: hung", Self.sign(running: 0, leaseFrom: 100, sentAt: 100), 160, .hung(silentFor: .seconds(60))),
            ("running jobs at a quarter margin before the lease's end: killed first",
             Self.sign(running: 2, leaseFrom: 100, sentAt: 155), 157.5, .leaseRunningOut(running: 2, remaining: .milliseconds(2500))),
            ("fenced in time (nothing running): left to report and exit", Self.sign(running: 0, leaseFrom: 100, sentAt: 157), 159, .fine),
            ("running, lease not yet registered (no lease): only the silence counts", Self.sign(running: 1, leaseFrom: nil, sentAt: 10), 20, .fine),
        ]
        for (name, sign, now, expected) in rows {
            let verdict = ChildWatch.verdict(startedAt: Self.at(0), sign: sign, now: Self.at(now), aliveThreshold: .seconds(60), margin: .seconds(10))
            #expect(verdict == expected, "\(name)")
        }
        let next = ChildWatch.nextCheck(startedAt: Self.at(0), sign: Self.sign(running: 2, leaseFrom: 100, sentAt: 150),
                                        aliveThreshold: .seconds(60), margin: .seconds(10))
        #expect(next == Self.at(157.5), "the supervisor wakes exactly when the verdict can change")
    }

    @Test("life signs cross the pipe intact, whole signs only")
    func lifeSignEncoding() {
        let signs = [Self.sign(running: 7, leaseFrom: 5, sentAt: 6), Self.sign(running: 0, leaseFrom: nil, sentAt: 9)]
        let bytes = signs.flatMap(\.bytes)
        #expect(LifeSign.decode(bytes) == signs)
        #expect(LifeSign.decode(bytes.dropLast(3)) == [signs[0]], "a torn sign is not read")
    }

    @Test("a child's exit: what is released, and whether and when it is started again; every row of the table")
    func childExit() {
        typealias D = ChildExit.Decision
        let rows: [(Int32?, Bool, Bool, D)] = [
            (0, false, false, D(releaseAsCrashed: false, restart: .now, died: false)),
            (75, false, false, D(releaseAsCrashed: false, restart: .now, died: false)),
            (76, false, false, D(releaseAsCrashed: true, restart: .afterBackoff, died: true)),
            (71, false, false, D(releaseAsCrashed: true, restart: .afterBackoff, died: true)),
            (78, false, false, D(releaseAsCrashed: true, restart: .never, died: true)),
            (1, false, false, D(releaseAsCrashed: true, restart: .afterBackoff, died: true)),
            (nil, false, false, D(releaseAsCrashed: true, restart: .afterBackoff, died: true)),
            // Stopping: nothing is replaced; a lease lost still counts its stopped jobs as crashes.
            (0, true, false, D(releaseAsCrashed: false, restart: .none, died: false)),
            (76, true, false, D(releaseAsCrashed: true, restart: .none, died: false)),
            (nil, true, false, D(releaseAsCrashed: false, restart: .none, died: false)),
            // A child a reload removed.
            (0, false, true, D(releaseAsCrashed: false, restart: .none, died: false)),
            (nil, false, true, D(releaseAsCrashed: true, restart: .none, died: false)),
            (76, false, true, D(releaseAsCrashed: true, restart: .none, died: false)),
        ]
        for (status, stopping, removed, expected) in rows {
            #expect(ChildExit.decide(status: status, supervisorStopping: stopping, removedByReload: removed) == expected,
                    "status \(status.map(String.init) ?? "signal"), stopping \(stopping), removed \(removed)")
        }
    }

    @Test("start-up errors: only configuration errors retire a slot")
    func startFailures() {
        #expect(ChildProcess.startFailureStatus(ValidationFailure("queues: bad")) == .config)
        #expect(ChildProcess.startFailureStatus(TransientFailure("inotify_init1 failed: Too many open files")) == .transient)
        struct Unforeseen: Error {}
        #expect(ChildProcess.startFailureStatus(Unforeseen()) == .transient, "what nobody foresaw may pass: retried with backoff")
        #expect(TransientFailure.isTransient(errno: EMFILE) && !TransientFailure.isTransient(errno: EACCES))
    }

    @Test("the supervisor's clock: heartbeat, prune only once the database has answered for alive_threshold, feed or withhold the watchdog, check registrations")
    func supervisorTick() {
        let t = ContinuousClock.now
        func view(at seconds: Double, down: Bool = false, connectedFor: Double? = 100, busyFor: Double? = nil,
                  awaitingReady: Bool = false, watchdog: Bool = true) -> SupervisorTick.View {
            SupervisorTick.View(
                now: t + .milliseconds(Int64(seconds * 1000)), heartbeatInterval: .seconds(10), aliveThreshold: .seconds(60),
                watchdogInterval: watchdog ? .seconds(30) : nil, databaseDown: down,
                connectedSince: connectedFor.map { t + .milliseconds(Int64((seconds - $0) * 1000)) },
                databaseThreadBusyFor: busyFor.map { .milliseconds(Int64($0 * 1000)) }, awaitingReady: awaitingReady)
        }
        func fresh() -> SupervisorTick.Clock { SupervisorTick.Clock(nextHeartbeat: t, nextPrune: t, nextWatchdog: t, nextRegistrationCheck: t) }
        var clock = fresh()
        #expect(SupervisorTick.decide(view(at: 0), &clock) == [.heartbeat, .prune, .feedWatchdog])
        #expect(clock.nextHeartbeat == t + .seconds(10) && clock.nextPrune == t + .seconds(30) && clock.nextWatchdog == t + .seconds(15))
        #expect(SupervisorTick.decide(view(at: 5), &clock) == [], "nothing is due")
        #expect(SupervisorTick.decide(view(at: 10), &clock) == [.heartbeat])
        let rows: [(String, SupervisorTick.View, [SupervisorTick.Action])] = [
            ("the database down: no pruning (nobody could heartbeat)", view(at: 0, down: true), [.heartbeat, .feedWatchdog]),
            ("back for less than alive_threshold: no pruning yet", view(at: 0, connectedFor: 59), [.heartbeat, .feedWatchdog]),
            ("never reached since the outage: no pruning", view(at: 0, connectedFor: nil), [.heartbeat, .feedWatchdog]),
            ("the database thread in one task past alive_threshold: the watchdog is withheld",
             view(at: 0, busyFor: 61), [.heartbeat, .prune, .withholdWatchdog]),
            ("a slow task within alive_threshold: fed", view(at: 0, busyFor: 59), [.heartbeat, .prune, .feedWatchdog]),
            ("no watchdog asked for", view(at: 0, watchdog: false), [.heartbeat, .prune]),
            ("waiting for children to register", view(at: 0, awaitingReady: true), [.heartbeat, .prune, .feedWatchdog, .checkRegistrations]),
        ]
        for (name, row, expected) in rows {
            var clock = fresh()
            #expect(SupervisorTick.decide(row, &clock) == expected, "\(name)")
        }
    }

    @Test("a reload keeps the children whose role is still asked for, starts the new ones, drains the rest, one for one")
    func reloadPlan() {
        func role(_ queues: String, threads: Int = 1) -> ChildSpec {
            var spec = ChildSpec(kind: .worker, name: "", supervisorID: 1, databaseURL: "", schema: "drover", heartbeatIntervalMilliseconds: 1000,
                                 aliveThresholdMilliseconds: 5000, networkTimeoutMilliseconds: 1250, statementTimeoutMilliseconds: 2000,
                                 shutdownTimeoutMilliseconds: 1000, maxCrashes: 3, preserveFinishedJobs: true,
                                 clearFinishedAfterSeconds: 86_400, testHandlers: false, worker: nil, dispatcher: nil)
            spec.worker = .init(queues: [queues], threads: threads, pollingIntervalMilliseconds: 100, handlers: [:])
            return spec
        }
        let (a, b, c) = (role("a"), role("b"), role("c"))
        #expect(ReloadPlan.reconcile(current: [a, b], wanted: [a, b]) == .init(slots: [0, 1], drained: []), "unchanged: nothing restarts")
        #expect(ReloadPlan.reconcile(current: [a, b], wanted: [b, c]) == .init(slots: [1, nil], drained: [0]))
        #expect(ReloadPlan.reconcile(current: [a, a, a], wanted: [a]) == .init(slots: [0], drained: [1, 2]), "processes: 3 → 1")
        #expect(ReloadPlan.reconcile(current: [a], wanted: [a, a]) == .init(slots: [0, nil], drained: []), "processes: 1 → 2")
        #expect(ReloadPlan.reconcile(current: [a], wanted: [role("a", threads: 2)]) == .init(slots: [nil], drained: [0]),
                "a changed setting is a new role: the old child drains, a new one starts")
        #expect(ReloadPlan.reconcile(current: [a, b], wanted: []) == .init(slots: [], drained: [0, 1]))
    }
}
