import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Synchronization
import Testing

/// The dashboard's job listing and bulk actions: one filter, keyset pages, batches that skip
/// what changed under them, the same on every backend.
@Suite("Store: finding jobs by filter, page by page, and acting on all of them")
struct FilterScenarios {
    @Test("filters by state, queue, class, time and text in arguments or error; pages by id, newest first", arguments: Backend.allCases)
    func filtersAndPages(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let old = try s.enqueue([NewJob("Mail", arguments: .object(#"{"to": "ann@example.com"}"#), queue: "mail"),
                                     NewJob("Report", arguments: .object(#"{"day": "monday"}"#))])
            clock.advance(by: 60)
            let newer = try s.enqueue((0..<5).map { NewJob("Mail", arguments: .object(#"{"n": \#($0)}"#), queue: "mail") })
            _ = try s.claim(1, ["default"], limit: 1)
            _ = try s.fail(old[1], processID: 1, error: JobFailure(errorClass: "Boom", message: "disk <full>"), permanent: true, maxAttempts: nil, retryPolicy: nil)

            #expect(try s.findJobs(JobFilter(), before: nil, limit: 50).jobs.map(\.id) == (old + newer).reversed())
            #expect(try s.findJobs(JobFilter(queue: "mail", className: "Mail"), before: nil, limit: 50).jobs.count == 6)
            #expect(try s.findJobs(JobFilter(state: .failed), before: nil, limit: 50).jobs.map(\.id) == [old[1]])
            #expect(try s.findJobs(JobFilter(text: "ann@example"), before: nil, limit: 50).jobs.map(\.id) == [old[0]], "in arguments")
            #expect(try s.findJobs(JobFilter(text: "disk <full>"), before: nil, limit: 50).jobs.map(\.id) == [old[1]], "in the error")
            #expect(try s.findJobs(JobFilter(text: "nowhere"), before: nil, limit: 50).jobs.isEmpty)
            let cut = clock.now.addingTimeInterval(-30)
            #expect(try s.findJobs(JobFilter(enqueuedBefore: cut), before: nil, limit: 50).jobs.map(\.id) == old.reversed())
            #expect(try s.findJobs(JobFilter(enqueuedAfter: cut), before: nil, limit: 50).jobs.map(\.id) == newer.reversed())
            #expect(try s.countJobs(JobFilter(queue: "mail")) == 6)
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Sync", keyTemplate: "k", maxRunning: 1, duration: .seconds(60))])
            let keyed = try s.enqueue([NewJob("Sync"), NewJob("Sync")])
            let key = try #require(try s.concurrencyKeys().first?.key)
            #expect(try s.findJobs(JobFilter(state: .blocked, concurrencyKey: key), before: nil, limit: 5).jobs.map(\.id) == [keyed[1]])
            #expect(try s.countJobs(JobFilter(concurrencyKey: key)) == 2)
            #expect(try s.countJobs(JobFilter(concurrencyKey: key + "x")) == 0)

            // Keyset pages of 2 walk every mail job once, newest first, and say when they end.
            var seen: [Int] = []
            var before: Int?
            repeat {
                let page = try s.findJobs(JobFilter(queue: "mail"), before: before, limit: 2)
                seen += page.jobs.map(\.id)
                before = page.nextBefore
            } while before != nil
            #expect(seen == ([old[0]] + newer).reversed())

            let bad = #expect(throws: QueueError.self) { try s.findJobs(JobFilter(queue: "no spaces"), before: nil, limit: 5) }
            #expect(bad?.code == .invalidQueue)
            let long = #expect(throws: QueueError.self) {
                try s.findJobs(JobFilter(text: String(repeating: "x", count: 201)), before: nil, limit: 5)
            }
            #expect(long?.field == "text")
        }
    }

    @Test("a bulk action changes every job the filter matches in batches and skips the ones in another state", arguments: Backend.allCases)
    func bulkActions(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue((0..<7).map { _ in NewJob("Work") })
            _ = try s.claim(1, ["*"], limit: 7)
            for id in ids.prefix(5) {
                _ = try s.fail(id, processID: 1, error: JobFailure(errorClass: "Boom", message: "x"), permanent: true, maxAttempts: nil, retryPolicy: nil)
            }
            try s.finish(Array(ids.suffix(2)))
            #expect(try s.countJobs(JobFilter(state: .failed)) == 5)
            #expect(try s.countJobs(JobFilter(state: .failed), upTo: 3) == 3 && s.countJobs(JobFilter(), upTo: 100) == 7)
            // A state's listing walks its own table: pages of 2 within failed, by id, newest first.
            var seen: [Int] = []
            var before: Int?
            repeat {
                let page = try s.findJobs(JobFilter(state: .failed, className: "Work"), before: before, limit: 2)
                seen += page.jobs.map(\.id)
                before = page.nextBefore
            } while before != nil
            #expect(seen == Array(ids.prefix(5)).reversed())
            let retried = try s.apply(.retry, to: JobFilter(state: .failed), batchSize: 2)
            #expect(retried.changed.sorted() == Array(ids.prefix(5)) && retried.skipped.isEmpty)
            #expect(try s.countJobs(JobFilter(state: .ready)) == 5)
            // Cancel everything of the class: the ready ones go, the finished ones are skipped.
            let cancelled = try s.apply(.cancel, to: JobFilter(className: "Work"), batchSize: 3)
            #expect(cancelled.changed.sorted() == Array(ids.prefix(5)))
            #expect(cancelled.skipped.sorted() == Array(ids.suffix(2)))
            #expect(try s.countJobs(JobFilter()) == 2)
            let wrong = #expect(throws: QueueError.self) { try s.apply(.discard, to: JobFilter(state: .ready), batchSize: 10) }
            #expect(wrong?.code == .wrongState)
            #expect(try s.metrics().count(.cancelled, queue: "default", className: "Work") == 5)
        }
    }

    @Test("bulk cancel: waiting jobs go in one transaction per batch, a ready one's slot goes to its blocked neighbour, running ones are asked to stop",
          arguments: Backend.allCases)
    func bulkCancel(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Sync", keyTemplate: "one", maxRunning: 1, duration: .seconds(600))])
            let keyed = try s.enqueue([NewJob("Sync"), NewJob("Sync")])
            #expect(try s.state(keyed[0]) == .ready && s.state(keyed[1]) == .blocked)
            let later = try s.enqueue(NewJob("Work", runAt: Date().addingTimeInterval(3600)))
            let running = try s.enqueue(NewJob("Work", queue: "busy"))
            _ = try s.claim(1, ["busy"], limit: 1)
            // Only the ready keyed job: its slot passes to the blocked one.
            let first = try s.apply(.cancel, to: JobFilter(minID: keyed[0], maxID: keyed[0]), batchSize: 10)
            #expect(first.changed == [keyed[0]] && first.skipped.isEmpty)
            #expect(try s.job(keyed[0]) == nil && s.state(keyed[1]) == .ready)
            let rest = try s.apply(.cancel, to: JobFilter(), batchSize: 2)
            #expect(rest.changed.sorted() == [keyed[1], later, running].sorted() && rest.skipped.isEmpty, "\(rest)")
            #expect(try s.job(later) == nil && s.cancelRequests(processID: 1) == [running])
            #expect(try s.metrics().count(.cancelled, queue: "default", className: "Sync") == 2)
            #expect(try s.cancelWaiting([running, 999_999]).isEmpty, "neither waits: nothing happens to them")
        }
    }

    @Test("a bulk retry racing two live workers that claim and fail the same jobs: no error on either side, every job in one state, each counted once",
          arguments: Backend.allCases)
    func bulkRacingWorkers(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue((0..<1_500).map { _ in NewJob("Flaky", maxAttempts: 1) })
            let error = JobFailure(errorClass: "E", message: "down")
            // Half failed before the bulk retry starts; the rest the workers fail while it runs.
            for batch in stride(from: 0, to: 750, by: 250) {
                for job in try s.claim(9, ["*"], limit: 250) { _ = try s.fail(job.id, by: 9, error: error, permanent: true) }
                _ = batch
            }
            let gate = Gate()
            let bulkDone = BulkDone()
            let workers = try (1...2).map { worker in
                let store = UncheckedBox(try s.connectAgain())
                return BackgroundWork("worker \(worker)") { () -> Int in
                    gate.wait()
                    var failed = 0
                    var idle = 0
                    // Claim and fail until the bulk retry is over and nothing is left to claim.
                    while !(bulkDone.value && idle >= 20) {
                        let jobs = try store.value.claim(worker, ["*"], limit: 20)
                        if jobs.isEmpty { idle += 1; Thread.sleep(forTimeInterval: 0.002); continue }
                        idle = 0
                        for job in jobs { _ = try store.value.fail(job.id, by: worker, error: error, permanent: true); failed += 1 }
                    }
                    return failed
                }
            }
            let operator_ = UncheckedBox(try s.connectAgain())
            let bulk = BackgroundWork("bulk retry") { () -> BulkOutcome in
                gate.wait()
                defer { bulkDone.value = true }
                return try operator_.value.apply(.retry, to: JobFilter(state: .failed), batchSize: 25)
            }
            gate.open()
            let outcome = try bulk.value(timeout: .seconds(120))
            let failedByWorkers = try workers.map { try $0.value(timeout: .seconds(120)) }.reduce(0, +)
            #expect(Set(outcome.changed).isDisjoint(with: outcome.skipped), "a job both changed and skipped")
            #expect(Set(outcome.changed).count == outcome.changed.count, "a job retried twice in one bulk change")
            #expect(outcome.changed.count >= 1, "\(outcome.changed.count) retried")
            // Every retried job came back and was failed again; nothing is left waiting or held.
            #expect(try s.state(ids[0]) == .failed)
            #expect(try ids.allSatisfy { try s.state($0) == .failed })
            #expect(failedByWorkers == 750 + outcome.changed.count, "the workers failed the other half and every retried job once")
            try s.expectInvariant()
        }
    }

    @Test("a job's page has its arguments, error and each step's time, and the process that runs it", arguments: Backend.allCases)
    func jobDetail(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let id = try s.enqueue(NewJob("Mail", arguments: .object(#"{"to": "<b>ann</b>"}"#), timeout: .seconds(90)))
            let enqueuedAt = clock.now
            #expect(try s.jobDetail(id)?.readySince == enqueuedAt)
            let worker = try s.register(kind: .worker, name: "worker-7", supervisorID: nil, metadata: .emptyObject)
            let workerID = try worker.get("id", as: Int.self)
            clock.advance(by: 5)
            _ = try s.claim(workerID, ["*"], limit: 1)
            let running = try #require(try s.jobDetail(id))
            #expect(running.info.state == .claimed && running.claimedAt == clock.now && running.readySince == nil)
            #expect(running.claimedByName == "worker-7" && running.info.arguments == .object(#"{"to": "<b>ann</b>"}"#))
            #expect(running.scheduledAt == enqueuedAt && running.timeoutSeconds == 90)
            _ = try s.fail(id, processID: workerID, error: JobFailure(errorClass: "Boom", message: "m", output: "last lines"),
                           permanent: true, maxAttempts: nil, retryPolicy: nil)
            let failed = try #require(try s.jobDetail(id))
            #expect(failed.info.state == .failed && failed.info.lastError?.output == "last lines" && failed.claimedAt == nil)
            #expect(try s.jobDetail(999_999) == nil)
        }
    }

    @Test("a recurring task enqueued now runs now, outside its schedule, which keeps its own runs", arguments: Backend.allCases)
    func recurringTaskNow(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.addTask(RecurringTask(key: "nightly", schedule: "@daily", className: "Report", arguments: .object(#"{"kind": "full"}"#)))
            let id = try s.enqueueTaskNow("nightly")
            let job = try #require(try s.job(id))
            #expect(job.state == .ready && job.className == "Report" && job.arguments == .object(#"{"kind": "full"}"#))
            #expect(try s.lastRun(of: "nightly") == nil, "no scheduled run is recorded")
            let missing = #expect(throws: QueueError.self) { try s.enqueueTaskNow("nobody") }
            #expect(missing?.code == .taskNotFound)
        }
    }
}

/// Set once the bulk change of a race is over.
private final class BulkDone: Sendable {
    private let flag = Mutex(false)
    var value: Bool {
        get { flag.withLock { $0 } }
        set { flag.withLock { $0 = newValue } }
    }
}
