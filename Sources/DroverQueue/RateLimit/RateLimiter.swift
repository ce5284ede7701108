import DroverPersistence
import Foundation

/// A limit on how many jobs of a class with one key start in any period, across every host.
///
/// ```swift
/// RateLimitRule(className: "CallStripe", keyTemplate: "stripe", limit: 100, period: .seconds(1))
/// RateLimitRule(className: "SyncAccount", keyTemplate: "account:{account_id}", limit: 10, period: .seconds(60))
/// ```
///
/// A job starts when a worker claims it. A job over its key's limit is never handed to a worker:
/// the claim gives it back, to wait in scheduled until the time its key has room for it (see
/// ``RateLimiter``); it spends no attempt. Classes whose templates render the same key share
/// its starts; each job is held to its own class's limit, counted against all of them.
public struct RateLimitRule: Sendable, Equatable {
    public var className: String
    /// `{name}` is replaced by the job's argument `name` (`{a.b}` reaches into objects), as in
    /// concurrency keys; a template without braces is one key for every job of the class.
    public var keyTemplate: String
    /// How many jobs of one key may start in any `period`.
    public var limit: Int
    public var period: Duration

    public init(className: String, keyTemplate: String? = nil, limit: Int, period: Duration) {
        self.className = className
        self.keyTemplate = keyTemplate ?? className
        self.limit = limit
        self.period = period
    }

    /// The key of a job with `arguments`. A job lacking an argument the template names (or with
    /// it null) is limited under the template's own text, shared by every such job of the class,
    /// so that it is held to the limit rather than let through.
    public func key(for arguments: JSON) -> String {
        ConcurrencyRule.render(keyTemplate, with: arguments) ?? keyTemplate
    }

    /// Throws, naming the range, when the rule could never let a job start or names no valid class.
    public func check() throws(QueueError) {
        try JobRules.checkClassName(className)
        guard JobRules.rateLimitRange.contains(limit) else {
            throw QueueError(
                .invalidRequest, "the rate limit of \(className), \(limit), is out of range: give \(JobRules.rateLimitRange.lowerBound) "
                    + "to \(JobRules.rateLimitRange.upperBound) starts per period", field: "limit")
        }
        guard JobRules.ratePeriodRange.contains(period) else {
            throw QueueError(
                .invalidRequest, "the period of \(className)'s rate limit, \(DurationText.format(period)), is out of range: give 1s to 7d",
                field: "period")
        }
        guard !keyTemplate.isEmpty, keyTemplate.count <= 1000 else {
            throw QueueError(.invalidRequest, "the key of \(className)'s rate limit must be 1 to 1000 characters", field: "key")
        }
    }
}

/// When a rate-limited job may start: the policy, with no database in it.
///
/// Exact: a job starts at `now` only while fewer than `limit` starts of its key fall in the
/// window `(now - period - guard, now]`, judged under the key's lock with the database's clock.
/// Every window that long then holds at most `limit` recorded starts: of the starts in a window,
/// the last one was let through seeing every other one of them. The guard (``guardTime(period:)``)
/// is for the jobs' own clocks: a command begins some milliseconds after its start is recorded,
/// not always the same number, and while that spread is under the guard, every `period` by the
/// jobs' clocks also holds at most `limit`.
///
/// No herd and no loop: a job that may not start is given a time of its own, after every time
/// already given, spaced so that at most `limit` given times fall in any window (times come in
/// batches of `limit`, one window plus a small margin apart). It waits in the database until
/// then and is judged again when claimed: on time it starts; late into a window that the late
/// start of the batch before it filled, it goes to the end of the line again.
public enum RateLimiter {
    public enum Decision: Sendable, Equatable {
        case start
        /// Wait in scheduled until this time.
        case wait(until: Date)
    }

    /// What the database holds for one key, read under its lock.
    public struct KeyState: Sendable, Equatable {
        /// The key's latest starts in the window (at most `limit` of them are needed).
        public var starts: [Date]
        /// The times other waiting jobs of the key were given, after the window's start (the latest
        /// `limit` are needed).
        public var waiting: [Date]
        /// There are more waiting times than `waiting` holds (the read stopped at the limit).
        public var waitingCut: Bool

        public init(starts: [Date], waiting: [Date], waitingCut: Bool = false) {
            self.starts = starts
            self.waiting = waiting
            self.waitingCut = waitingCut
        }
    }

    /// One job to decide, in claim order: whether it was given a time already (it waited once).
    public struct Candidate: Sendable, Equatable {
        public let waited: Bool
        public init(waited: Bool) { self.waited = waited }
    }

    /// The space added between batches of given times, so that a batch that starts a little
    /// later than the one before it (the dispatcher and the claim take a few milliseconds, not
    /// always the same) still finds the window free: 2 % of the period, at most 100 ms.
    public static func margin(period: Double) -> Double { min(period * 0.02, 0.1) }

    /// What the window adds to the period: 10 % of it, at most 250 ms. Measured here, a command
    /// began 2 to 72 ms after its start was recorded (p99 50 ms).
    public static func guardTime(period: Double) -> Double { min(period * 0.1, 0.25) }

    /// The length of the window starts are counted in: the period and its guard.
    public static func window(period: Double) -> Double { period + guardTime(period: period) }

    /// The decision for each candidate, in order, updating `state` as it goes (a start is one
    /// more start; a wait is one more given time).
    public static func decide(
        _ candidates: [Candidate], limit: Int, period: Double, now: Date, state: inout KeyState
    ) -> [Decision] {
        let window = window(period: period)
        let spacing = window + margin(period: period)
        let windowStart = now.addingTimeInterval(-window)
        state.starts = state.starts.filter { $0 > windowStart }
        state.waiting = state.waiting.filter { $0 > windowStart }
        return candidates.map { candidate in
            let startsInWindow = state.starts.count
            if candidate.waited {
                // Its time came: only the starts judge it (the other given times are judged when
                // their jobs come).
                if startsInWindow < limit {
                    state.starts.append(now)
                    return .start
                }
                // Late into a window its batch's late start filled: the end of the line. (The
                // moment the window next has room would give every such job the same time: a
                // herd, let through `limit` at a time.)
            } else {
                // New: it starts now if that crowds neither the starts nor the jobs given times
                // around now (every window that holds now lies in (now - window, now + window)).
                let horizon = now.addingTimeInterval(window)
                let near = state.waiting.filter { $0 < horizon }.count
                if startsInWindow + near < limit && !state.waitingCut {
                    state.starts.append(now)
                    return .start
                }
            }
            // The end of the line: at most `limit` given times and starts in any window.
            let rows = (state.starts + state.waiting).sorted()
            var at = now
            if rows.count >= limit {
                at = max(now, rows[rows.count - limit].addingTimeInterval(spacing))
            }
            state.waiting.append(at)
            return .wait(until: at)
        }
    }
}
