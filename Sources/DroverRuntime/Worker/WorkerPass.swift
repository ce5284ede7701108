/// What a worker does in one pass of its loop, decided from what it sees (no I/O): the table
/// docs/architecture.md shows, tested case by case in `WorkerPassTests`. ``Worker`` gathers the
/// view, carries the actions out in order, and waits.
///
/// | lease | stopping | sees | does |
/// |---|---|---|---|
/// | under a margin left, not fenced yet | any | | fence: stop claiming, ask every job to stop, return the jobs not started |
/// | under half a margin left (or over) | any | a Swift job still running | exit ``ExitStatus/leaseLost`` at once (only the process's death stops it for sure) |
/// | under half a margin left (or over) | any | commands running | kill them |
/// | fenced | any | results to report | report them (no claim) |
/// | fenced | any | nothing running or to report | exit ``ExitStatus/leaseLost`` (its supervisor releases what it still holds as crashed) |
/// | valid | yes | results to report | report them |
/// | valid | yes | nothing running or to report | deregister and exit |
/// | valid | yes | past shutdown_timeout | kill the commands, deregister (releasing the rest) and exit |
/// | valid | no | a free thread and a claim due, or results past their linger | one turn: report and claim |
enum WorkerPass {
    struct View: Equatable {
        var lease: Lease.Phase = .valid
        var fenced = false
        var stopping = false
        var stopDeadlinePassed = false
        /// Results waiting to be reported.
        var pending = 0
        /// Nothing queued, running, or finished and not yet taken.
        var drained = true
        /// Jobs queued or running.
        var busy = 0
        var threads = 1
        /// A claim is wanted now (a wake-up, a full last batch, the poll interval).
        var claimWanted = false
        /// Results wait a few milliseconds for the rest of their batch.
        var lingering = false
        /// A failed turn's backoff has not passed.
        var backingOff = false
        /// A Swift job runs (it stops only when it cooperates, or with the process).
        var swiftJobsRunning = false
    }

    enum Action: Equatable {
        case fence
        case killCommands
        /// Report the pending results, and claim up to `claimLimit` jobs (0: report only).
        case turn(claimLimit: Int)
        /// Exit with `status`; `deregister` first (releasing what it holds as given back).
        case exit(ExitStatus, deregister: Bool)
    }

    /// The actions of one pass, in order. `stopStatus` is how a worker that stops as asked exits.
    static func decide(_ view: View, stopStatus: ExitStatus = .ok) -> [Action] {
        var actions: [Action] = []
        if view.lease >= .fencing || view.fenced {
            if !view.fenced { actions.append(.fence) }
            if view.lease >= .killing {
                if view.swiftJobsRunning { return actions + [.exit(.leaseLost, deregister: false)] }
                if view.busy > 0 { actions.append(.killCommands) }
            }
            if view.pending > 0 && !view.backingOff { actions.append(.turn(claimLimit: 0)) }
            if view.pending == 0 && view.drained { actions.append(.exit(.leaseLost, deregister: false)) }
            return actions
        }
        if view.stopping {
            if view.pending > 0 && !view.backingOff { actions.append(.turn(claimLimit: 0)) }
            if view.pending == 0 && view.drained { return actions + [.exit(stopStatus, deregister: true)] }
            if view.stopDeadlinePassed { return actions + [.killCommands, .exit(stopStatus, deregister: true)] }
            return actions
        }
        let free = view.threads - view.busy
        let claimDue = free > 0 && view.claimWanted
        if (claimDue || view.pending > 0) && !view.lingering && !view.backingOff {
            actions.append(.turn(claimLimit: claimDue ? free : 0))
        }
        return actions
    }
}
