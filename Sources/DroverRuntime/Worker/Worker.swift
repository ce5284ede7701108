import DroverPersistence
import DroverQueue
import Foundation

/// A worker process: claims jobs from its queues in batches sized to its free threads, runs them on
/// `threads` executors, and reports results in batches. Wakes on NOTIFY (PostgreSQL) or the wake file
/// (SQLite), and polls as a fallback.
final class Worker<Driver: RuntimeDriver> {
    private let runtime: ChildRuntime<Driver>
    private let queues: QueueSelection
    private let threads: Int
    private let pollingInterval: Duration
    private let pool: ExecutorPool
    private let wakeup = Wakeup()
    private let wakeSource: any WakeSource
    private var pending: [JobResult] = []
    /// When the oldest unreported result arrived.
    private var pendingSince: ContinuousClock.Instant?
    /// How long a result may wait for others of its batch before it is reported.
    static var reportWindow: Duration { .milliseconds(5) }
    private var finishedCount = 0
    private var failedCount = 0
    /// Set when cancellations may be waiting for this worker (a notification, or a heartbeat).
    private var cancellationsToCheck = false
    /// How the process exits once stopped: replaced when it gave up a job that ignored cancellation.
    private var exitStatus = ExitStatus.ok
    /// After a turn failed on a lock: not before this.
    private var retryTurnAt: ContinuousClock.Instant?
    /// Set when the lease ran low: the worker claims no more, stops its jobs, reports what it
    /// finished, and exits ``ExitStatus/leaseLost``.
    private var fenced = false
    /// Jobs whose attempt the fence stopped (not reported: they count as crashes).
    private var stoppedByFence: [Int] = []
    /// Set by each heartbeat: the claims the database holds for this worker are compared with the
    /// jobs it runs.
    private var reconcileDue = false
    /// Turns that failed in a row for another reason than a lock or an outage: until the results
    /// they carried are reported, each is reported alone (see ``reportOneByOne(processID:)``).
    private var failedTurns = 0
    private var log: Log { runtime.log }

    init(runtime: ChildRuntime<Driver>, handlers: JobHandlers, services: (any Sendable)? = nil) throws {
        guard let part = runtime.spec.worker else { throw ValidationFailure("a worker's spec has no worker part") }
        self.runtime = runtime
        queues = try QueueSelection(part.queues)
        threads = part.threads
        pollingInterval = Duration(milliseconds: part.pollingIntervalMilliseconds)
        var handlers = handlers
        let environment = ProcessInfo.processInfo.environment
        for (className, handler) in part.handlers {
            do {
                handlers.register(try CommandHandler(className: className, part: handler, workerEnvironment: environment))
            } catch {
                if error.transient { throw TransientFailure(error.description) }
                throw ValidationFailure(error.description)
            }
        }
        pool = ExecutorPool(threads: part.threads, handlers: handlers, services: services, wakeup: wakeup, log: runtime.log)
        runtime.runningJobs = { [pool] in pool.busy }
        wakeSource = try runtime.store.driver.wakeSource(of: runtime.store, session: runtime.session, url: runtime.spec.databaseURL, queues: queues)
    }

    /// Jobs still running (after ``run()``: a job it gave up on, or one a lost lease left).
    var jobsRunning: Int { pool.busy }

    /// What the heartbeat publishes in `processes.metadata`; the supervisor sums it for STATUS.
    private struct Metadata: Encodable {
        let queues: [String]
        let threads: Int
        let running: Int
        let finished: Int
        let failed: Int
    }

    private var metadata: JSON {
        (try? JSON(encoding: Metadata(
            queues: queues.patterns.map(\.description), threads: threads, running: pool.busy,
            finished: finishedCount, failed: failedCount))) ?? .emptyObject
    }

