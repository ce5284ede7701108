import DroverPersistence
import Foundation

/// What a job must look like to be enqueued, on every backend. PostgreSQL's SQL function
/// `enqueue_many` checks the same rules for callers that do not go through Swift; a test holds
/// the two together.
public enum JobRules {
    /// Queue names: 1 to 100 of `A-Z a-z 0-9 _ . : -`, starting with a letter, digit or `_`.
    /// (`*` is kept for patterns: `mail*`, `*`.)
    public static let maxQueueNameLength = 100
    /// Class names: 1 to 200 of `A-Z a-z 0-9 _ . : -`, starting with a letter or `_`.
    public static let maxClassNameLength = 200
    /// Priorities: lower runs first.
    public static let priorityRange = -32768...32767
    public static let maxAttemptsRange = 1...1000
    /// Arguments: a JSON object or array of at most this many bytes.
    public static let maxArgumentsBytes = 1_048_576
    /// The most a trace context may hold, keys and values (W3C's `traceparent`, `tracestate` and
    /// `baggage` together fit in about 9 KiB).
    public static let maxTraceContextBytes = 16_384
    public static let defaultQueue = "default"
    /// The most jobs one job may wait for (``NewJob/after``).
    public static let maxDependencies = 10_000
    /// The most a job's result may hold: JSON text of at most this many bytes.
    public static let maxResultBytes = 65_536
    /// Unique keys: any text of 1 to this many characters.
    public static let maxUniqueKeyLength = 1000
    /// How long one attempt may be allowed to run.
    public static let timeoutRange: ClosedRange<Duration> = .seconds(1)...(.seconds(7 * 86_400))
    public static let defaultMaxAttempts = 5
    /// Concurrency rules: how many jobs of one key may hold a slot, and how long a slot lasts
    /// without news (the same from the configuration and from a Swift job type).
    public static let concurrencyLimitRange = 1...10_000
    public static let concurrencyDurationRange: ClosedRange<Duration> = .seconds(1)...(.seconds(7 * 86_400))
    /// Rate limits: how many jobs of one key may start in a period, and the period. A claim of a
    /// rate-limited job reads up to twice the limit of its key's rows, so the limit is bounded.
    public static let rateLimitRange = 1...10_000
    public static let ratePeriodRange: ClosedRange<Duration> = .seconds(1)...(.seconds(7 * 86_400))
    /// When a job may be asked to run: years 1 to 9999 (UTC), the times every backend stores
    /// and orders alike.
    public static let runAtRange: Range<Date> =
        Date(timeIntervalSince1970: -62_135_596_800)..<Date(timeIntervalSince1970: 253_402_300_800)

    public static func checkQueueName(
        _ name: String, field: String = "queue", code: QueueError.Code = .invalidJob
    ) throws(QueueError) {
        guard isName(name, maxLength: maxQueueNameLength, firstMayBeDigit: true) else {
            throw QueueError(
                code,
                "\(field) \"\(name)\" is not a valid queue name: use 1 to \(maxQueueNameLength) letters, digits, "
                    + "_ . : -, starting with a letter, digit or _",
                field: field)
        }
    }

    public static func checkClassName(_ name: String) throws(QueueError) {
        guard isName(name, maxLength: maxClassNameLength, firstMayBeDigit: false) else {
            throw QueueError(
                .invalidJob,
                "class \"\(name)\" is not a valid class name: use 1 to \(maxClassNameLength) letters, digits, "
                    + "_ . : -, starting with a letter or _",
                field: "class")
        }
    }

