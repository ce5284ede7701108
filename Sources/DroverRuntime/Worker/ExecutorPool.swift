import DroverPersistence
import DroverQueue
import Foundation
import Synchronization

/// What running a job came to.
public struct JobResult: Sendable {
    public enum Outcome: Sendable {
        case finished
        case failed(JobFailure, permanent: Bool)
        /// It asked to run again after this delay, spending no attempt (``Snooze``, exit 101).
        case snoozed(Duration)
    }
    public let job: ClaimedJob
    public let outcome: Outcome
    /// The handler's max_attempts, which overrides the job's.
    public var maxAttempts: Int? = nil
    /// The handler's (or the job type's) retry policy, which overrides the worker's.
    public var retryPolicy: RetryPolicy? = nil
    /// The handler's (or the job type's) limit on snoozes.
    public var maxSnoozes: Int? = nil
    /// What a finished job handed back (a command on descriptor 3, a Swift job its return value).
    public var result: JSON? = nil
}

/// `threads` threads that run claimed jobs and hand back their results; the coordinator is woken
/// through `wakeup` whenever one finishes.
final class ExecutorPool: @unchecked Sendable {
    // @unchecked: every mutable field is behind `state`'s lock.
    private struct State {
        var queue: [ClaimedJob] = []
        var results: [JobResult] = []
        var running: [Int: Execution] = [:]
        /// Jobs given up (they ignored cancellation): their results, should they come, are dropped.
        var abandoned: Set<Int> = []
        /// Set once the worker fenced itself: nothing starts any more.
        var fenced = false
    }

    private let state = Mutex(State())
    private let available = NSCondition()
    private let handlers: JobHandlers
    private let wakeup: Wakeup
    private let log: Log
    /// The app's services, built once for this worker (`Drover.main(jobs:services:)`).
    private let services: (any Sendable)?

    init(threads: Int, handlers: JobHandlers, services: (any Sendable)? = nil, wakeup: Wakeup, log: Log) {
        self.handlers = handlers
        self.services = services
        self.wakeup = wakeup
        self.log = log
        for index in 0..<threads {
            let thread = Thread { [self] in executorLoop() }
            thread.name = "executor \(index)"
            thread.start()
        }
    }

    /// Jobs handed over and not yet reported back.
    var busy: Int { state.withLock { $0.queue.count + $0.running.count } }

    /// No job queued or running, and no result waiting to be taken: read under one lock, since a
    /// job that ends between a `takeResults()` and a look at `busy` would otherwise look done and
    /// unreported at once, and a stopping worker would give it back to run again.
    var isDrained: Bool { state.withLock { $0.queue.isEmpty && $0.running.isEmpty && $0.results.isEmpty } }

    /// Jobs being run now (handed over, not finished).
    var unfinishedJobs: [ClaimedJob] { state.withLock { $0.queue + $0.running.values.map(\.job) } }

    /// Every job the pool holds in any way: queued, running, or finished with its result not yet
    /// taken; read under one lock, so that a job that ends meanwhile is in one place or the other.
    var heldJobIDs: Set<Int> {
        state.withLock { state in
            Set(state.queue.map(\.id) + state.running.keys + state.results.map(\.job.id) + state.abandoned)
        }
    }

    /// The jobs running now.
    var executions: [Execution] { state.withLock { Array($0.running.values) } }

    func submit(_ jobs: [ClaimedJob]) {
        guard !jobs.isEmpty else { return }
        available.lock()
        state.withLock { if !$0.fenced { $0.queue += jobs } }
        available.broadcast()
        available.unlock()
    }

    /// The results gathered since the last call.
    func takeResults() -> [JobResult] {
        state.withLock { state in
            defer { state.results = [] }
            return state.results
        }
    }

    /// Stops tracking a job that ignored its cancellation; its thread stays with it.
    func abandon(_ execution: Execution) {
        state.withLock { state in
            state.running[execution.job.id] = nil
            state.abandoned.insert(execution.job.id)
        }
    }

    /// Whether a Swift job (which only its process's death can stop for sure) is running.
    var runsSwiftJobs: Bool { executions.contains { $0.kind != .command } }

    /// The worker fenced itself: the jobs not started yet never start (they are returned), the
    /// running ones are asked to stop, and their commands are killed by `killBy`.
    func fence(killBy: ContinuousClock.Instant) -> [ClaimedJob] {
        let (unstarted, running) = state.withLock { state -> ([ClaimedJob], [Execution]) in
            state.fenced = true
            defer { state.queue = [] }
            return (state.queue, Array(state.running.values))
        }
        for execution in running { execution.fence(killBy: killBy) }
        return unstarted
    }

    /// Kills every running command's process group (the worker is about to exit without them).
    func killCommands() {
        for execution in executions where execution.kind == .command { execution.signalCommand(SIGKILL) }
    }

    private func executorLoop() {
        while true {
            available.lock()
            var next: (ClaimedJob, Execution?)? = nil
            while next == nil {
                next = state.withLock { state -> (ClaimedJob, Execution?)? in
                    guard !state.queue.isEmpty else { return nil }
                    let job = state.queue.removeFirst()
                    // Counted as running from the moment it leaves the queue.
                    let execution = self.execution(for: job)
                    if let execution { state.running[job.id] = execution }
                    return (job, execution)
                }
                if next == nil { available.wait() }
            }
            available.unlock()
            let (job, execution) = next!
            let result = execution.map(run) ?? unknownClass(job)
            state.withLock { state in
                state.running[job.id] = nil
                if state.abandoned.remove(job.id) == nil { state.results.append(result) }
            }
            wakeup.signal()
        }
    }

    /// How `job` is to run, or nil when no handler knows its class.
    private func execution(for job: ClaimedJob) -> Execution? {
        switch handlers.entry(for: job.className) {
        case .command(let handler):
            return Execution(job: job, kind: .command, timeout: job.timeout ?? handler.timeout, gracePeriod: handler.gracePeriod)
        case .swift(let handler):
            return Execution(job: job, kind: .swift, timeout: job.timeout ?? handler.timeout, gracePeriod: handler.gracePeriod)
        case .blocking:
            return Execution(job: job, kind: .blocking, timeout: job.timeout, gracePeriod: .zero)
        case nil:
            return nil
        }
    }

    private func unknownClass(_ job: ClaimedJob) -> JobResult { handlers.unknownClass(job) }

    private func run(_ execution: Execution) -> JobResult {
        let job = execution.job
        let jobLog = log.adding([("job", String(job.id)), ("class", job.className), ("queue", job.queue)])
        switch handlers.entry(for: job.className) {
        case .command(let handler):
            var result = CommandRun(handler: handler, execution: execution, log: jobLog).run()
            result.maxAttempts = handler.maxAttempts
            result.retryPolicy = handler.retryPolicy
            result.maxSnoozes = handler.maxSnoozes
            return result
        case .swift(let handler):
            var result = SwiftJobRun(handler: handler, execution: execution, log: jobLog, services: services).run()
            result.maxAttempts = handler.maxAttempts
            result.retryPolicy = handler.retryPolicy
            result.maxSnoozes = handler.maxSnoozes
            return result
        case .blocking(let handler):
            do {
                try handler.perform(job)
                return SwiftJobRun.result(of: execution, .success(()))
            } catch {
                return SwiftJobRun.result(of: execution, .failure(error))
            }
        case nil:
            return unknownClass(job)
        }
    }
}