    /// Runs until stopped; returns the exit status. Each pass gathers what the worker sees, lets
    /// ``WorkerPass`` decide, carries the actions out, beats, and waits for the next event.
    func run() -> Int32 {
        guard runtime.register(metadata: metadata) else { return ExitStatus.ok.rawValue }
        guard let processID = runtime.heartbeat?.processID else { return ExitStatus.ok.rawValue }
        var claimNow = true
        var nextPoll = ContinuousClock.now
        while true {
            takeResults()
            if (runtime.session.recoveredFromOutage || reconcileDue) && !fenced { reconcileClaims(processID: processID) }
            // Results wait a few milliseconds for the rest of their batch, so that one round trip
            // reports many and the next claim fills many threads; not when every thread is done.
            let lingering = !pending.isEmpty && pool.busy > 0 && ContinuousClock.now - (pendingSince ?? .now) < Self.reportWindow
            let backingOff = retryTurnAt.map { ContinuousClock.now < $0 } ?? false
            if !fenced {
                superviseExecutions()
                if cancellationsToCheck { applyCancellations(processID: processID) }
            }

            let view = WorkerPass.View(
                lease: runtime.lease.phase(at: .now()), fenced: fenced, stopping: runtime.stopping,
                stopDeadlinePassed: runtime.stopDeadline.map { ContinuousClock.now >= $0 } ?? false,
                pending: pending.count, drained: pool.isDrained, busy: pool.busy, threads: threads,
                claimWanted: claimNow || ContinuousClock.now >= nextPoll, lingering: lingering, backingOff: backingOff,
                swiftJobsRunning: pool.runsSwiftJobs)
            var passAgain = false
            for action in WorkerPass.decide(view, stopStatus: exitStatus) {
                switch action {
                case .fence:
                    fence(processID: processID)
                case .killCommands:
                    pool.killCommands()
                case .turn(let claimLimit):
                    if claimLimit > 0 {
                        nextPoll = .now + pollingInterval
                        // A full batch means there may be more: claim again as soon as a thread is free.
                        claimNow = cycle(processID: processID, claimLimit: claimLimit).map { $0 == claimLimit } ?? false
                    } else {
                        // Reported: look again at once, the worker may be done. (Not after a turn
                        // that could not reach the database: that would spin until it is back.)
                        passAgain = cycle(processID: processID, claimLimit: 0) != nil && (runtime.stopping || fenced)
                    }
                case .exit(let status, let deregister):
                    if status == .leaseLost {
                        if pool.busy > 0 {
                            log.error("a Swift job still runs as the lease runs out; exiting at once, so that it cannot run "
                                      + "beside its next attempt", [("jobs", pool.unfinishedJobs.map { String($0.id) }.joined(separator: ","))])
                        }
                        pool.killCommands()
                        log.warning("exiting after losing the lease; the supervisor releases the jobs this worker stopped, as crashed",
                                    [("status", String(status.rawValue)), ("stopped", stoppedByFence.map(String.init).joined(separator: ","))])
                        return status.rawValue
                    }
                    if view.stopDeadlinePassed && !view.drained {
                        log.warning("shutdown_timeout passed with jobs still running; releasing them",
                                    [("jobs", pool.unfinishedJobs.map { String($0.id) }.joined(separator: ","))])
                        // Their commands go first, so that no job runs twice at once.
                        pool.killCommands()
                    }
                    if deregister { runtime.deregister() }
                    return status.rawValue
                }
            }

            if !fenced {
                let beatDue = ContinuousClock.now >= runtime.nextHeartbeat
                if let status = runtime.heartbeatIfDue(metadata: metadata, fencesItself: true) {
                    pool.killCommands()
                    return status
                }
                // A missed notification (the connection was down) costs at most one heartbeat interval.
                if beatDue && pool.busy > 0 { cancellationsToCheck = true }
                // And a claim that committed after its answer was lost, at most one interval held
                // for nothing (not only after an outage this worker saw: a statement can commit
                // after the worker gave up on it).
                if beatDue { reconcileDue = true }
            }
            runtime.signOfLife()
            if passAgain { continue }

            // Notifications libpq read while this process ran its statements: the socket will not
            // announce them again.
            let queued = wakeSource.alreadyReceived(processID: processID)
            if queued.claim { claimNow = true }
            if queued.cancellations && pool.busy > 0 { cancellationsToCheck = true }

            // A fenced worker beats no more: it waits for the database (to report) and its jobs.
            var deadlines = [fenced ? ContinuousClock.now + runtime.heartbeatInterval : runtime.nextHeartbeat]
            if lingering, let since = pendingSince { deadlines.append(since + Self.reportWindow) }
            if !runtime.stopping && !fenced && pool.busy < threads && !lingering && !backingOff { deadlines.append(claimNow ? .now : nextPoll) }
            if let retry = runtime.session.nextRetry { deadlines.append(retry) }
            if let stop = runtime.stopDeadline { deadlines.append(stop) }
            if let retry = retryTurnAt, retry > .now { deadlines.append(retry) }
            if !fenced { deadlines += executionDeadlines() }
            // The lease's next step: fencing, then killing.
            let now = HostInstant.now()
            for step in [runtime.lease.fenceAt, runtime.lease.killAt].compactMap({ $0 }) where step > now {
                deadlines.append(.now + (step - now))
            }
            var descriptors = [wakeup.descriptor]
            let wakeDescriptor = wakeSource.descriptor
            if let wakeDescriptor { descriptors.append(wakeDescriptor) }
            let readable = runtime.wait(for: descriptors, timeout: ContinuousClock.now.duration(to: deadlines.min()!))
            if readable.contains(wakeup.descriptor) { wakeup.drain() }
            if let wakeDescriptor, readable.contains(wakeDescriptor) {
                let woken = wakeSource.read(processID: processID)
                if woken.claim { claimNow = true }
                if woken.cancellations && pool.busy > 0 { cancellationsToCheck = true }
            }
        }
    }

