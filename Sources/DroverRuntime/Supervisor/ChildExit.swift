/// What the supervisor does when a child exits: a table of exit × state (no I/O), tested case by
/// case in `SupervisorDecisionTests`. The statuses are ``ExitStatus``'s contract.
///
/// | the child | while running | while stopping, or a child a reload removed |
/// |---|---|---|
/// | exited 0 (stopped as asked) | jobs given back already; replace it now | nothing more |
/// | exited 75 (its registration was pruned) | its jobs were recovered; replace it now | nothing more |
/// | exited 76 (lost its lease, fenced) | release what it holds as crashed; replace it after the backoff | release as crashed |
/// | exited 71 (could not start, may pass) | release as crashed (it holds nothing); start it after the backoff | nothing more |
/// | exited 78 (configuration) | release as crashed; never start it again | release as crashed |
/// | another status, or a signal | it crashed: release as crashed; start it after the backoff | released as given back (stopping); as crashed (a removed child) |
enum ChildExit {
    enum Restart: Equatable {
        /// The slot is filled again at once.
        case now
        /// After the slot's restart backoff (1 s, doubling to 60 s).
        case afterBackoff
        /// The slot is retired.
        case never
        /// Not replaced: the supervisor is stopping, or a reload removed the child.
        case none
    }

    struct Decision: Equatable {
        /// Its claims are released as crashed (counted toward max_crashes), else as given back.
        var releaseAsCrashed: Bool
        var restart: Restart
        /// Logged as a death (a warning, and STATUS's last error).
        var died: Bool
    }

    /// `status` is the exit status, or nil when a signal killed it.
    static func decide(status: Int32?, supervisorStopping: Bool, removedByReload: Bool) -> Decision {
        let known = status.flatMap(ExitStatus.init(rawValue:))
        let replaced = !supervisorStopping && !removedByReload
        switch known {
        case .ok?, .replaceMe?:
            return Decision(releaseAsCrashed: false, restart: replaced ? .now : .none, died: false)
        case .leaseLost?:
            return Decision(releaseAsCrashed: true, restart: replaced ? .afterBackoff : .none, died: replaced)
        case .transient?:
            return Decision(releaseAsCrashed: replaced || removedByReload, restart: replaced ? .afterBackoff : .none, died: replaced)
        case .config?:
            return Decision(releaseAsCrashed: !supervisorStopping, restart: replaced ? .never : .none, died: replaced)
        default:
            if supervisorStopping {
                // Killed at the stop's deadline, or failed on its way out: a stop, not a crash.
                return Decision(releaseAsCrashed: false, restart: .none, died: false)
            }
            return Decision(releaseAsCrashed: true, restart: replaced ? .afterBackoff : .none, died: replaced)
        }
    }
}
