import DroverPersistence
import Foundation

/// What became of the jobs a process had claimed.
public struct ReleaseOutcome: Sendable, Equatable {
    /// Back in ready, for another worker.
    public let released: [Int]
    /// Failed for good: they crashed their process `maxCrashes` times (crash releases only), or
    /// their cancellation was asked for.
    public let failed: [Int]

    public init(released: [Int], failed: [Int]) {
        self.released = released
        self.failed = failed
    }
}

/// Why a process let go of its jobs. Either way, a job whose cancellation was asked for fails as
/// cancelled instead of running again.
public enum ReleaseReason: Sendable, Equatable {
    /// It stopped gracefully: its jobs go back to ready and no counter changes.
    case graceful
    /// It died (killed, crashed, pruned): each job's crash count goes up by one, and a job that
    /// reaches `maxCrashes` fails with `failure` as its error instead of running again.
    case crashed(JobFailure, maxCrashes: Int)

    /// The policy for one released job that crashed `crashes` times before: its crash count
    /// afterwards, and the error it fails with (nil: it goes back to ready).
    public func decide(crashes: Int, cancelRequested: Bool) -> (crashes: Int, failure: JSON?) {
        var count = crashes
        var failure: JSON?
        if case .crashed(let error, let maxCrashes) = self {
            count += 1
            if count >= maxCrashes { failure = CrashedFailure(failure: error, crashes: count).json }
        }
        if cancelRequested { failure = JobFailure.cancelled.json }
        return (count, failure)
    }

    /// A crash's error as `last_error` keeps it, with the count.
    public func lastError(crashes: Int) -> JSON? {
        guard case .crashed(let error, _) = self else { return nil }
        return CrashedFailure(failure: error, crashes: crashes).json
    }
}

/// A crash failure with its count, as `last_error` keeps it.
private struct CrashedFailure: Encodable {
    let failure: JobFailure
    let crashes: Int

    func encode(to encoder: any Encoder) throws {
        try failure.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(crashes, forKey: .crashes)
    }

    private enum Key: String, CodingKey { case crashes }

    var json: JSON { try! JSON(encoding: self) }  // strings and integers: encoding cannot fail
}

extension JobStore {
    /// Lets go of the jobs `processID` has claimed (all of them, or only `jobIDs`) and wakes
    /// workers on the queues that got jobs back.
    ///
    /// The claim's removal is the lock: a finish racing a release makes exactly one of them act.
    /// With `onlyEarlierClaims`, a claim made after this release's own time is left alone: a
    /// worker giving back claims it does not run can send this and give up on the answer, claim
    /// the same job again later, and still never have the late-committing release take the new
    /// claim (the model check's "release by claim, not by job").
    @discardableResult
    public func release(
        processID: Int, jobIDs: [Int]? = nil, onlyEarlierClaims: Bool = false, reason: ReleaseReason, on database: Driver.Database
    ) throws -> ReleaseOutcome {
        let now = self.now()
        return try database.atomically {
            var only: SQL = jobIDs.map { "AND \(driver.contains("job_id", ids: Array(Set($0)).sorted()))" } ?? ""
            if onlyEarlierClaims { only = "\(only) AND created_at <= \(now.sql)" }
            var cancelled: Set<Int> = []
            var gone: [Int] = []
            for row in try database.fetch("""
                DELETE FROM \(claimed) WHERE process_id = \(processID) \(only)
                RETURNING job_id, cancel_requested_at IS NOT NULL AS cancelled
                """) {
                let id = try row.decode("job_id", as: Int.self)
                gone.append(id)
                if try row.decode("cancelled", as: Bool.self) { cancelled.insert(id) }
            }
            guard !gone.isEmpty else { return ReleaseOutcome(released: [], failed: []) }
            var back: [Int] = []
            var failedIDs: [Int] = []
            var ended: [EndedJob] = []
            var keys: [String] = []
            for row in try database.fetch("""
                SELECT id, crashes, concurrency_key, batch_id, has_dependants FROM \(jobs) WHERE \(driver.contains("id", ids: gone)) ORDER BY id
                """) {
                let id = try row.decode("id", as: Int.self)
                let (crashes, failure) = reason.decide(crashes: try row.decode("crashes", as: Int.self), cancelRequested: cancelled.contains(id))
                if let failure {
                    try database.change("""
                        UPDATE \(jobs) SET crashes = \(crashes), last_error = \(failure), failed_at = \(now.sql), updated_at = \(now.sql)
                        WHERE id = \(id)
                        """)
                    failedIDs.append(id)
                    ended.append(try EndedJob(row: row, finished: false))
                    // A job that failed gives its slot back; one back in ready keeps it.
                    if let key = try row.decode("concurrency_key", as: String?.self) { keys.append(key) }
                } else {
                    try database.change("""
                        UPDATE \(jobs) SET crashes = \(crashes), last_error = coalesce(\(reason.lastError(crashes: crashes)), last_error),
                            updated_at = \(now.sql)
                        WHERE id = \(id)
                        """)
                    back.append(id)
                }
            }
            if !failedIDs.isEmpty {
                try database.change("""
                    INSERT INTO \(failed) (job_id, error, created_at)
                    SELECT id, last_error, \(now.sql) FROM \(jobs) WHERE \(driver.contains("id", ids: failedIDs)) ORDER BY id
                    """)
                try enqueueFailureHooks(for: failedIDs, cancelled: cancelled, on: database)
            }
            try insertReady(back, now: now, on: database)
            try signal(keys, now: now, on: database)
            try settle(ended, now: now, on: database)
            if case .crashed = reason { try count(.crashReleased, jobs: gone, on: database) }
            try count(.cancelled, jobs: failedIDs.filter { cancelled.contains($0) }, on: database)
            try count(.failed, jobs: failedIDs.filter { !cancelled.contains($0) }, on: database)
            return ReleaseOutcome(released: back, failed: failedIDs)
        }
    }
}