    /// Takes the results the executors left. Once fenced, an attempt the fence stopped is not
    /// reported: it did not fail, its worker lost its lease; the job stays claimed, and its
    /// supervisor releases it as crashed.
    private func takeResults() {
        var arrived = pool.takeResults()
        if fenced {
            arrived.removeAll { result in
                guard case .failed(let failure, _) = result.outcome, failure.errorClass == JobFailure.leaseLostClass else { return false }
                stoppedByFence.append(result.job.id)
                return true
            }
        }
        if !arrived.isEmpty && pending.isEmpty { pendingSince = .now }
        pending += arrived
    }

    /// Fences this worker: its lease runs out in less than a margin and it cannot renew it, so it
    /// stops claiming and stops its jobs before another host may take them over (commands get
    /// TERM now and KILL half a margin before the lease ends; Swift jobs are cancelled). Jobs
    /// claimed and not started are given back; results it has stay, to be reported.
    private func fence(processID: Int) {
        fenced = true
        let now = HostInstant.now()
        let killBy = runtime.lease.killAt.map { ContinuousClock.now + max(.zero, $0 - now) } ?? .now
        let running = pool.unfinishedJobs.map { String($0.id) }
        let unstarted = pool.fence(killBy: killBy)
        log.error("could not renew the lease for alive_threshold less one heartbeat_interval: stopping every job before "
                  + "another host may take it over, then exiting to be replaced", [
                      ("lease_left", runtime.lease.remaining(at: now).map(DurationText.format) ?? "-"),
                      ("jobs", running.joined(separator: ",")),
                      ("database", runtime.session.isDown ? "unreachable" : "reachable"),
                  ])
        if !unstarted.isEmpty { giveBack(unstarted.map(\.id), processID: processID, why: "claimed but not started when the lease ran low") }
    }

    /// Gives back claims this worker holds and will not run (graceful: they never started).
    private func giveBack(_ jobIDs: [Int], processID: Int, why: String) {
        do {
            let outcome = try runtime.session.run { connection in
                try runtime.store.release(processID: processID, jobIDs: jobIDs, onlyEarlierClaims: true, reason: .graceful, on: connection)
            }
            if let outcome { log.info("gave back jobs", [("why", why), ("jobs", outcome.released.map(String.init).joined(separator: ","))]) }
        } catch {
            // They stay claimed: the supervisor releases them when this worker exits.
            log.warning("cannot give back jobs; its supervisor will release them", [("why", why), ("error", "\(error)")])
        }
    }

