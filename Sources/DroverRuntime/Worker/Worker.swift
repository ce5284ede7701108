import DroverPersistence
import DroverQueue
import Foundation

/// A worker process: claims jobs from its queues in batches sized to its free threads, runs them on
/// `threads` executors, and reports results in batches. Wakes on NOTIFY and polls as a fallback.
final class Worker {
    private let runtime: ChildRuntime
    private let queues: QueueSelection
    private let threads: Int
    private let pollingInterval: Duration
    private let pool: ExecutorPool
    private let wakeup = Wakeup()
    private var pending: [JobResult] = []
    /// When the oldest unreported result arrived.
    private var pendingSince: ContinuousClock.Instant?
    /// How long a result may wait for others of its batch before it is reported.
    static let reportWindow: Duration = .milliseconds(5)
    private var finishedCount = 0
    private var failedCount = 0
    private var log: Log { runtime.log }

    init(runtime: ChildRuntime, handlers: JobHandlers) throws {
        guard let part = runtime.spec.worker else { throw ValidationFailure("a worker's spec has no worker part") }
        self.runtime = runtime
        queues = try QueueSelection(part.queues)
        threads = part.threads
        pollingInterval = Duration(milliseconds: part.pollingIntervalMilliseconds)
        pool = ExecutorPool(threads: part.threads, handlers: handlers, wakeup: wakeup, log: runtime.log)
        let channel = runtime.store.wakeChannel
        runtime.session.onConnect = { connection in try connection.listen(channel) }
    }

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

    /// Runs until stopped; returns the exit status.
    func run() -> Int32 {
        guard runtime.register(metadata: metadata) else { return ChildRuntime.ExitStatus.stopped }
        guard let processID = runtime.heartbeat?.processID else { return ChildRuntime.ExitStatus.stopped }
        var claimNow = true
        var nextPoll = ContinuousClock.now
        while true {
            let arrived = pool.takeResults()
            if !arrived.isEmpty && pending.isEmpty { pendingSince = .now }
            pending += arrived
            if runtime.session.recoveredFromOutage { reconcileClaims(processID: processID) }
            // Results wait a few milliseconds for the rest of their batch, so that one round trip
            // reports many and the next claim fills many threads; not when every thread is done.
            let lingering = !pending.isEmpty && pool.busy > 0 && ContinuousClock.now - (pendingSince ?? .now) < Self.reportWindow

            if runtime.stopping {
                if !pending.isEmpty { cycle(processID: processID, claimLimit: 0) }
                if pool.busy == 0 && pending.isEmpty {
                    runtime.deregister()
                    return ChildRuntime.ExitStatus.stopped
                }
                if let deadline = runtime.stopDeadline, ContinuousClock.now >= deadline {
                    let unfinished = pool.unfinishedJobs.map(\.id)
                    log.warning("shutdown_timeout passed with jobs still running; releasing them",
                                [("jobs", unfinished.map(String.init).joined(separator: ","))])
                    runtime.deregister()
                    return ChildRuntime.ExitStatus.stopped
                }
            } else {
                let free = threads - pool.busy
                let claimDue = free > 0 && (claimNow || ContinuousClock.now >= nextPoll)
                if (claimDue || !pending.isEmpty) && !lingering {
                    if claimDue { nextPoll = .now + pollingInterval }
                    if let claimed = cycle(processID: processID, claimLimit: claimDue ? free : 0), claimDue {
                        // A full batch means there may be more: claim again as soon as a thread is free.
                        claimNow = claimed == free
                    } else if claimDue {
                        claimNow = false
                    }
                }
            }

            if let status = runtime.heartbeatIfDue(metadata: metadata) { return status }

            var deadlines = [runtime.nextHeartbeat]
            if lingering, let since = pendingSince { deadlines.append(since + Self.reportWindow) }
            if !runtime.stopping && pool.busy < threads && !lingering { deadlines.append(claimNow ? .now : nextPoll) }
            if let retry = runtime.session.nextRetry { deadlines.append(retry) }
            if let stop = runtime.stopDeadline { deadlines.append(stop) }
            let timeout = ContinuousClock.now.duration(to: deadlines.min()!)
            var descriptors = runtime.descriptors + [wakeup.descriptor]
            let socket = runtime.session.socketDescriptor
            if let socket { descriptors.append(socket) }
            let readable = waitForReadable(descriptors, timeout: max(.zero, timeout))
            if readable.contains(wakeup.descriptor) { wakeup.drain() }
            if let socket, readable.contains(socket), wokenForOurQueues() { claimNow = true }
            runtime.handle(readable)
        }
    }

