import DroverQueue
import Foundation
import Synchronization

/// One attempt of a Swift job: its task runs on the executor thread that took the job (through a
/// task executor preference), so that a job that blocks holds its own thread and not one of the
/// few the concurrency runtime shares. The worker's loop cancels the task on timeout or
/// cancellation; a job that ignores that past its grace period leaves this thread stuck here, and
/// the worker gives the job up and exits to be replaced.
struct SwiftJobRun {
    let handler: any AsyncJobHandler
    let execution: Execution
    let log: Log
    /// The worker's services, handed to the job through its context.
    let services: (any Sendable)?

    func run() -> JobResult {
        let executor = ThreadTaskExecutor()
        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let context = JobContext(execution: execution, log: log, services: services)
        let job = execution.job
        let handler = self.handler
        let task = Task(executorPreference: executor) {
            do {
                try await handler.perform(job, context: context)
                outcome.withLock { $0 = .success(()) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            executor.finish()
        }
        execution.attach(task)
        executor.runUntilFinished()
        let result = outcome.withLock { $0 } ?? .failure(CancellationError())
        return Self.result(of: execution, result)
    }

    /// What an attempt came to. A job asked to stop fails as stopped, however it ended.
    static func result(of execution: Execution, _ result: Result<Void, any Error>) -> JobResult {
        let job = execution.job
        if let reason = execution.stopReason {
            return JobResult(job: job, outcome: .failed(stopFailure(reason, class: job.className), permanent: reason == .cancelled))
        }
        switch result {
        case .success:
            var finished = JobResult(job: job, outcome: .finished)
            finished.result = execution.result
            return finished
        case .failure(let snooze as Snooze):
            guard SnoozeRules.delayRange.contains(snooze.delay) else {
                let failure = JobFailure(errorClass: "Snooze", message: "the job asked to snooze for \(DurationText.format(snooze.delay)); "
                                         + "a snooze must be from 1ms to 30d: the attempt counts as failed")
                return JobResult(job: job, outcome: .failed(failure, permanent: false))
            }
            return JobResult(job: job, outcome: .snoozed(snooze.delay))
        case .failure(let error as PermanentJobFailure):
            return JobResult(job: job, outcome: .failed(JobFailure(errorClass: "PermanentJobFailure", message: error.description), permanent: true))
        case .failure(let error):
            let failure = JobFailure(errorClass: String(describing: type(of: error)), message: String(describing: error))
            return JobResult(job: job, outcome: .failed(failure, permanent: false))
        }
    }

    static func stopFailure(_ reason: StopReason, class className: String, givenUp: Duration? = nil) -> JobFailure {
        let ignored = givenUp.map { "; it ignored cancellation for \(DurationText.format($0)), so its worker gave it up and exits to be replaced" } ?? ""
        switch reason {
        case .timeout(let limit):
            return JobFailure(errorClass: JobFailure.timeoutClass, message: "\(className) ran longer than its timeout of \(DurationText.format(limit)) and was cancelled\(ignored)")
        case .cancelled:
            return JobFailure(errorClass: JobFailure.cancelledClass, message: "cancelled by drover jobs cancel\(ignored)")
        case .leaseLost:
            return JobFailure(errorClass: JobFailure.leaseLostClass, message: "its worker lost its lease and cancelled it\(ignored)")
        }
    }
}

/// A task executor that runs its jobs on the one thread that calls ``runUntilFinished()``.
final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `finished` are behind `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs enqueued jobs on the calling thread until ``finish()`` was called and none is left.
    func runUntilFinished() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }
}
