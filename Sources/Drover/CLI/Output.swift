import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// Text for people: aligned columns under a header.
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ cells: String...) { rows.append(cells) }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

/// JSON for programs: one document on stdout, keys sorted, times in ISO 8601.
func printJSON<T: Encodable>(_ value: T) throws {
    print(try jsonText(value))
}

func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// `2026-11-27 02:02:31Z`: UTC, to the second.
func formatTime(_ date: Date?) -> String {
    guard let date else { return "" }
    return DatabaseTime.utcText(date, separator: " ")
}

/// Cuts `text` to `limit` characters on one line.
func oneLine(_ text: String, limit: Int = 60) -> String {
    let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ")
    return flat.count > limit ? flat.prefix(limit - 1) + "…" : flat
}

/// A job for `--json`.
struct JobJSON: Encodable {
    let id: Int
    let queue: String
    let className: String
    let state: String
    let priority: Int
    let attempts: Int
    let maxAttempts: Int
    let crashes: Int
    let snoozes: Int
    let createdAt: Date
    let nextRunAt: Date?
    let claimedBy: Int?
    let finishedAt: Date?
    let failedAt: Date?
    let lastError: JobFailure?
    /// A scheduled job's wait for its start under a rate limit (`drover jobs show` only).
    var rateLimit: RateLimitWaitJSON?
    let batchID: Int?
    /// The jobs it waits (or waited) for (`drover jobs show` only).
    var after: [DependencyJSON]?
    /// The jobs that wait for it (`drover jobs show` only).
    var dependants: [Int]?
    /// What it handed back, spliced in as stored (see `text`).
    let result: JSON?
    /// Spliced in as it is stored (see `text`), so numbers and keys come out unchanged.
    let arguments: JSON?

    init(_ job: JobInfo) {
        id = job.id
        queue = job.queue
        className = job.className
        state = job.state.rawValue
        priority = job.priority
        attempts = job.attempts
        maxAttempts = job.maxAttempts
        crashes = job.crashes
        snoozes = job.snoozes
        createdAt = job.createdAt
        nextRunAt = job.nextRunAt
        claimedBy = job.claimedBy
        finishedAt = job.finishedAt
        failedAt = job.failedAt
        lastError = job.lastError
        arguments = job.arguments
        batchID = job.batchID
        result = job.result
    }

    /// The job as one JSON object; `arguments`, when present, is the stored document as it is.
    func text() throws -> String {
        var encoded = try jsonText(self)
        // Keys are sorted, so "arguments" goes first, then "result" (which sorts later, but the
        // stored document cannot go through the encoder unchanged).
        if let result { encoded = "{\"result\":" + result.text + "," + encoded.dropFirst() }
        guard let arguments else { return encoded }
        return "{\"arguments\":" + arguments.text + "," + encoded.dropFirst()
    }

    enum CodingKeys: String, CodingKey {
        case id, queue, className = "class", state, priority, attempts, maxAttempts = "max_attempts", crashes, snoozes
        case createdAt = "created_at", nextRunAt = "next_run_at", claimedBy = "claimed_by"
        case finishedAt = "finished_at", failedAt = "failed_at", lastError = "last_error", rateLimit = "rate_limit"
        case batchID = "batch_id", after, dependants
    }
}

/// A job another waits for: `{"job_id": …, "outcome": "finished" | "failed" | null}`.
struct DependencyJSON: Encodable {
    let jobID: Int
    let outcome: String?
    enum CodingKeys: String, CodingKey { case jobID = "job_id", outcome }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(jobID, forKey: .jobID)
        try container.encode(outcome, forKey: .outcome)
    }
}

/// `{"key": …, "until": …}`: the rate-limit key a scheduled job waits under, and the time it was given.
struct RateLimitWaitJSON: Encodable {
    let key: String
    let until: Date
}
