import DroverPersistence
import Foundation

/// A call of PostgreSQL's SQL function `enqueue_many(jsonb)` for a batch of jobs, made by a client
/// other than Drover's own connection (DroverPostgresNIO): the jobs checked by ``JobRules`` first,
/// so that a bad job throws before anything is sent (and never aborts the caller's transaction),
/// then one JSON document for the function's one parameter. The function then does what it does
/// for every SQL caller: its own checks, unique keys, concurrency admission and NOTIFY.
///
/// ```swift
/// let call = try EnqueueFunctionCall([NewJob("SendReport")], schema: "drover")
/// // call.sql: SELECT id FROM "drover"."enqueue_many"($1) WITH ORDINALITY …, with call.document bound as jsonb
/// ```
public struct EnqueueFunctionCall: Sendable {
    /// The statement, with one parameter, `$1`, to bind ``document`` to as `jsonb`; it answers one
    /// row per job, its id (`bigint`), in the order of the jobs. The only name in it is the schema,
    /// validated and quoted.
    public let sql: String
    /// The JSON array of jobs (`class`, `arguments`, `queue`, `priority`, `max_attempts`, and when
    /// set `run_at`, `timeout`, `unique_key`, `trace_context`).
    public let document: String
    /// How many jobs the call enqueues.
    public let count: Int
    /// The schema, as given.
    public let schema: String

    /// - Throws: ``QueueError`` (`invalidJob`, naming the field; "job N:" first in a batch of
    ///   several) for a job that breaks ``JobRules``, or whose arguments, unique key or trace
    ///   context hold a NUL character, which PostgreSQL cannot store; `DatabaseError` (`invalidIdentifier`) for a
    ///   schema name that is not a plain identifier.
    public init(_ jobs: [NewJob], schema: String) throws {
        let function = try SQLIdentifier.validated(schema, what: "schema").qualifying("enqueue_many")
        var document = "["
        for (i, job) in jobs.enumerated() {
            do {
                try JobRules.check(job)
                // PostgreSQL's text and jsonb cannot hold NUL: refused here, before the server would
                // refuse it and abort the caller's transaction.
                if Self.holdsNUL(job.arguments.text) {
                    throw QueueError(
                        .invalidJob, "arguments hold a NUL character (\\u0000), which PostgreSQL's jsonb cannot store: "
                            + "remove it, or encode the value (base64, say)", field: "arguments")
                }
                if job.uniqueKey?.unicodeScalars.contains("\0") == true {
                    throw QueueError(.invalidJob, "unique_key holds a NUL character, which PostgreSQL cannot store", field: "unique_key")
                }
                if let trace = job.traceContext, trace.contains(where: { $0.key.unicodeScalars.contains("\0") || $0.value.unicodeScalars.contains("\0") }) {
                    throw QueueError(.invalidJob, "the trace context holds a NUL character, which PostgreSQL cannot store",
                                     field: "trace_context")
                }
            } catch let error as QueueError {
                throw error.about(job: i, of: jobs.count)
            }
            if i > 0 { document += "," }
            document += try Self.element(job)
        }
        self.document = document + "]"
        self.sql = "SELECT e.id FROM \(function.quoted)($1) WITH ORDINALITY AS e(id, n) ORDER BY e.n"
        self.count = jobs.count
        self.schema = schema
    }

    /// The function's refusal of a job (SQLSTATE 22023 with the field as the error's column) as
    /// the ``QueueError`` the Swift API throws for it: `invalidJob`, the field, the function's
    /// message without its `drover: ` prefix (and without "job 1: " for a single job, as
    /// ``QueueError/about(job:of:)`` has it). Nil for any other error.
    public func queueError(sqlState: String?, column: String?, message: String) -> QueueError? {
        guard sqlState == "22023", let column else { return nil }
        var text = message.hasPrefix("drover: ") ? String(message.dropFirst("drover: ".count)) : message
        if count == 1, text.hasPrefix("job 1: ") { text = String(text.dropFirst("job 1: ".count)) }
        return QueueError(.invalidJob, text, field: column)
    }

    /// One job as the function reads it. Names were checked (they need no escaping) and arguments
    /// are JSON; the unique key and the trace context are any text, encoded.
    private static func element(_ job: NewJob) throws -> String {
        var text = "{\"class\":\"\(job.className)\",\"queue\":\"\(job.queue)\",\"arguments\":\(job.arguments.text)"
        text += ",\"priority\":\(job.priority),\"max_attempts\":\(job.maxAttempts)"
        if let timeout = job.timeout {
            // Whole milliseconds, as the function takes them (at most 3 decimals).
            let milliseconds = Int64((timeout.seconds * 1000).rounded())
            text += milliseconds % 1000 == 0
                ? ",\"timeout\":\(milliseconds / 1000)"
                : ",\"timeout\":\(milliseconds / 1000).\(String(milliseconds % 1000).leftPadded(to: 3))"
        }
        if let runAt = job.runAt, let time = runAt.databaseText { text += ",\"run_at\":\"\(time)\"" }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let key = job.uniqueKey {
            text += ",\"unique_key\":" + String(decoding: try encoder.encode(key), as: UTF8.self)
        }
        if let trace = job.traceContext, !trace.isEmpty {
            text += ",\"trace_context\":" + String(decoding: try encoder.encode(trace), as: UTF8.self)
        }
        return text + "}"
    }

    /// Whether JSON text holds the escape `\u0000` (an escaped backslash followed by `u0000` is
    /// text, not a NUL).
    static func holdsNUL(_ json: String) -> Bool {
        let bytes = Array(json.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count {
                if bytes[i + 1] == UInt8(ascii: "u"), i + 5 < bytes.count, bytes[(i + 2)...(i + 5)].elementsEqual("0000".utf8) {
                    return true
                }
                i += 2
                continue
            }
            i += 1
        }
        return false
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
