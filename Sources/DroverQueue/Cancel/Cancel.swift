import DroverPersistence

/// What `cancel` did to a job.
public enum CancelOutcome: Sendable, Equatable {
    /// It was waiting (ready, scheduled or blocked) and is gone.
    case discarded(was: JobState)
    /// It is running: the worker `processID` was asked to stop it; it then fails as cancelled.
    case requested(processID: Int)
}

extension JobStore {
    /// The error class of a job stopped by ``cancel(_:on:)``.
    public static let cancelledErrorClass = "Cancelled"

    /// Cancels job `id`: a waiting job is deleted at once; a running one is marked on its claim and
    /// its worker is notified (payload `cancel <process id>`), so that it stops the job, which then
    /// fails without retries. A job whose worker dies first fails as cancelled when it is released.
    ///
    /// - Throws: ``QueueError`` `jobNotFound`, or `wrongState` for a finished or failed job.
    public func cancel(_ id: Int, on connection: Connection) throws -> CancelOutcome {
        try connection.withTransaction { connection in
            // Each DELETE waits for a claim or release in progress on its row, so a job moving
            // between states is found in the state it lands in.
            for (table, state) in [(ready, JobState.ready), (scheduled, .scheduled), (blocked, .blocked)] {
                if try connection.execute("DELETE FROM \(table) WHERE job_id = \(id)") > 0 {
                    let key = try connection.query("DELETE FROM \(jobs) WHERE id = \(id) RETURNING concurrency_key")
                        .first?.decode("concurrency_key", as: String?.self)
                    // A ready job held a slot of its concurrency key.
                    if state == .ready, let key { try signal([key], on: connection) }
                    return .discarded(was: state)
                }
            }
            let requested = try connection.query("""
                UPDATE \(claimed) SET cancel_requested_at = coalesce(cancel_requested_at, now())
                WHERE job_id = \(id) RETURNING process_id
                """)
            if let row = requested.first {
                let processID = try row.decode("process_id", as: Int.self)
                try connection.execute("SELECT pg_notify(\(wakeChannel), \("cancel \(processID)"))")
                return .requested(processID: processID)
            }
            guard let state = try states(of: [id], on: connection)[id] else {
                throw QueueError(.jobNotFound, "no job with id \(id)", jobIDs: [id])
            }
            throw QueueError(.wrongState, "job \(id) is \(state.rawValue): only waiting or running jobs can be cancelled", jobIDs: [id])
        }
    }

    /// The jobs claimed by `processID` whose cancellation was asked for.
    public func cancelRequests(processID: Int, on connection: Connection) throws -> [Int] {
        try connection.query(prepared: true, """
            SELECT job_id FROM \(claimed) WHERE process_id = \(processID) AND cancel_requested_at IS NOT NULL ORDER BY job_id
            """).map { try $0.decode("job_id", as: Int.self) }
    }

    /// The worker process a cancellation notification is for, or nil when the payload is a queue.
    public static func cancelledProcess(inNotification payload: String) -> Int? {
        guard payload.hasPrefix("cancel ") else { return nil }
        return Int(payload.dropFirst("cancel ".count))
    }

    /// `failed_executions.error` of a cancelled job.
    static let cancelledError = JobFailure(
        errorClass: cancelledErrorClass, message: "cancelled by drover jobs cancel while it ran; not retried")
}
