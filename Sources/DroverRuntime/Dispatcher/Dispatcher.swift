import DroverPersistence
import DroverQueue
import Foundation

/// A dispatcher process: moves due scheduled jobs (retries included) to ready in batches, at once
/// again after a full batch, clears finished jobs and records of recurring runs past their
/// retention now and then, and vacuums the tables claims walk when they fill with dead rows.
final class Dispatcher<Driver: RuntimeDriver> {
    private let runtime: ChildRuntime<Driver>
    private let pollingInterval: Duration
    private let batchSize: Int
    private let clearFinishedAfter: Duration
    private var dispatched = 0
    private var cleared = 0
    private var log: Log { runtime.log }

    /// How often finished jobs past their retention are looked for.
    static var retentionInterval: Duration { .seconds(60) }
    /// How often the dead rows of the tables claims walk are counted, and how many make a vacuum
    /// worth its cost (tens of milliseconds at a million ready jobs). At 20,000 jobs/s that is a
    /// vacuum every two seconds or so, where autovacuum would come once a minute.
    static var vacuumInterval: Duration { .seconds(2) }
    /// How often the job counts appended by every operation are folded into their totals (PostgreSQL).
    static var metricsFoldInterval: Duration { .seconds(5) }
    static var vacuumDeadRows: Int { 20_000 }
    /// After a vacuum that could not remove most dead rows (an old transaction still open
    /// somewhere): the next check waits this long rather than vacuum in vain every two seconds.
    static var vacuumHeldBackInterval: Duration { .seconds(30) }

    init(runtime: ChildRuntime<Driver>) throws {
        guard let part = runtime.spec.dispatcher else { throw ValidationFailure("a dispatcher's spec has no dispatcher part") }
        self.runtime = runtime
        pollingInterval = Duration(milliseconds: part.pollingIntervalMilliseconds)
        batchSize = part.batchSize
        clearFinishedAfter = .seconds(Int64(runtime.spec.clearFinishedAfterSeconds))
    }

    private struct Metadata: Encodable {
        let dispatched: Int
        let cleared: Int
    }

    private var metadata: JSON { (try? JSON(encoding: Metadata(dispatched: dispatched, cleared: cleared))) ?? .emptyObject }

    func run() -> Int32 {
        guard runtime.register(metadata: metadata) else { return ExitStatus.ok.rawValue }
        var nextPoll = ContinuousClock.now
        var nextRetention = ContinuousClock.now + .seconds(5)
        var nextVacuum = ContinuousClock.now + Self.vacuumInterval
        var nextFold = ContinuousClock.now + Self.metricsFoldInterval
        while true {
            if runtime.stopping {
                runtime.deregister()
                return ExitStatus.ok.rawValue
            }
            if ContinuousClock.now >= nextPoll {
                do {
                    if let moved = try runtime.session.run({ try runtime.store.dispatchDue(batchSize: batchSize, on: $0) }) {
                        dispatched += moved
                        // A full batch means more may be due: go again at once. Else at the next
                        // job's time, when that comes before the next poll.
                        nextPoll = moved == batchSize ? .now : .now + untilNextDue()
                    } else {
                        nextPoll = .now + pollingInterval
                    }
                } catch {
                    log.error("dispatching failed", [("error", "\(error)")])
                    nextPoll = .now + pollingInterval
                }
                do {
                    // Keys whose slots have not moved for their duration are counted again.
                    if let unblocked = try runtime.session.run({ try runtime.store.expireConcurrency(batchSize: 100, on: $0) }), unblocked > 0 {
                        log.info("let blocked jobs run after counting their concurrency keys again", [("jobs", String(unblocked))])
                    }
                } catch {
                    log.error("counting concurrency keys again failed", [("error", "\(error)")])
                }
            }
            if ContinuousClock.now >= nextRetention {
                nextRetention = .now + Self.retentionInterval
                if runtime.spec.preserveFinishedJobs { clearFinishedJobs() }
                // The dashboard's counts by minute: a day of them.
                do {
                    _ = try runtime.session.run { try runtime.store.clearMetricMinutes(olderThan: .seconds(86_400), on: $0) }
                } catch {
                    log.error("clearing job counts by minute failed", [("error", "\(error)")])
                }
                // Rate-limit starts past their period, and times given to jobs that no longer wait.
                do {
                    _ = try runtime.session.run { try runtime.store.pruneRateLimits(on: $0) }
                } catch {
                    log.error("pruning rate-limit records failed", [("error", "\(error)")])
                }
                // Records of recurring runs are kept as long as finished jobs, each task's latest always.
                do {
                    _ = try runtime.session.run { try runtime.store.clearRecurringRuns(olderThan: clearFinishedAfter, batchSize: 1000, on: $0) }
                } catch {
                    log.error("clearing records of recurring runs failed", [("error", "\(error)")])
                }
            }
            if ContinuousClock.now >= nextFold {
                nextFold = .now + Self.metricsFoldInterval
                do {
                    _ = try runtime.session.run { try runtime.store.foldMetricEvents(on: $0) }
                } catch {
                    log.error("folding job counts into their totals failed", [("error", "\(error)")])
                }
            }
            if ContinuousClock.now >= nextVacuum {
                nextVacuum = .now + (vacuumHotTables() ? Self.vacuumHeldBackInterval : Self.vacuumInterval)
            }
            if let status = runtime.heartbeatIfDue(metadata: metadata) { return status }
            var deadlines = [nextPoll, runtime.nextHeartbeat, nextVacuum, nextFold]
            if let retry = runtime.session.nextRetry { deadlines.append(retry) }
            _ = runtime.wait(timeout: ContinuousClock.now.duration(to: deadlines.min()!))
        }
    }

