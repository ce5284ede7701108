import Foundation

/// How long a failed job waits before its next attempt: exponential backoff with jitter, the one
/// implementation every backend uses.
///
/// After the n-th failed attempt the delay is `min(maxDelay, baseDelay × 2^(n-1))`, less a random
/// part of up to `jitter` of it, so that jobs that failed together do not all come back together.
public struct RetryPolicy: Sendable, Equatable {
    /// The delay after the first failure (before jitter).
    public var baseDelay: Duration
    /// The longest delay.
    public var maxDelay: Duration
    /// The largest fraction of a delay taken off at random, from 0 (none) to 1.
    public var jitter: Double

    public init(baseDelay: Duration = .seconds(5), maxDelay: Duration = .seconds(3600), jitter: Double = 0.25) {
        precondition(baseDelay > .zero && maxDelay >= baseDelay && (0...1).contains(jitter))
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// Seconds before the attempt after `failedAttempts` failures (1 or more); `random` (from 0
    /// up to 1) picks how much of the jitter is taken off.
    public func delay(afterFailedAttempts failedAttempts: Int, random: Double) -> Double {
        let longest = min(maxDelay.seconds, baseDelay.seconds * pow2(max(0, failedAttempts - 1)))
        return longest * (1 - jitter * random)
    }

    /// The shortest and longest delay, in seconds, after `failedAttempts` failures (1 or more).
    public func delayBounds(afterFailedAttempts failedAttempts: Int) -> ClosedRange<Double> {
        delay(afterFailedAttempts: failedAttempts, random: 1)...delay(afterFailedAttempts: failedAttempts, random: 0)
    }

    private func pow2(_ n: Int) -> Double { n >= 1023 ? .infinity : Double(sign: .plus, exponent: n, significand: 1) }
}
