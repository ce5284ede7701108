/// Every exit status of `drover`, of `drover start` and of the processes it runs: one contract,
/// documented in drover(1) under EXIT STATUS (a test checks that the page lists each case).
///
/// The values are sysexits.h's. The supervisor acts on its children's:
///
/// | status | a child exits with it when | the supervisor |
/// |---|---|---|
/// | ``ok`` | it stopped as asked, its jobs finished or given back | replaces it at once, unless stopping |
/// | ``transient`` | it could not start for a reason that may pass (EMFILE, an NSS lookup, the app's services setup threw) | starts it again after the restart backoff |
/// | ``replaceMe`` | its registration was pruned (its jobs were recovered already) | replaces it at once |
/// | ``leaseLost`` | it could not renew its lease and stopped its jobs (fenced) | releases its remaining jobs as crashed, replaces it after the backoff |
/// | ``config`` | its part of the configuration cannot work | does not start it again |
/// | anything else, or a signal | it crashed | releases its jobs as crashed, starts it again after the backoff |
///
/// ```swift
/// exit(ExitStatus.unavailable.rawValue)   // drover: the database is unreachable
/// ```
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Success, or stopped as asked.
    case ok = 0
    /// An unknown command or option, a malformed argument, a job that breaks a rule.
    case usage = 64
    /// No such job, or a job in the wrong state.
    case dataError = 65
    /// The database is unreachable, refuses the credentials, is missing, or needs `drover migrate`;
    /// `drover web`: its address is held by another program.
    case unavailable = 69
    /// An internal error; `drover start`: its children kept crashing, or its own registration was
    /// taken over by another supervisor.
    case software = 70
    /// A child of `drover start` could not start for a reason that may pass.
    case transient = 71
    /// A child of `drover start` whose registration was pruned: its jobs were recovered already.
    case replaceMe = 75
    /// A worker that could not renew its lease in time: it stopped its jobs before another host
    /// could take them over, and reported what it had finished.
    case leaseLost = 76
    /// The configuration file, a variable or an option's value cannot work.
    case config = 78
}