    /// How long until the next poll: the polling interval, or less when a scheduled job is due
    /// sooner (at least 10 ms, so that jobs due a few milliseconds apart are taken together).
    private func untilNextDue() -> Duration {
        do {
            guard let seconds = try runtime.session.run({ try runtime.store.secondsUntilNextDue(on: $0) }).flatMap({ $0 }) else {
                return pollingInterval
            }
            return min(pollingInterval, .milliseconds(max(Int64(seconds * 1000) + 1, 10)))
        } catch {
            return pollingInterval
        }
    }

    /// Returns whether a vacuum was held back by an old transaction.
    private func vacuumHotTables() -> Bool {
        do {
            let start = ContinuousClock.now
            guard let vacuumed = try runtime.session.run({ try runtime.store.vacuumHotTables(minimumDeadRows: Self.vacuumDeadRows, on: $0) }),
                  !vacuumed.isEmpty else { return false }
            log.debug("vacuumed", [
                ("tables", vacuumed.map { "\($0.table) (\($0.deadRows) dead rows, \($0.deadRowsLeft) left)" }.joined(separator: ", ")),
                ("ms", String((ContinuousClock.now - start).wholeMilliseconds)),
            ])
            let heldBack = vacuumed.filter(\.heldBack)
            if !heldBack.isEmpty {
                log.warning("a vacuum could not remove most dead rows: a transaction older than them is still open "
                            + "(see pg_stat_activity.xact_start); claims slow down until it ends", [
                                ("tables", heldBack.map(\.table).joined(separator: ",")),
                                ("dead_rows", heldBack.map { String($0.deadRowsLeft) }.joined(separator: ",")),
                            ])
                return true
            }
        } catch {
            log.error("vacuuming the tables claims walk failed", [("error", "\(error)")])
        }
        return false
    }

    private func clearFinishedJobs() {
        do {
            if let count = try runtime.session.run({ try runtime.store.clearFinished(olderThan: clearFinishedAfter, batchSize: 1000, on: $0) }), count > 0 {
                cleared += count
                log.info("cleared finished jobs", [("count", String(count))])
            }
        } catch {
            log.error("clearing finished jobs failed", [("error", "\(error)")])
        }
    }
}

/// The entry point of a child process (`drover _child`): reads the spec its supervisor gave it
/// (``ChildSpec/read()``) and runs the worker, dispatcher, scheduler or service it describes
/// (`services`: the web dashboard, which lives above the runtime; `jobServices`: the app's
/// services, which only a worker builds). Returns the exit status.
public func runChildProcess(
    extraHandlers: JobHandlers = JobHandlers(), services: [ProcessKind: ChildServiceFactory] = [:], jobServices: ServicesSetup? = nil
) -> Int32 {
    let spec: ChildSpec
    do {
        spec = try ChildSpec.read()
    } catch {
        Log().error("cannot start a child process", [("error", "\(error)")])
        return ExitStatus.config.rawValue
    }
    // A command that closes its stdin early must not kill its worker with SIGPIPE: writes get EPIPE.
    signal(SIGPIPE, SIG_IGN)
    if DatabaseLocation.sqlitePath(spec.databaseURL) != nil {
        return runChild(SQLiteDriver.self, spec: spec, extraHandlers: extraHandlers, services: services, jobServices: jobServices)
    }
    return runChild(PostgresDriver.self, spec: spec, extraHandlers: extraHandlers, services: services, jobServices: jobServices)
}

private func runChild<Driver: RuntimeDriver>(
    _: Driver.Type, spec: ChildSpec, extraHandlers: JobHandlers, services: [ProcessKind: ChildServiceFactory], jobServices setup: ServicesSetup?
) -> Int32 {
    do {
        let runtime = try ChildRuntime<Driver>(spec: spec)
        switch spec.kind {
        case .worker:
            var handlers = spec.testHandlers ? JobHandlers.builtInTestHandlers : JobHandlers()
            handlers.merge(extraHandlers)
            // Only a worker builds the app's services: its dispatcher and scheduler run no job.
            guard case .ready(let appServices) = try WorkerServices.start(setup, runtime: runtime) else {
                runtime.log.info("stopped before the services were ready")
                return ExitStatus.ok.rawValue
            }
            let worker: Worker<Driver>
            do {
                worker = try Worker(runtime: runtime, handlers: handlers, services: appServices)
            } catch {
                WorkerServices.shutdown(appServices, runtime: runtime)
                throw error
            }
            let status = worker.run()
            // Not after losing the lease (it exits at once), nor under a job that still runs.
            if status != ExitStatus.leaseLost.rawValue && worker.jobsRunning == 0 {
                WorkerServices.shutdown(appServices, runtime: runtime)
            }
            return status
        case .dispatcher:
            return try Dispatcher(runtime: runtime).run()
        case .scheduler:
            return try Scheduler(runtime: runtime).run()
        case .web:
            guard let make = services[.web] else { throw ValidationFailure("this program has no web dashboard to serve") }
            return ServiceChild(runtime: runtime, service: try make(spec, runtime.log)).run()
        case .supervisor:
            runtime.log.error("a supervisor does not start this kind of child", [("kind", spec.kind.rawValue)])
            return ExitStatus.config.rawValue
        }
    } catch {
        let status = ChildProcess.startFailureStatus(error)
        Log([("process", spec.kind.rawValue), ("name", spec.name)]).error(
            status == .config ? "cannot start: the configuration cannot work" : "cannot start for now; the supervisor tries again",
            [("error", "\(error)"), ("status", String(status.rawValue))])
        return status.rawValue
    }
}
