import Drover
import DroverQueue
import DroverTestSupport
import DroverTesting
import Foundation
import Testing

@Suite("Testing an app's jobs: a JobContext built by hand")
struct JobContextTests {
    @Test("a job's perform runs directly with a context built by hand, and gets its services")
    func performDirectly() async throws {
        let ledger = Ledger()
        try await Charge(account: "ada", cents: 500).perform(JobContext(for: Charge.self, jobID: 42, attempt: 2, services: ledger))
        #expect(ledger.all == ["charge ada 500 job 42 attempt 2"])
        let context = JobContext(jobID: 7, queue: "mail", className: "SendWelcomeEmail")
        #expect(context.jobID == 7 && context.attempt == 1 && context.maxAttempts == 5 && context.queue == "mail")
        #expect(context.className == "SendWelcomeEmail" && !context.isCancelled && context.stopReason == nil)
        let typed = JobContext(for: Charge.self)
        #expect(typed.className == "Charge" && typed.queue == "billing")
    }

    @Test("services of another type, or none, throw an error naming the type asked for and the type there is")
    func wrongServices() async throws {
        let wrong = await #expect(throws: ServicesError.self) {
            try await Charge(account: "ada", cents: 1).perform(JobContext(for: Charge.self, jobID: 3, services: OtherServices()))
        }
        #expect(wrong?.code == .wrongType)
        #expect(wrong?.description == "job 3 (Charge) asked for services of type DroverTestingTests.Ledger, but its worker's "
                + "services are of type DroverTestingTests.OtherServices: ask for that type, or have Drover.main(jobs:services:) build a Ledger")
        let missing = await #expect(throws: ServicesError.self) {
            try await Charge(account: "ada", cents: 1).perform(JobContext(for: Charge.self, jobID: 4))
        }
        #expect(missing?.code == .missing && missing?.actual == nil)
        #expect(missing?.description.contains("asked for services of type DroverTestingTests.Ledger, but its worker has none") == true)
        #expect(missing?.description.contains("services: { try await Ledger() }") == true)
    }

    @Test("isCancelled is its task's: cancelling the task that performs the job stops it")
    func cancellationFromTheTask() async throws {
        let task = Task { try await Patient().perform(JobContext(for: Patient.self)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }
}

@Suite("Testing an app's jobs: running enqueued jobs to completion in the test (JobDrain), on every backend")
struct JobDrainTests {
    @Test("enqueued jobs run in claim order with the test's services, and are finished in the store", arguments: Backend.allCases)
    func runsToCompletion(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let ids = try queue.enqueue(Charge(account: "ada", cents: 100), Charge(account: "bob", cents: 200), Charge(account: "cy", cents: 300))
            let ledger = Ledger()
            let summary = try await queue.drain([Charge.self], services: ledger)
            #expect(summary.finished == ids && summary.failures.isEmpty && summary.unfinished.isEmpty, "\(summary)")
            #expect(ledger.all == zip(["ada 100", "bob 200", "cy 300"], ids).map { "charge \($0) job \($1) attempt 1" })
            for id in ids { #expect(try queue.job(id)?.state == .finished) }
            // Nothing left: a second drain runs nothing.
            #expect(try await queue.drain([Charge.self], services: ledger).attempts.isEmpty)
        }
    }

    @Test("a failed attempt is retried through the store's backoff, run at once: the drain's clock skips the wait", arguments: Backend.allCases)
    func retriesImmediately(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let id = try queue.enqueue(Flaky(succeedOn: 3))[0]
            let ledger = Ledger()
            let started = ContinuousClock.now
            let summary = try await queue.drain([Flaky.self], services: ledger)
            let elapsed = ContinuousClock.now - started
            #expect(ledger.all == ["flaky 1", "flaky 2", "flaky 3"])
            #expect(summary.attempts.map(\.attempt) == [1, 2, 3] && summary.finished == [id], "\(summary)")
            let failures = summary.failures
            #expect(failures.map(\.errorClass) == ["Declined", "Declined"] && failures.map(\.error) == ["declined on attempt 1", "declined on attempt 2"])
            guard case .willRetry(let first) = failures[0].outcome, case .willRetry(let second) = failures[1].outcome else {
                Issue.record("\(summary)")
                return
            }
            #expect(second.timeIntervalSince(first) >= 7.5, "the second backoff (10 s less up to a quarter) came after the first")
            // The drain waits for nothing: its clock moved past both backoffs (5 s and 10 s, less up
            // to a quarter), what real time had not covered.
            #expect(summary.skipped > .zero && summary.skipped + elapsed >= .milliseconds(11_250), "\(summary), \(elapsed)")
            let job = try #require(try queue.job(id))
            #expect(job.state == .finished && job.attempts == 2 && job.lastError?.message == "declined on attempt 2")
        }
    }

    @Test("a Swift job that throws Snooze runs again after the delay without spending its attempt; past maxSnoozes the snooze fails it",
          arguments: Backend.allCases)
    func snoozes(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let ids = try queue.enqueue(AwaitReport(readyAfter: 2), AwaitReport(readyAfter: 5))
            let summary = try await queue.drain([AwaitReport.self], services: Ledger())
            let first = summary.attempts.filter { $0.jobID == ids[0] }
            #expect(first.map(\.attempt) == [1, 1, 1], "a snooze spends no attempt: \(summary)")
            guard case .snoozed(let until) = first[0].outcome, case .snoozed(let later) = first[1].outcome else {
                Issue.record("\(summary)")
                return
            }
            #expect(later.timeIntervalSince(until) >= 30, "each snooze waits its 30 s (on the drain's clock)")
            #expect(first[2].outcome == .finished && summary.finished == [ids[0]])
            let finished = try #require(try queue.job(ids[0]))
            #expect(finished.snoozes == 2 && finished.attempts == 0)
            // The second never gets ready: its third snooze is over the limit, a failed attempt, its only one.
            let second = summary.attempts.filter { $0.jobID == ids[1] }
            #expect(second.count == 3 && second.last?.outcome == .failed && second.last?.errorClass == "SnoozeLimit", "\(summary)")
            let failed = try #require(try queue.job(ids[1]))
            #expect(failed.state == .failed && failed.snoozes == 2 && failed.attempts == 1)
        }
    }

    @Test("a Swift job type's retryPolicy sets its waits, not the worker's default", arguments: Backend.allCases)
    func typeRetryPolicy(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let id = try queue.enqueue(Stubborn())[0]
            let summary = try await queue.drain([Stubborn.self], services: Ledger())
            guard case .willRetry(let first) = summary.attempts[0].outcome, case .willRetry(let second) = summary.attempts[1].outcome else {
                Issue.record("\(summary)")
                return
            }
            // The second wait counts from the second failure: the real time the second attempt took
            // (seconds on a loaded machine) comes on top of the 600 s. An exponential curve with this
            // base would put 1,200 s between them; the worker's default, a few seconds.
            let gap = second.timeIntervalSince(first)
            #expect(gap >= 599.99 && gap < 660, "fixed 10-minute waits: \(first) then \(second)")
            #expect(summary.failed == [id] && summary.attempts.count == 3, "\(summary)")
            #expect(summary.skipped >= .seconds(1199), "the drain's clock skipped both waits: \(summary.skipped)")
        }
    }

    @Test("a ResultJob's return value is kept; a job waiting for it reads it; the batch's callback runs once, last", arguments: Backend.allCases)
    func resultsAndBatches(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            var measured: [Int] = []
            var total = 0
            let batch = try queue.withBatch(NewBatch(description: "album", onComplete: AlbumDone.className)) { batch in
                measured = try ["a.jpg", "bb.jpg"].map { try queue.enqueue(Measure(photo: $0), batch: batch) }
                total = try queue.enqueue(Total(), after: measured, batch: batch)
            }
            #expect(try queue.job(total)?.state == .waiting)
            let ledger = Ledger()
            let summary = try await queue.drain([Measure.self, Total.self, AlbumDone.self], services: ledger)
            #expect(summary.failures.isEmpty, "\(summary)")
            #expect(ledger.all == ["total 1100 of 2 in batch \(batch)", "batch \(batch) complete: 3 finished"])
            #expect(try queue.job(measured[1])?.result?.text == "600")
            #expect(try queue.batch(batch)?.completeJobID != nil)
            // What the callback reads: the batch's jobs with their results.
            let members = try queue.batchJobs(batch)
            #expect(members.map(\.id) == measured + [total] && members.allSatisfy { $0.state == .finished })
            #expect(try members.compactMap { try $0.result?.decode(Int.self) } == [500, 600])
            // A batch that gets no job is not written.
            #expect(throws: QueueError.self) { try queue.withBatch(NewBatch(onComplete: "X")) { _ in } }
        }
    }

    @Test("stopAtFirstFailure ends the drain at the first failed attempt, its retry left scheduled", arguments: Backend.allCases)
    func stopsAtFirstFailure(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let ids = try queue.enqueue(Flaky(succeedOn: 2), Charge(account: "ada", cents: 1))
            let summary = try await queue.drain([Flaky.self, Charge.self], services: Ledger(), retries: .stopAtFirstFailure)
            #expect(summary.stoppedAtFailure && summary.attempts.count == 1 && summary.finished.isEmpty, "\(summary)")
            #expect(summary.failures.first?.error == "declined on attempt 1")
            #expect(summary.unfinished == ids)
            #expect(try queue.job(ids[0])?.state == .scheduled && queue.job(ids[1])?.state == .ready)
            let retryAt = try #require(try queue.job(ids[0])?.nextRunAt)
            // Left scheduled, the retry waits out its backoff (the drain's clock does not skip it);
            // the rest runs.
            let rest = try await queue.drain([Flaky.self, Charge.self], services: Ledger(), retries: .leaveScheduled)
            #expect(rest.finished.first == ids[1] && rest.skipped == .zero, "\(rest)")
            // Unless the backoff (3.75 to 5 s) passed in real time meanwhile, as it can on a loaded
            // machine (the whole suite on 2 cores), the retry is still waiting.
            if Date() < retryAt {
                #expect(rest.finished == [ids[1]] && rest.unfinished == [ids[0]], "\(rest)")
            }
        }
    }

    @Test("permanent failures, exhausted attempts, timeouts and unknown classes fail as in a worker, with their errors", arguments: Backend.allCases)
    func failures(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let refund = try queue.enqueue(Refund())[0]
            let flaky = try queue.enqueue(Flaky(succeedOn: 10))[0]
            let slow = try queue.enqueue(Slow())[0]
            let unknown = try queue.enqueue(Charge(account: "ada", cents: 1))[0]
            let summary = try await queue.drain([Refund.self, Flaky.self, Slow.self], services: Ledger())
            #expect(summary.failed.sorted() == [refund, flaky, slow, unknown].sorted() && summary.finished.isEmpty, "\(summary)")
            let byJob = Dictionary(grouping: summary.failures, by: \.jobID)
            #expect(byJob[refund]?.map(\.errorClass) == ["PermanentJobFailure"] && byJob[refund]?[0].error == "the account is closed")
            #expect(byJob[flaky]?.count == Flaky.maxAttempts && byJob[flaky]?.last?.outcome == .failed)
            #expect(byJob[slow]?.first?.errorClass == "Timeout")
            #expect(byJob[slow]?.first?.error == "Slow ran longer than its timeout of 1s and was cancelled")
            #expect(byJob[unknown]?.map(\.errorClass) == ["UnknownJobClass"])
            #expect(byJob[unknown]?[0].error?.contains("no handler for class Charge; this worker knows Flaky, Refund, Slow") == true)
            #expect(try queue.job(flaky)?.lastError?.message == "declined on attempt 4")
            #expect(try queue.job(refund)?.state == .failed)
        }
    }

    @Test("jobs enqueued to run later stay unless runScheduledJobs moves the clock to them", arguments: Backend.allCases)
    func scheduledJobs(_ backend: Backend) async throws {
        try await backend.withQueue { queue in
            let id = try queue.enqueue(Charge(account: "now", cents: 1))[0]
            let scheduled = try queue.enqueue(Charge(account: "tomorrow", cents: 2), in: .seconds(86_400))
            let ledger = Ledger()
            let first = try await queue.drain([Charge.self], services: ledger)
            #expect(first.finished == [id] && first.unfinished == [scheduled], "\(first)")
            let second = try await queue.drain([Charge.self], services: ledger, runScheduledJobs: true)
            #expect(second.finished == [scheduled] && second.unfinished.isEmpty, "\(second)")
        }
    }

    @Test("a drain that goes on past its attempt limit throws, naming the job")
    func attemptLimit() async throws {
        let database = try TemporaryJobDatabase()
        try database.connection.enqueue([Charge(account: "a", cents: 1), Charge(account: "b", cents: 2)])
        let error = await #expect(throws: DrainError.self) {
            try await database.drain(jobs: [Charge.self], services: Ledger(), attemptLimit: 1)
        }
        #expect(error?.code == .attemptLimit && error?.description.contains("job 2 (Charge) is still ready") == true, "\(String(describing: error))")
    }
}
