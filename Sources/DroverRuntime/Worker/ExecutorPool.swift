import DroverQueue
import Foundation
import Synchronization

/// What running a job came to.
public struct JobResult: Sendable {
    public enum Outcome: Sendable {
        case finished
        case failed(JobFailure, permanent: Bool)
    }
    public let job: ClaimedJob
    public let outcome: Outcome
}

/// `threads` threads that run claimed jobs and hand back their results; the coordinator is woken
/// through `wakeup` whenever one finishes.
final class ExecutorPool: @unchecked Sendable {
    // @unchecked: every mutable field is behind `state`'s lock.
    private struct State {
        var queue: [ClaimedJob] = []
        var results: [JobResult] = []
        var running: [Int: ClaimedJob] = [:]
    }

    private let state = Mutex(State())
    private let available = NSCondition()
    private let handlers: JobHandlers
    private let wakeup: Wakeup
    private let log: Log

    init(threads: Int, handlers: JobHandlers, wakeup: Wakeup, log: Log) {
        self.handlers = handlers
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

    /// Jobs being run now (handed over, not finished).
    var unfinishedJobs: [ClaimedJob] { state.withLock { $0.queue + Array($0.running.values) } }

    func submit(_ jobs: [ClaimedJob]) {
        guard !jobs.isEmpty else { return }
        available.lock()
        state.withLock { $0.queue += jobs }
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

    private func executorLoop() {
        while true {
            available.lock()
            var job: ClaimedJob? = nil
            while job == nil {
                job = state.withLock { state -> ClaimedJob? in
                    guard !state.queue.isEmpty else { return nil }
                    let next = state.queue.removeFirst()
                    state.running[next.id] = next
                    return next
                }
                if job == nil { available.wait() }
            }
            available.unlock()
            let result = run(job!)
            state.withLock { state in
                state.running[job!.id] = nil
                state.results.append(result)
            }
            wakeup.signal()
        }
    }

    private func run(_ job: ClaimedJob) -> JobResult {
        guard let handler = handlers.handler(for: job.className) else {
            let failure = JobFailure(
                errorClass: "UnknownJobClass",
                message: "no handler for class \(job.className): declare it under handlers: in the configuration")
            return JobResult(job: job, outcome: .failed(failure, permanent: true))
        }
        do {
            try handler.perform(job)
            return JobResult(job: job, outcome: .finished)
        } catch let error as PermanentJobFailure {
            return JobResult(job: job, outcome: .failed(JobFailure(errorClass: "PermanentJobFailure", message: error.description), permanent: true))
        } catch {
            let failure = JobFailure(errorClass: String(describing: type(of: error)), message: String(describing: error))
            return JobResult(job: job, outcome: .failed(failure, permanent: false))
        }
    }
}
