import Foundation

/// How long a failed job waits before its next attempt: the one implementation every backend and
/// every kind of job (command handlers, Swift job types) uses.
///
/// After the n-th failed attempt the delay before jitter is, by ``backoff``:
/// - ``Backoff/exponential``: `base × 2^(n-1)` (5 s, 10 s, 20 s, … with the defaults);
/// - ``Backoff/polynomial``: `base × n⁴` (with a base of 1 s: 1 s, 16 s, 81 s, 256 s, …);
/// - ``Backoff/fixed``: `base` every time;
///
/// at most `maxDelay`, less a random part of up to `jitter` of it, so that jobs that failed
/// together do not all come back together.
public struct RetryPolicy: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The curve the delay follows as attempts fail.
    public enum Backoff: String, Sendable, Codable, CaseIterable {
        case exponential, polynomial, fixed
    }

    public var backoff: Backoff
    /// The delay after the first failure (before jitter).
    public var baseDelay: Duration
    /// The longest delay.
    public var maxDelay: Duration
    /// The largest fraction of a delay taken off at random, from 0 (none) to 1.
    public var jitter: Double

    /// The range of `baseDelay` and `maxDelay` that configuration and ``problem()`` accept.
    public static let delayRange: ClosedRange<Duration> = .milliseconds(1)...(.seconds(30 * 86_400))

    public init(
        backoff: Backoff = .exponential, baseDelay: Duration = .seconds(5), maxDelay: Duration = .seconds(3600),
        jitter: Double = 0.25
    ) {
        self.backoff = backoff
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// Why this policy cannot be used, naming the field and its range; nil when it can.
    public func problem() -> String? {
        let range = "\(DurationText.format(Self.delayRange.lowerBound)) to \(DurationText.format(Self.delayRange.upperBound))"
        if !Self.delayRange.contains(baseDelay) { return "base must be from \(range), not \(DurationText.format(baseDelay))" }
        if !Self.delayRange.contains(maxDelay) { return "max must be from \(range), not \(DurationText.format(maxDelay))" }
        if maxDelay < baseDelay { return "max (\(DurationText.format(maxDelay))) must be at least base (\(DurationText.format(baseDelay)))" }
        if !(0...1).contains(jitter) { return "jitter must be from 0 to 1 (a fraction of the delay), not \(jitter)" }
        return nil
    }

    /// Seconds before the attempt after `failedAttempts` failures (1 or more); `random` (from 0
    /// up to 1) picks how much of the jitter is taken off.
    public func delay(afterFailedAttempts failedAttempts: Int, random: Double) -> Double {
        let n = max(1, failedAttempts)
        let curve: Double
        switch backoff {
        case .exponential: curve = pow2(n - 1)
        case .polynomial: curve = n >= 1 << 15 ? .infinity : pow(Double(n), 4)
        case .fixed: curve = 1
        }
        let longest = min(maxDelay.seconds, baseDelay.seconds * curve)
        return longest * (1 - jitter * min(max(random, 0), 1))
    }

    /// The shortest and longest delay, in seconds, after `failedAttempts` failures (1 or more).
    public func delayBounds(afterFailedAttempts failedAttempts: Int) -> ClosedRange<Double> {
        delay(afterFailedAttempts: failedAttempts, random: 1)...delay(afterFailedAttempts: failedAttempts, random: 0)
    }

    /// "exponential backoff, base 5s, max 1h, jitter 0.25"
    public var description: String {
        "\(backoff.rawValue) backoff, base \(DurationText.format(baseDelay)), max \(DurationText.format(maxDelay)), jitter \(jitter)"
    }

    private func pow2(_ n: Int) -> Double { n >= 1023 ? .infinity : Double(sign: .plus, exponent: n, significand: 1) }

    enum CodingKeys: String, CodingKey {
        case backoff, baseMilliseconds = "base_ms", maxMilliseconds = "max_ms", jitter
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        backoff = try container.decode(Backoff.self, forKey: .backoff)
        baseDelay = .milliseconds(try container.decode(Int64.self, forKey: .baseMilliseconds))
        maxDelay = .milliseconds(try container.decode(Int64.self, forKey: .maxMilliseconds))
        jitter = try container.decode(Double.self, forKey: .jitter)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(backoff, forKey: .backoff)
        try container.encode(Int64(baseDelay.seconds * 1000), forKey: .baseMilliseconds)
        try container.encode(Int64(maxDelay.seconds * 1000), forKey: .maxMilliseconds)
        try container.encode(jitter, forKey: .jitter)
    }
}
