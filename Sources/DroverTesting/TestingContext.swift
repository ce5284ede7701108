import Drover
import DroverRuntime
import Logging

extension JobContext {
    /// A context for calling a job's `perform` directly in a test, with no worker behind it: its
    /// `isCancelled` is its task's, and `services(_:)` returns `services`.
    ///
    /// ```swift
    /// let mailer = TestMailer()
    /// try await SendWelcomeEmail(userID: 7, address: "ada@example.com")
    ///     .perform(JobContext(jobID: 42, className: "SendWelcomeEmail", services: mailer))
    /// #expect(mailer.sent == ["ada@example.com"])
    /// ```
    public init(
        jobID: Int = 1, attempt: Int = 1, maxAttempts: Int = 5, queue: String = "default", className: String = "Job",
        logger: Logger = Logger(label: "drover.test"), services: (any Sendable)? = nil
    ) {
        var logger = logger
        logger[metadataKey: "job"] = "\(jobID)"
        logger[metadataKey: "class"] = "\(className)"
        logger[metadataKey: "queue"] = "\(queue)"
        self.init(standalone: jobID, attempt: attempt, maxAttempts: maxAttempts, queue: queue, className: className,
                  logger: logger, services: services)
    }

    /// A context for a job of type `J`: its class name, and its queue and maximum attempts unless
    /// given.
    ///
    /// ```swift
    /// try await job.perform(JobContext(for: SendWelcomeEmail.self, attempt: 2, services: mailer))
    /// ```
    public init<J: Job>(
        for type: J.Type, jobID: Int = 1, attempt: Int = 1, maxAttempts: Int? = nil, queue: String? = nil,
        logger: Logger = Logger(label: "drover.test"), services: (any Sendable)? = nil
    ) {
        self.init(jobID: jobID, attempt: attempt, maxAttempts: maxAttempts ?? J.maxAttempts, queue: queue ?? J.queue,
                  className: J.className, logger: logger, services: services)
    }
}
