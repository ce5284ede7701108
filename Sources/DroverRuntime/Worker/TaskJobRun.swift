import DroverQueue
import Foundation
import Logging
import Synchronization

/// One attempt of a job run as a task of its caller, rather than on an executor thread of a worker
/// process: how `DroverTesting`'s drain runs an app's jobs inside a test. The task inherits the
/// caller's task-local values (a test's `withTracer`), and the attempt comes out as a worker's
/// would (``SwiftJobRun/result(of:_:)``): a timeout cancels the task and fails the attempt with
/// `Timeout`; a job still running a grace period later is given up and fails the same way.
package enum TaskJobRun {
    package static func run(_ job: ClaimedJob, handlers: JobHandlers, services: (any Sendable)?, logger: Logger) async -> JobResult {
        switch handlers.entry(for: job.className) {
        case .swift(let handler):
            let execution = Execution(job: job, kind: .swift, timeout: job.timeout ?? handler.timeout, gracePeriod: handler.gracePeriod)
            let log = Log(logger: logger, adding: [("job", String(job.id)), ("class", job.className), ("queue", job.queue)])
            let context = JobContext(execution: execution, log: log, services: services)
            var result = await attempt(execution) { try await handler.perform(job, context: context) }
            result.maxAttempts = handler.maxAttempts
            result.retryPolicy = handler.retryPolicy
            result.maxSnoozes = handler.maxSnoozes
            return result
        case .blocking(let handler):
            do {
                try handler.perform(job)
                return JobResult(job: job, outcome: .finished)
            } catch {
                return SwiftJobRun.result(of: Execution(job: job, kind: .blocking, timeout: nil, gracePeriod: .zero), .failure(error))
            }
        case .command, nil:
            return handlers.unknownClass(job)
        }
    }

    /// Runs `perform` as a task, stops it at its timeout, and gives it up a grace period later.
    private static func attempt(_ execution: Execution, _ perform: @escaping @Sendable () async throws -> Void) async -> JobResult {
        let ended = Mutex<CheckedContinuation<Result<Void, any Error>?, Never>?>(nil)
        let end = { @Sendable (result: Result<Void, any Error>?) in
            ended.withLock { continuation in
                continuation?.resume(returning: result)
                continuation = nil
            }
        }
        let timer = Mutex<Task<Void, any Error>?>(nil)
        let outcome: Result<Void, any Error>? = await withCheckedContinuation { continuation in
            ended.withLock { $0 = continuation }
            let task = Task {
                do {
                    try await perform()
                    end(.success(()))
                } catch {
                    end(.failure(error))
                }
            }
            execution.attach(task)
            if let timeout = execution.timeout {
                timer.withLock {
                    $0 = Task {
                        try await Task.sleep(for: timeout)
                        execution.requestStop(.timeout(timeout))
                        try await Task.sleep(for: execution.gracePeriod)
                        end(nil)
                    }
                }
            }
        }
        timer.withLock { $0?.cancel() }
        guard let outcome else {
            let reason = execution.stopReason ?? .timeout(execution.timeout ?? .zero)
            let failure = SwiftJobRun.stopFailure(reason, class: execution.job.className, givenUp: execution.gracePeriod)
            return JobResult(job: execution.job, outcome: .failed(failure, permanent: reason == .cancelled))
        }
        return SwiftJobRun.result(of: execution, outcome)
    }
}