    /// After the connection was lost, a claim that was in flight may have committed without this
    /// worker learning which jobs it took: give back every claim it holds but is not running.
    /// Runs after an outage and with every heartbeat.
    private func reconcileClaims(processID: Int) {
        reconcileDue = false
        do {
            // The pool's untaken results too: a job that ended since this pass took them is not
            // unknown (an earlier version gave such jobs back, and they ran twice).
            let known = pool.heldJobIDs.union(pending.map(\.job.id))
            let done: Void? = try runtime.session.run { connection in
                let unknown = try runtime.store.claimedJobIDs(processID: processID, on: connection).filter { !known.contains($0) }
                guard !unknown.isEmpty else { return }
                let outcome = try runtime.store.release(processID: processID, jobIDs: unknown, onlyEarlierClaims: true, reason: .graceful, on: connection)
                log.warning("released jobs claimed by a statement whose answer was lost with the connection",
                            [("jobs", outcome.released.map(String.init).joined(separator: ","))])
            }
            if done != nil { runtime.session.recoveredFromOutage = false }
        } catch {
            log.error("reconciling claims after an outage failed", [("error", "\(error)")])
            runtime.session.recoveredFromOutage = false
        }
    }

    /// Asks the running jobs whose cancellation was requested to stop.
    private func applyCancellations(processID: Int) {
        do {
            guard let requested = try runtime.session.run({ try runtime.store.cancelRequests(processID: processID, on: $0) }) else {
                return  // The database is away; the next heartbeat looks again.
            }
            cancellationsToCheck = false
            let ids = Set(requested)
            for execution in pool.executions where ids.contains(execution.job.id) && execution.stopReason == nil {
                log.info("cancelling a running job", [("job", String(execution.job.id)), ("class", execution.job.className)])
                execution.requestStop(.cancelled)
            }
        } catch {
            cancellationsToCheck = false
            log.error("cannot read cancellation requests", [("error", "\(error)")])
        }
    }

    /// Stops jobs past their timeout, and gives up Swift jobs that ignored a stop for longer than
    /// their grace period: they hold their thread for good, so the job fails now and the worker
    /// finishes its other jobs and exits to be replaced. (A command is killed by its executor.)
    private func superviseExecutions() {
        let now = ContinuousClock.now
        for execution in pool.executions {
            if execution.stopReason == nil, let deadline = execution.deadline, let timeout = execution.timeout, now >= deadline {
                log.warning("job ran past its timeout; stopping it", [
                    ("job", String(execution.job.id)), ("class", execution.job.className), ("timeout", DurationText.format(timeout)),
                ])
                execution.requestStop(.timeout(timeout))
            }
            guard execution.kind != .command, let reason = execution.stopReason, let since = execution.stopRequestedAt,
                  now >= since + execution.gracePeriod else { continue }
            pool.abandon(execution)
            let failure = SwiftJobRun.stopFailure(reason, class: execution.job.className, givenUp: execution.gracePeriod)
            if pending.isEmpty { pendingSince = .now }
            pending.append(JobResult(job: execution.job, outcome: .failed(failure, permanent: reason == .cancelled)))
            log.error("a job ignored its cancellation past its grace period; failing it, finishing the other jobs, "
                      + "and exiting to be replaced", [("job", String(execution.job.id)), ("class", execution.job.className)])
            exitStatus = .replaceMe
            runtime.beginStopping(reason: "job \(execution.job.id) ignored its cancellation")
        }
    }

    /// When the loop must look at running jobs again: a timeout, or the end of a grace period.
    private func executionDeadlines() -> [ContinuousClock.Instant] {
        pool.executions.compactMap { execution in
            if execution.stopReason == nil { return execution.deadline }
            guard execution.kind != .command else { return nil }
            return execution.stopRequestedAt.map { $0 + execution.gracePeriod }
        }
    }

