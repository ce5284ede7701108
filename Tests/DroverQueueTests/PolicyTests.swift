import DroverPersistence
@testable import DroverQueue
import Foundation
import Testing

/// The store's policy, with no database: what every backend does, decided in one place.
@Suite("Policy: backoff, attempts, crashes, admission, queue patterns, as tables")
struct PolicyTests {
    @Test("the backoff doubles from its base up to its cap, less at most the jitter")
    func backoff() {
        let policy = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0.25)
        #expect(policy.delayBounds(afterFailedAttempts: 1) == 3.75...5)
        #expect(policy.delayBounds(afterFailedAttempts: 2) == 7.5...10)
        #expect(policy.delayBounds(afterFailedAttempts: 4) == 30...40)
        #expect(policy.delayBounds(afterFailedAttempts: 5) == 45...60)
        #expect(policy.delayBounds(afterFailedAttempts: 500) == 45...60)
        #expect(policy.delayBounds(afterFailedAttempts: 5_000) == 45...60, "no overflow past 2^1023")
        #expect(policy.delay(afterFailedAttempts: 3, random: 0.5) == 17.5)
        #expect(RetryPolicy(jitter: 0).delayBounds(afterFailedAttempts: 1) == 5...5)
    }

    @Test("each backoff curve, as a table: fixed stays at its base, polynomial is base × n⁴, exponential doubles; all stop at max",
          arguments: [
              (RetryPolicy.Backoff.fixed, 1, 10.0), (.fixed, 7, 10), (.fixed, 100_000, 10),
              (.polynomial, 1, 10), (.polynomial, 2, 160), (.polynomial, 3, 810), (.polynomial, 4, 2560), (.polynomial, 5, 3600),
              (.polynomial, 1 << 20, 3600), (.polynomial, .max, 3600),
              (.exponential, 1, 10), (.exponential, 2, 20), (.exponential, 9, 2560), (.exponential, 10, 3600), (.exponential, .max, 3600),
          ])
    func curves(backoff: RetryPolicy.Backoff, failed: Int, seconds: Double) {
        let policy = RetryPolicy(backoff: backoff, baseDelay: .seconds(10), maxDelay: .seconds(3600), jitter: 0.5)
        #expect(policy.delay(afterFailedAttempts: failed, random: 0) == seconds)
        #expect(policy.delay(afterFailedAttempts: failed, random: 1) == seconds / 2, "the jitter takes off up to half")
        #expect(policy.delay(afterFailedAttempts: failed, random: 0.999_999).isFinite)
    }

    @Test("a policy out of range names the field and its range; a good one round-trips through JSON and says itself in words")
    func policyProblems() throws {
        #expect(RetryPolicy().problem() == nil)
        #expect(RetryPolicy(baseDelay: .zero).problem() == "base must be from 1ms to 30d, not 0s")
        #expect(RetryPolicy(maxDelay: .seconds(31 * 86_400)).problem() == "max must be from 1ms to 30d, not 31d")
        #expect(RetryPolicy(baseDelay: .seconds(60), maxDelay: .seconds(30)).problem() == "max (30s) must be at least base (1m)")
        #expect(RetryPolicy(jitter: 1.5).problem() == "jitter must be from 0 to 1 (a fraction of the delay), not 1.5")
        #expect(RetryPolicy(jitter: -.infinity).problem() != nil)
        let policy = RetryPolicy(backoff: .polynomial, baseDelay: .milliseconds(1500), maxDelay: .seconds(7200), jitter: 0.1)
        #expect(try JSON(encoding: policy).decode(RetryPolicy.self) == policy)
        #expect(policy.description == "polynomial backoff, base 1s500ms, max 2h, jitter 0.1")
    }

    @Test("after a failed attempt: retried while attempts are left, failed for good at the limit or when permanent",
          arguments: [
              (1, 5, false, true), (4, 5, false, true), (5, 5, false, false), (6, 5, false, false), (1, 1, false, false),
              (1, 5, true, false),
          ])
    func attempts(failed: Int, maxAttempts: Int, permanent: Bool, retried: Bool) {
        let decision = AttemptDecision.after(
            failedAttempts: failed, maxAttempts: maxAttempts, permanent: permanent, retryPolicy: RetryPolicy(jitter: 0), random: 0)
        #expect(decision == (retried ? .retry(afterSeconds: 5 * pow(2, Double(failed - 1))) : .failForGood))
    }

    @Test("a released job: a graceful stop changes nothing; a crash counts, and fails the job at max_crashes; a cancellation fails it",
          arguments: [
              (false, 0, false, 0, false), (false, 2, true, 2, true), (true, 0, false, 1, false), (true, 1, false, 2, true),
              (true, 4, false, 5, true), (true, 0, true, 1, true),
          ])
    func release(crashed: Bool, crashesBefore: Int, cancelled: Bool, crashesAfter: Int, fails: Bool) throws {
        let failure = JobFailure(errorClass: "WorkerCrashed", message: "killed", signal: 9)
        let reason: ReleaseReason = crashed ? .crashed(failure, maxCrashes: 2) : .graceful
        let (crashes, error) = reason.decide(crashes: crashesBefore, cancelRequested: cancelled)
        #expect(crashes == crashesAfter && (error != nil) == fails)
        if cancelled { #expect(try error?.decode(JobFailure.self).errorClass == JobFailure.cancelledClass) }
        if crashed && fails && !cancelled {
            struct Counted: Decodable { let crashes: Int; let signal: Int }
            #expect(try error?.decode(Counted.self).crashes == crashesAfter)
        }
    }

    @Test("admission takes free slots in order; without one a job waits, or is discarded when its rule says so; no rule, no limit")
    func admission() {
        var free = ["a": 1, "b": 0]
        let verdicts = Admission.decide([
            .init(key: "a", maxRunning: 2, onConflict: .block), .init(key: "a", maxRunning: 2, onConflict: .block),
            .init(key: "b", maxRunning: 1, onConflict: .discard), .init(key: "b", maxRunning: nil, onConflict: .block),
            .init(key: nil, maxRunning: nil, onConflict: .block), .init(key: "c", maxRunning: 1, onConflict: .block),
        ], free: &free)
        #expect(verdicts == [.ready, .blocked, .discarded, .ready, .ready, .blocked])
        #expect(free == ["a": 0, "b": 0])
    }

    @Test("queue lists and patterns are parsed and checked; a pattern given twice counts once")
    func selections() throws {
        #expect(throws: QueueError.self) { try QueueSelection([]) }
        for bad in ["*mail", "ma*il", "bad queue", "**", ""] {
            let error = #expect(throws: QueueError.self) { try QueueSelection([bad]) }
            #expect(error?.code == .invalidQueue, "\(bad)")
        }
        #expect(try QueueSelection(["a", "b*", "*", "a"]).patterns == [.exact("a"), .prefix("b"), .all])
        #expect(PostgresJobStore.prefixUpperBound("mail_x") == "mail_y" && PostgresJobStore.prefixUpperBound("a9") == "a:")
    }

    @Test("a failure keeps only the last 4 KiB of output, cut at a character boundary")
    func outputTail() {
        let long = String(repeating: "é", count: 3000) + "THE END"
        let kept = JobFailure(errorClass: "CommandFailed", message: "exit 1", output: long).output!
        #expect(kept.utf8.count <= JobFailure.maxOutputBytes)
        #expect(kept.hasSuffix("THE END") && kept.hasPrefix("é"))
    }

    @Test("a batch's error names the job's position only when the batch has several")
    func batchPositions() {
        let error = QueueError(.invalidJob, "class is bad", field: "class")
        #expect(error.about(job: 0, of: 1).message == "class is bad")
        #expect(error.about(job: 2, of: 3).message == "job 3: class is bad")
    }
}