    public static func check(_ job: NewJob) throws(QueueError) {
        try checkClassName(job.className)
        try checkQueueName(job.queue)
        guard job.arguments.isObject || job.arguments.isArray else {
            throw QueueError(.invalidJob, "arguments must be a JSON object or array, not \(job.arguments.text.prefix(40))", field: "arguments")
        }
        let size = job.arguments.text.utf8.count
        guard size <= maxArgumentsBytes else {
            throw QueueError(
                .invalidJob,
                "arguments are \(size) bytes of JSON; the limit is \(maxArgumentsBytes) (1 MiB): pass a reference to large data instead",
                field: "arguments")
        }
        if let trace = job.traceContext {
            let traceSize = trace.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            guard traceSize <= maxTraceContextBytes else {
                throw QueueError(
                    .invalidJob, "the trace context holds \(traceSize) bytes; the limit is \(maxTraceContextBytes) (16 KiB): "
                        + "carry less baggage", field: "trace_context")
            }
        }
        guard priorityRange.contains(job.priority) else {
            throw QueueError(
                .invalidJob, "priority \(job.priority) is not an integer from \(priorityRange.lowerBound) to \(priorityRange.upperBound)",
                field: "priority")
        }
        guard maxAttemptsRange.contains(job.maxAttempts) else {
            throw QueueError(
                .invalidJob, "max_attempts \(job.maxAttempts) is not an integer from 1 to \(maxAttemptsRange.upperBound)",
                field: "max_attempts")
        }
        if let timeout = job.timeout, !timeoutRange.contains(timeout) {
            throw QueueError(
                .invalidJob, "timeout \(timeout) is not from 1 second to 7 days", field: "timeout")
        }
        if let runAt = job.runAt, !runAtRange.contains(runAt) {
            throw QueueError(
                .invalidJob, "run_at \(describe(runAt)) is out of range: give a time from year 1 to 9999 (0001-01-01T00:00:00Z to "
                    + "9999-12-31T23:59:59Z)", field: "run_at")
        }
        // Characters as PostgreSQL counts them: code points.
        if let key = job.uniqueKey, !(1...maxUniqueKeyLength).contains(key.unicodeScalars.count) {
            throw QueueError(
                .invalidJob, "unique_key must be 1 to \(maxUniqueKeyLength) characters, not \(key.unicodeScalars.count)",
                field: "unique_key")
        }
        try checkDependencies(job)
    }

    static func checkDependencies(_ job: NewJob) throws(QueueError) {
        guard job.after.count <= maxDependencies else {
            throw QueueError(
                .invalidJob, "after lists \(job.after.count) jobs; a job may wait for at most \(maxDependencies): "
                    + "wait for a batch's callback instead", field: "after")
        }
        if let bad = job.after.first(where: { $0 < 1 }) {
            throw QueueError(.invalidJob, "after: \(bad) is not a job id (ids are 1 or more)", field: "after")
        }
        if Set(job.after).count != job.after.count {
            throw QueueError(.invalidJob, "after lists a job twice: list each job it waits for once", field: "after")
        }
        if !job.after.isEmpty && !job.arguments.isObject {
            throw QueueError(
                .invalidJob, "a job that waits for others takes a JSON object as arguments (what became of the jobs it waited "
                    + "for is added under drover_dependencies), not an array", field: "arguments")
        }
        if let batch = job.batchID, batch < 1 {
            throw QueueError(.invalidJob, "batch \(batch) is not a batch id (ids are 1 or more)", field: "batch")
        }
        if job.uniqueKey != nil && (!job.after.isEmpty || job.batchID != nil) {
            throw QueueError(
                .invalidJob, "a job with a unique key cannot wait for other jobs or join a batch: its enqueue may return "
                    + "another job instead; drop unique_key, or after and batch", field: "unique_key")
        }
    }

    /// A job's result: a JSON value of at most ``maxResultBytes``.
    public static func checkResult(_ result: JSON) throws(QueueError) {
        let size = result.text.utf8.count
        guard size <= maxResultBytes else {
            throw QueueError(
                .invalidJob, "the result is \(size) bytes of JSON; the limit is \(maxResultBytes) (64 KiB): "
                    + "store large data elsewhere and return a reference to it", field: "result")
        }
    }

    /// A time out of range as its user gave it: Unix seconds (what no calendar shows).
    private static func describe(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite else { return "@\(seconds)" }
        return abs(seconds) < 1e18 ? "@\(Int64(seconds.rounded(.down)))" : "@\(seconds)"
    }

    private static func isName(_ name: String, maxLength: Int, firstMayBeDigit: Bool) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maxLength else { return false }
        func isLetter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
        guard isLetter(first) || first == UInt8(ascii: "_") || (firstMayBeDigit && isDigit(first)) else { return false }
        return bytes.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") }
    }
}