    /// One turn against the database, in one transaction and so one commit: reports the finished
    /// jobs (one statement) and the failed ones, then claims up to `claimLimit` jobs into free
    /// threads. Returns how many were claimed, or nil when the database could not be reached (the
    /// results stay pending and are reported next time).
    @discardableResult
    private func cycle(processID: Int, claimLimit: Int) -> Int? {
        if failedTurns > 0 {
            guard reportOneByOne(processID: processID) else { return nil }
            if claimLimit == 0 { return 0 }
        }
        let results = pending
        let finishedIDs = results.compactMap { result -> Int? in
            if case .finished = result.outcome { return result.job.id } else { return nil }
        }
        do {
            let turn = try runtime.session.run { connection in
                try connection.inWriteTransaction { () -> (FinishOutcome, [(JobResult, String)], [ClaimedJob]) in
                    let finished = try runtime.store.finish(finishedIDs, processID: processID, results: results.finishedResults,
                                                            on: connection)
                    var unfinished: [(JobResult, String)] = []
                    for result in results {
                        switch result.outcome {
                        case .finished: continue
                        case .failed(let failure, let permanent):
                            let outcome = try runtime.store.fail(
                                result.job.id, processID: processID, error: failure, permanent: permanent,
                                maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: connection)
                            unfinished.append((result, "\(outcome)"))
                        case .snoozed(let delay):
                            let outcome = try snooze(result, for: delay, processID: processID, on: connection)
                            unfinished.append((result, "\(outcome)"))
                        }
                    }
                    let claimed = claimLimit > 0
                        ? try runtime.store.claim(processID: processID, queues: queues, limit: claimLimit, on: connection) : []
                    return (finished, unfinished, claimed)
                }
            }
            guard let (finished, unfinished, claimed) = turn else { return nil }
            retryTurnAt = nil
            pending = []
            pendingSince = nil
            finishedCount += finished.finished.count
            if !finished.dropped.isEmpty {
                log.warning("results dropped: these jobs were released or recovered while they ran",
                            [("jobs", finished.dropped.map(String.init).joined(separator: ","))])
            }
            for (result, outcome) in unfinished {
                if case .snoozed(let delay) = result.outcome {
                    log.info("job snoozed", [("job", String(result.job.id)), ("class", result.job.className),
                                             ("delay", DurationText.format(delay)), ("outcome", outcome)])
                    continue
                }
                failedCount += 1
                log.info("job failed", [("job", String(result.job.id)), ("class", result.job.className),
                                        ("error", result.outcome.failureMessage), ("outcome", outcome)])
            }
            if !claimed.isEmpty {
                // Said before the start, then the lease looked at: a freeze anywhere between
                // leaves the supervisor knowing (and killing in time), or nothing started.
                let announced = runtime.announce(more: claimed.count)
                if !announced || runtime.lease.phase(at: .now()) != .valid {
                    // The answer came too late to start them before the lease may run out: this
                    // worker fences now (it never claims again, so a give-back that commits late
                    // cannot release a later claim of its own), and gives them back; what it
                    // cannot give back its supervisor releases when it exits.
                    log.warning(announced ? "claims answered as the lease ran low; not starting them"
                                          : "cannot tell the supervisor about new jobs (its pipe is full); not starting them",
                                [("jobs", claimed.map { String($0.id) }.joined(separator: ","))])
                    if !fenced { fence(processID: processID) }
                    giveBack(claimed.map(\.id), processID: processID, why: "claimed as the lease ran low")
                } else {
                    pool.submit(claimed)
                }
            }
            if !claimed.isEmpty || !results.isEmpty {
                let snoozed = unfinished.count { if case .snoozed = $0.0.outcome { true } else { false } }
                log.debug("turn", [("claimed", String(claimed.count)), ("finished", String(finished.finished.count)),
                                   ("failed", String(unfinished.count - snoozed)), ("snoozed", String(snoozed))])
            }
            return claimed.count
        } catch let error as DatabaseError where error.isTransient {
            // A lock held too long (SQLite's write lock, busy past its timeout): the results stay
            // pending and the turn is tried again shortly.
            log.warning("reporting results or claiming waited too long for a lock; trying again", [("error", error.message)])
            retryTurnAt = .now + .milliseconds(Int64.random(in: 20...120))
            return nil
        } catch {
            // Not an outage: a statement failed, and with it the whole turn. The results stay: the
            // next turns report them one at a time, so that one that cannot be stored holds up no
            // other (a finished job reported late is still finished once, not run again).
            failedTurns += 1
            retryTurnAt = .now + Self.backoff(afterFailedTurns: failedTurns)
            log.error("reporting results or claiming failed; the results stay, to be reported one by one",
                      [("error", "\(error)"), ("results", String(results.count))])
            return nil
        }
    }