    /// After the connection was lost, a claim that was in flight may have committed without this
    /// worker learning which jobs it took: give back every claim it holds but is not running.
    private func reconcileClaims(processID: Int) {
        do {
            let known = Set(pool.unfinishedJobs.map(\.id) + pending.map(\.job.id))
            let done: Void? = try runtime.session.run { connection in
                let unknown = try runtime.store.claimedJobIDs(processID: processID, on: connection).filter { !known.contains($0) }
                guard !unknown.isEmpty else { return }
                let outcome = try runtime.store.release(processID: processID, jobIDs: unknown, reason: .graceful, on: connection)
                log.warning("released jobs claimed by a statement whose answer was lost with the connection",
                            [("jobs", outcome.released.map(String.init).joined(separator: ","))])
            }
            if done != nil { runtime.session.recoveredFromOutage = false }
        } catch {
            log.error("reconciling claims after an outage failed", [("error", "\(error)")])
            runtime.session.recoveredFromOutage = false
        }
    }

    /// Reads pending notifications; true when one names a queue this worker takes jobs from.
    private func wokenForOurQueues() -> Bool {
        let notifications = (try? runtime.session.run { try $0.waitForNotifications(timeout: .zero) }) ?? nil
        return (notifications ?? []).contains { queues.matches($0.payload) }
    }

    /// One turn against the database, in one transaction and so one commit: reports the finished
    /// jobs (one statement) and the failed ones, then claims up to `claimLimit` jobs into free
    /// threads. Returns how many were claimed, or nil when the database could not be reached (the
    /// results stay pending and are reported next time).
    @discardableResult
    private func cycle(processID: Int, claimLimit: Int) -> Int? {
        let results = pending
        let finishedIDs = results.compactMap { result -> Int? in
            if case .finished = result.outcome { return result.job.id } else { return nil }
        }
        do {
            let turn = try runtime.session.run { connection in
                try connection.withTransaction { connection -> (FinishOutcome, [(JobResult, FailOutcome)], [ClaimedJob]) in
                    let finished = try runtime.store.finish(finishedIDs, processID: processID, on: connection)
                    var failures: [(JobResult, FailOutcome)] = []
                    for result in results {
                        guard case .failed(let failure, let permanent) = result.outcome else { continue }
                        failures.append((result, try runtime.store.fail(
                            result.job.id, processID: processID, error: failure, permanent: permanent, on: connection)))
                    }
                    let claimed = claimLimit > 0
                        ? try runtime.store.claim(processID: processID, queues: queues, limit: claimLimit, on: connection) : []
                    return (finished, failures, claimed)
                }
            }
            guard let (finished, failures, claimed) = turn else { return nil }
            pending = []
            pendingSince = nil
            finishedCount += finished.finished.count
            if !finished.dropped.isEmpty {
                log.warning("results dropped: these jobs were released or recovered while they ran",
                            [("jobs", finished.dropped.map(String.init).joined(separator: ","))])
            }
            for (result, outcome) in failures {
                failedCount += 1
                log.info("job failed", [("job", String(result.job.id)), ("class", result.job.className),
                                        ("error", result.outcome.failureMessage), ("outcome", "\(outcome)")])
            }
            pool.submit(claimed)
            return claimed.count
        } catch {
            // Not an outage: a statement failed. Drop these results rather than retry them forever;
            // their jobs stay claimed until this process is gone, then are released.
            log.error("reporting results or claiming failed", [("error", "\(error)")])
            pending = []
            pendingSince = nil
            return nil
        }
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
    func matches(_ queue: String) -> Bool {
        patterns.contains { pattern in
            switch pattern {
            case .exact(let name): return name == queue
            case .prefix(let prefix): return queue.hasPrefix(prefix)
            case .all: return true
            }
        }
    }
}
