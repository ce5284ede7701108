import DroverPersistence

/// Why an attempt failed, as stored in `jobs.last_error` and `failed_executions.error`.
public struct JobFailure: Sendable, Codable, Equatable {
    /// The kind of failure: a Swift error's type, `CommandFailed`, `Timeout`, `WorkerCrashed`, …
    public var errorClass: String
    public var message: String
    /// A command's exit status.
    public var exitStatus: Int?
    /// The signal that ended a command or a worker.
    public var signal: Int?
    /// The last ``maxOutputBytes`` of a command's output.
    public var output: String?
    /// When the job was scheduled to run again: the delay its retry policy computed, in seconds.
    public var retryIn: Double?
    /// That retry policy, in words ("exponential backoff, base 5s, max 1h, jitter 0.25").
    public var backoff: String?

    /// How much output a failure keeps: the end, where errors are.
    public static let maxOutputBytes = 4096

    public init(errorClass: String, message: String, exitStatus: Int? = nil, signal: Int? = nil, output: String? = nil) {
        // NUL cannot be stored (PostgreSQL refuses it in text, SQLSTATE 22P05): escaped here, once,
        // for every failure whatever made it.
        self.errorClass = SafeText.escape(errorClass)
        self.message = SafeText.escape(message)
        self.exitStatus = exitStatus
        self.signal = signal
        self.output = output.map { Self.tail(SafeText.escape($0)) }
    }

    enum CodingKeys: String, CodingKey {
        case errorClass = "class", message, exitStatus = "exit_status", signal, output, retryIn = "retry_in", backoff
    }

    /// The last `maxOutputBytes` bytes of `text`, cut at a character boundary.
    static func tail(_ text: String) -> String {
        let utf8 = text.utf8
        guard utf8.count > maxOutputBytes else { return text }
        var start = utf8.index(utf8.endIndex, offsetBy: -maxOutputBytes)
        while start < utf8.endIndex, UTF8.isContinuation(utf8[start]) { start = utf8.index(after: start) }
        return String(text[start...])
    }

    var json: JSON {
        // Encoding a struct of strings and integers cannot fail.
        try! JSON(encoding: self)
    }

    /// The failure to store in place of `failure` when the database refused to store that one
    /// (`error` says why): its class, and its message cut short, with no output.
    public static func notStored(_ failure: JobFailure, because error: any Error) -> JobFailure {
        func printable(_ text: String, limit: Int) -> String {
            String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(limit)))
        }
        return JobFailure(
            errorClass: "ErrorNotStored",
            message: "the job failed (\(printable(failure.errorClass, limit: 200)): \(printable(failure.message, limit: 200))), "
                + "but the database refused to store its error: \(printable((error as? DatabaseError)?.message ?? "\(error)", limit: 500))",
            exitStatus: failure.exitStatus, signal: failure.signal)
    }

    /// The error class of a job stopped by `drover jobs cancel` (``JobStore/cancel(_:on:)``).
    public static let cancelledClass = "Cancelled"
    /// The error class of an attempt stopped by its timeout (command and Swift jobs alike).
    public static let timeoutClass = "Timeout"
    /// A job stopped by its worker's fence (the worker never reports it: it counts as a crash).
    public static let leaseLostClass = "LeaseLost"

    /// The error of a cancelled job whose worker stopped or died before it stopped the job.
    static let cancelled = JobFailure(
        errorClass: cancelledClass, message: "cancelled by drover jobs cancel while it ran; not retried")
}