    /// Stores a snooze the job asked for, with its handler's limit and (past the limit) its
    /// handler's attempts and retry policy.
    private func snooze(_ result: JobResult, for delay: Duration, processID: Int, on connection: Driver.Database) throws -> SnoozeOutcome {
        try runtime.store.snooze(
            result.job.id, processID: processID, for: delay, maxSnoozes: result.maxSnoozes ?? SnoozeRules.defaultMaxSnoozes,
            maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: connection)
    }

    /// After `turns` failed turns in a row: 50 ms, doubling, at most 5 s.
    static func backoff(afterFailedTurns turns: Int) -> Duration {
        .milliseconds(min(5_000, 50 << min(turns - 1, 10)))
    }

    /// After a failed turn: reports each pending result in a transaction of its own. A failure whose
    /// error cannot be stored is stored with an error that can (``JobFailure/notStored(_:because:)``),
    /// so the job is not left claimed by a worker that no longer runs it; a finish that cannot be
    /// stored stays pending for the next turn. True once nothing is pending.
    private func reportOneByOne(processID: Int) -> Bool {
        guard retryTurnAt.map({ ContinuousClock.now >= $0 }) ?? true else { return false }
        var left: [JobResult] = []
        for result in pending {
            do {
                let reported = try runtime.session.run { connection -> Bool in
                    switch result.outcome {
                    case .finished:
                        let outcome = try runtime.store.finish([result.job.id], processID: processID,
                                                               results: [result].finishedResults, on: connection)
                        finishedCount += outcome.finished.count
                    case .failed(let failure, let permanent):
                        let outcome: FailOutcome
                        do {
                            outcome = try runtime.store.fail(
                                result.job.id, processID: processID, error: failure, permanent: permanent,
                                maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: connection)
                        } catch let error as DatabaseError where !error.isTransient && error.code != .connectionLost {
                            log.error("the error of a failed job cannot be stored; storing why instead",
                                      [("job", String(result.job.id)), ("error", error.message)])
                            outcome = try runtime.store.fail(
                                result.job.id, processID: processID, error: .notStored(failure, because: error), permanent: permanent,
                                maxAttempts: result.maxAttempts, retryPolicy: result.retryPolicy, on: connection)
                        }
                        failedCount += 1
                        log.info("job failed", [("job", String(result.job.id)), ("class", result.job.className),
                                                ("error", failure.message), ("outcome", "\(outcome)")])
                    case .snoozed(let delay):
                        let outcome = try snooze(result, for: delay, processID: processID, on: connection)
                        log.info("job snoozed", [("job", String(result.job.id)), ("class", result.job.className),
                                                 ("delay", DurationText.format(delay)), ("outcome", "\(outcome)")])
                    }
                    return true
                }
                if reported == nil { left.append(result) }
            } catch {
                log.error("a result cannot be reported; it stays for the next turn",
                          [("job", String(result.job.id)), ("error", "\(error)")])
                left.append(result)
            }
        }
        pending = left
        pendingSince = left.isEmpty ? nil : .now
        if left.isEmpty {
            failedTurns = 0
            retryTurnAt = nil
            return true
        }
        failedTurns += 1
        retryTurnAt = .now + Self.backoff(afterFailedTurns: failedTurns)
        return false
    }
}

extension JobResult.Outcome {
    var failureMessage: String {
        if case .failed(let failure, _) = self { return failure.message }
        return ""
    }
}

extension QueueSelection {
    /// Whether this selection takes jobs from `queue`.
    package func matches(_ queue: String) -> Bool {
        patterns.contains { pattern in
            switch pattern {
            case .exact(let name): return name == queue
            case .prefix(let prefix): return queue.hasPrefix(prefix)
            case .all: return true
            }
        }
    }
}

extension [JobResult] {
    /// The results finished jobs handed back, by job.
    var finishedResults: [Int: JSON] {
        var results: [Int: JSON] = [:]
        for result in self {
            if case .finished = result.outcome, let value = result.result { results[result.job.id] = value }
        }
        return results
    }
}
