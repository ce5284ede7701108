import Drover
import Foundation
import Tracing

/// Welcomes a new user: here, by writing the message into an outbox directory. The mail
/// provider takes at most 50 messages a second from the app, on every host together.
struct SendWelcomeEmail: Job {
    static let queue = "mail"
    static let timeout: Duration? = .seconds(30)
    static let rateLimit: RateLimit? = RateLimit(key: "smtp", limit: 50, period: .seconds(1))

    var userID: Int
    var address: String

    func perform(_ context: JobContext) async throws {
        // The request that signed the user up, restored from the job (RequestID.swift).
        let request = ServiceContext.current?.requestID ?? "-"
        context.logger.info("sending a welcome email", metadata: ["user": "\(userID)", "attempt": "\(context.attempt)", "request": "\(request)"])
        try context.checkCancellation()
        // The worker's mailer, built once when it started (main.swift).
        let mailer = try context.services(Mailer.self)
        try mailer.send(to: address, name: "welcome-\(userID).eml", body: "Subject: Welcome!\n\nHello user \(userID), and welcome.\n",
                        job: context.jobID)
    }
}

/// A slow job that stops as soon as it is cancelled (timeout or `signup jobs cancel ID`). One
/// report at a time, across every host: the others wait as blocked. When one fails for good (or
/// is cancelled), ReportFailed tells someone.
struct GenerateReport: Job {
    static let timeout: Duration? = .seconds(600)
    static let concurrency: ConcurrencyLimit? = ConcurrencyLimit(key: "reports", limit: 1)
    static let onFailure: OnFailure? = OnFailure(ReportFailed.self, includeCancelled: true)

    var seconds: Int

    func perform(_ context: JobContext) async throws {
        for _ in 0..<seconds {
            try await Task.sleep(for: .seconds(1))  // throws CancellationError once cancelled
        }
    }
}

/// Enqueued by Drover when a GenerateReport fails for good: its arguments say which job and why
/// (the keys are Drover's; a job reads the ones it needs).
struct ReportFailed: Job {
    var jobID: Int
    var cancelled: Bool
    var error: Failure?
    struct Failure: Codable { var message: String }

    enum CodingKeys: String, CodingKey { case jobID = "job_id", cancelled, error }

    func perform(_ context: JobContext) async throws {
        let why = cancelled ? "cancelled" : (error?.message ?? "failed")
        try context.services(Mailer.self).send(
            to: "ops@example.com", name: "report-failed-\(jobID).eml", body: "Subject: report \(jobID): \(why)\n", job: context.jobID)
    }
}
