import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: managing jobs and queues, on every backend")
struct ManagementScenarios {
    static let blockRule = ConcurrencyRule(className: "Blocked", keyTemplate: "k", maxRunning: 1, duration: .seconds(300))

    /// One job in each state: returns their ids by state.
    private func oneOfEach(_ s: any TestStore, at now: Date) throws -> [JobState: Int] {
        try s.syncConcurrencyRules([Self.blockRule])
        let ids = try s.enqueue([
            NewJob("Sched", queue: "a", runAt: now.addingTimeInterval(3600)), NewJob("Ready", queue: "a"),
            NewJob("Claimed", queue: "b"), NewJob("Failed", queue: "b", maxAttempts: 1), NewJob("Finished", queue: "c"),
            NewJob("Blocked", queue: "z"), NewJob("Blocked", queue: "a"),
        ])
        _ = try s.claim(7, ["b", "c"], limit: 3)
        try s.fail(ids[3], by: 7, error: JobFailure(errorClass: "E", message: "broke"))
        try s.finish([ids[4]], by: 7)
        return [.scheduled: ids[0], .ready: ids[1], .claimed: ids[2], .failed: ids[3], .finished: ids[4], .blocked: ids[6]]
    }

    @Test("jobs list shows each job's state and filters by queue, state, class and limit", arguments: Backend.allCases)
    func listJobs(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try oneOfEach(s, at: clock.now)
            let all = try s.list()
            #expect(all.count == 7 && all.map(\.id) == all.map(\.id).sorted(by: >), "newest first")
            for state in JobState.allCases where state != .waiting {
                #expect(try s.list(state: state, className: state == .ready ? "Ready" : nil).map(\.id).contains(ids[state]!), "\(state)")
            }
            #expect(try s.list(queue: "a").count == 3)
            let waiting = try s.enqueue(NewJob("Waiting", queue: "w", after: [ids[.ready]!]))
            #expect(try s.list(state: .waiting).map(\.id) == [waiting])
            #expect(try s.listQueues().first { $0.name == "w" }?.waiting == 1)
            #expect(try s.list(className: "Claimed").map(\.claimedBy) == [7])
            #expect(try s.list(limit: 2).count == 2)
            #expect(try s.list(queue: "b", state: .failed).first?.lastError?.message == "broke")
            #expect(try s.list(state: .scheduled).first?.nextRunAt == clock.now.addingTimeInterval(3600))
            #expect(try s.list().allSatisfy { $0.arguments == nil }, "listings leave arguments out")
            #expect(try s.job(ids[.ready]!)?.arguments == JSON.emptyObject)
            #expect(try s.job(999_999) == nil)
        }
    }

    @Test("failed jobs are retried with fresh attempts and crash counts; anything else is an error that changes nothing",
          arguments: Backend.allCases)
    func retryFailed(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try oneOfEach(s, at: clock.now)
            let failed = ids[.failed]!, claimed = ids[.claimed]!
            let notFailed = #expect(throws: QueueError.self) { try s.retryFailed([failed, claimed]) }
            #expect(notFailed?.code == .wrongState && notFailed?.jobIDs == [claimed])
            #expect(notFailed?.message == "only failed jobs can be retried: job \(claimed) is claimed; nothing was retried")
            let missing = #expect(throws: QueueError.self) { try s.retryFailed([failed, 424242, 424243]) }
            #expect(missing?.code == .jobNotFound && missing?.jobIDs == [424242, 424243])
            #expect(missing?.message == "no job with id 424242, 424243; nothing was retried")
            #expect(try s.state(failed) == .failed, "nothing changed")
            #expect(try s.retryFailed([failed, failed]) == [failed], "an id given twice counts once")
            let info = try #require(try s.job(failed))
            #expect(info.state == .ready && info.attempts == 0 && info.crashes == 0 && info.failedAt == nil)
            #expect(info.lastError?.message == "broke", "the last error stays for the record")
        }
    }

    @Test("only failed jobs can be discarded; discarding deletes the job; an id twice counts once", arguments: Backend.allCases)
    func discardFailed(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try oneOfEach(s, at: clock.now)
            let claimed = #expect(throws: QueueError.self) { try s.discardFailed([ids[.claimed]!]) }
            #expect(claimed?.code == .wrongState)
            #expect(claimed?.message == "only failed jobs can be discarded: job \(ids[.claimed]!) is claimed; nothing was discarded")
            #expect(try s.discardFailed([ids[.failed]!, ids[.failed]!]) == [ids[.failed]!])
            #expect(try s.job(ids[.failed]!) == nil && s.count("failed_executions") == 0)
        }
    }

    @Test("a failed job whose unique key another live job holds is not retried: alone an error, in retry --all left failed",
          arguments: Backend.allCases)
    func retryUniqueConflict(_ backend: Backend) throws {
        try backend.withStore { s in
            let first = try s.enqueue(NewJob("Report", uniqueKey: "day"))
            let plain = try s.enqueue(NewJob("Plain"))
            _ = try s.claim(1, ["*"], limit: 2)
            try s.fail(first, permanent: true)
            try s.fail(plain, permanent: true)
            let second = try s.enqueue(NewJob("Report", uniqueKey: "day"))
            #expect(second != first)
            let error = #expect(throws: QueueError.self) { try s.retryFailed([first, plain]) }
            #expect(error?.code == .wrongState && error?.jobIDs == [first])
            #expect(error?.message == "job \(first) cannot be retried while job \(second) holds its unique key day; finish or discard that one first; nothing was retried")
            #expect(try s.state(plain) == .failed, "nothing was retried")
            #expect(try s.retryAllFailed(batchSize: 1) == 1)
            #expect(try s.state(plain) == .ready && s.state(first) == .failed)
        }
    }

    @Test("retry --all and discard --all work through every failed job in batches", arguments: Backend.allCases)
    func allFailed(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue((0..<7).map { _ in NewJob("F", maxAttempts: 1) })
            _ = try s.claim(1, ["*"], limit: 7)
            for id in ids { try s.fail(id) }
            #expect(try s.retryAllFailed(batchSize: 3) == 7)
            #expect(try s.count("ready_executions") == 7)
            _ = try s.claim(1, ["*"], limit: 7)
            for id in ids { try s.fail(id) }
            #expect(try s.discardAllFailed(batchSize: 3) == 7)
            #expect(try s.count("jobs") == 0)
            #expect(try s.retryAllFailed(batchSize: 3) == 0 && s.discardAllFailed(batchSize: 3) == 0)
        }
    }

    @Test("queues list counts each state per queue, the oldest ready job's age by the store's clock, and pauses",
          arguments: Backend.allCases)
    func listQueues(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            _ = try oneOfEach(s, at: clock.now)
            #expect(try s.pause("idle"))
            clock.advance(by: 90)
            let queues = try s.listQueues()
            #expect(queues.map(\.name) == ["a", "b", "idle", "z"])
            let a = queues[0], b = queues[1], idle = queues[2]
            #expect(a.ready == 1 && a.scheduled == 1 && a.blocked == 1 && a.claimed == 0 && a.failed == 0 && !a.paused)
            #expect(a.oldestReadyAge == 90)
            #expect(b.claimed == 1 && b.failed == 1 && b.ready == 0 && b.oldestReadyAge == nil)
            #expect(idle.paused && idle.ready == 0)
        }
    }

    @Test("a filter's id range bounds listings, counts and bulk actions, by state table or by jobs; bad ranges are refused",
          arguments: Backend.allCases)
    func idRange(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try s.enqueue((0..<12).map { i in try NewJob("Mail", arguments: JSON(validating: #"{"to": "user\#(i)@example.com"}"#), queue: "mail") })
            // ids[0...5] fail, the rest stay ready.
            _ = try s.claim(1, ["mail"], limit: 6)
            for id in ids[0...5] { try s.fail(id, by: 1, error: JobFailure(errorClass: "E", message: "relay refused"), permanent: true) }
            let window = JobFilter(minID: ids[3], maxID: ids[8])
            #expect(try s.findJobs(window, before: nil, limit: 50).jobs.map(\.id) == Array(ids[3...8].reversed()))
            #expect(try s.countJobs(window) == 6)
            var failedInWindow = window
            failedInWindow.state = .failed
            #expect(try s.findJobs(failedInWindow, before: nil, limit: 50).jobs.map(\.id) == [ids[5], ids[4], ids[3]], "the state's table, bounded")
            #expect(try s.countJobs(failedInWindow) == 3 && s.countJobs(failedInWindow, upTo: 2) == 2)
            let page = try s.findJobs(failedInWindow, before: nil, limit: 2)
            #expect(page.jobs.map(\.id) == [ids[5], ids[4]] && page.nextBefore == ids[4])
            #expect(try s.findJobs(failedInWindow, before: ids[4], limit: 2).jobs.map(\.id) == [ids[3]])
            var text = window
            text.text = "user1"  // user1, user10 and user11: jobs outside the range
            #expect(try s.findJobs(text, before: nil, limit: 50).jobs.isEmpty && s.countJobs(text) == 0)
            text.text = "user4@"
            #expect(try s.findJobs(text, before: nil, limit: 50).jobs.map(\.id) == [ids[4]])
            // A bulk action keeps to the range.
            let retried = try s.apply(.retry, to: failedInWindow, batchSize: 2)
            #expect(retried.changed.sorted() == [ids[3], ids[4], ids[5]] && retried.skipped.isEmpty)
            #expect(try s.countJobs(JobFilter(state: .failed)) == 3, "ids[0...2] still failed")
            // The newest jobs, a window at a time.
            #expect(try s.jobWindow(count: 5, from: nil) == ids[7]...ids[11])
            #expect(try s.jobWindow(count: 5, from: ids[6]) == ids[2]...ids[6])
            #expect(try s.jobWindow(count: 100, from: ids[1]) == 1...ids[1], "fewer than asked: down to the first id")
            #expect(try s.jobWindow(count: 5, from: ids[0] - 1) == nil, "no job at or below")
            // Bad ranges say so.
            for (filter, words) in [(JobFilter(minID: 0), "min_id must be a job id"), (JobFilter(maxID: -1), "max_id must be a job id"),
                                    (JobFilter(minID: 9, maxID: 3), "min_id 9 is above max_id 3"),
                                    (JobFilter(state: .failed, minID: 9, maxID: 3), "min_id 9 is above max_id 3")] {
                let error = #expect(throws: QueueError.self) { try s.countJobs(filter) }
                #expect(error?.message.contains(words) == true, "\(String(describing: error?.message))")
                #expect(throws: QueueError.self) { try s.findJobs(filter, before: nil, limit: 5) }
            }
        }
    }

    @Test("clearing a queue deletes its ready and scheduled jobs in batches, not its running or failed ones", arguments: Backend.allCases)
    func clearQueue(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try oneOfEach(s, at: clock.now)
            _ = try s.enqueue((0..<5).map { _ in NewJob("More", queue: "b") })
            let cleared = try s.clear("b", batchSize: 2)
            #expect(cleared.ready == 5 && cleared.scheduled == 0)
            #expect(try s.state(ids[.claimed]!) == .claimed && s.state(ids[.failed]!) == .failed)
            let a = try s.clear("a")
            #expect(a.ready == 1 && a.scheduled == 1, "the blocked job is neither")
            #expect(try s.state(ids[.blocked]!) == .blocked)
            #expect(try s.clear("z") == (ready: 1, scheduled: 0), "a cleared ready job gives its slot")
            #expect(try s.state(ids[.blocked]!) == .ready)
        }
    }
}
