import DroverPersistence
import CProcess
import DroverQueue
import Foundation
import Synchronization

/// Why a running job is being stopped before it ends by itself.
public enum StopReason: Sendable, Equatable {
    /// It ran past its timeout: it fails with a timeout error and is retried per policy.
    case timeout(Duration)
    /// `drover jobs cancel`: it fails as cancelled and is not retried.
    case cancelled
    /// Its worker could not renew its lease and fenced itself: the attempt is stopped before
    /// another host may take the job over, and counts as a crash, not as a failure.
    case leaseLost
}

/// One job running on an executor thread, as both that thread and the worker's loop see it. The
/// loop decides when a job must stop (timeout, cancellation); the executor carries it out: a
/// command gets TERM, then KILL after its grace period; a Swift job's task is cancelled.
final class Execution: @unchecked Sendable {
    // @unchecked: the mutable state is behind `state`'s lock.
    enum Kind: Sendable { case command, swift, blocking }

    private struct State {
        var stop: StopReason?
        var stopRequestedAt: ContinuousClock.Instant?
        /// The command's process (group leader) while it has not been reaped.
        var processGroup: pid_t?
        var cancelTask: (@Sendable () -> Void)?
        /// Set by a fence: the command is killed by then, whatever its grace period.
        var killBy: ContinuousClock.Instant?
        /// What a Swift job handed back (``JobContext/keep(result:)``).
        var result: JSON?
    }

    let job: ClaimedJob
    let kind: Kind
    let startedAt = ContinuousClock.now
    let timeout: Duration?
    /// How long a job asked to stop may take before it is forced: KILL for a command; for a Swift
    /// job that ignores cancellation, the worker gives it up and exits to be replaced.
    let gracePeriod: Duration
    /// Readable when a stop was requested, for a command's executor waiting in poll(2).
    let control: Wakeup?
    private let state = Mutex(State())

    init(job: ClaimedJob, kind: Kind, timeout: Duration?, gracePeriod: Duration) {
        self.job = job
        self.kind = kind
        self.timeout = timeout
        self.gracePeriod = gracePeriod
        control = kind == .command ? Wakeup() : nil
    }

    var deadline: ContinuousClock.Instant? { timeout.map { startedAt + $0 } }

    var stopReason: StopReason? { state.withLock { $0.stop } }

    /// What the job handed back, if it did.
    var result: JSON? {
        get { state.withLock { $0.result } }
        set { state.withLock { $0.result = newValue } }
    }
    var stopRequestedAt: ContinuousClock.Instant? { state.withLock { $0.stopRequestedAt } }

    /// Asks the job to stop; the first reason wins.
    func requestStop(_ reason: StopReason) {
        let cancelTask: (@Sendable () -> Void)? = state.withLock { state in
            guard state.stop == nil else { return nil }
            state.stop = reason
            state.stopRequestedAt = .now
            return state.cancelTask
        }
        cancelTask?()
        control?.signal()
    }

    /// The worker fenced itself: the job stops (TERM, or cancellation) unless it was already
    /// stopping, and a command still running at `killBy` is killed.
    func fence(killBy: ContinuousClock.Instant) {
        let cancelTask: (@Sendable () -> Void)? = state.withLock { state in
            state.killBy = min(state.killBy ?? killBy, killBy)
            guard state.stop == nil else { return nil }
            state.stop = .leaseLost
            state.stopRequestedAt = .now
            return state.cancelTask
        }
        cancelTask?()
        control?.signal()
    }

    /// When a fence wants the command killed at the latest.
    var killBy: ContinuousClock.Instant? { state.withLock { $0.killBy } }

    /// Records the Swift task running the job, cancelling it at once if a stop came first.
    func attach(_ task: Task<Void, Never>) {
        let stopped = state.withLock { state in
            state.cancelTask = { task.cancel() }
            return state.stop != nil
        }
        if stopped { task.cancel() }
    }

    func commandStarted(_ pid: pid_t) { state.withLock { $0.processGroup = pid } }

    /// Called before the command's process is reaped: after this its pid may be reused.
    func commandExited() { state.withLock { $0.processGroup = nil } }

    /// Sends `signal` to the command's whole process group, if it still has one.
    func signalCommand(_ signal: Int32) {
        state.withLock { state in
            if let group = state.processGroup { kill(-group, signal) }
        }
    }
}
