import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: finishing and failing, exactly once, on every backend")
struct FinalizeScenarios {
    @Test("finish happens once; a late, repeated or foreign finish is dropped", arguments: Backend.allCases)
    func finish(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let ids = try s.enqueue((0..<5).map { _ in NewJob("Work") })
            let claimed = try s.claim(1, ["default"], limit: 4).map(\.id)
            clock.advance(by: 2)
            let outcome = try s.finish(claimed + [ids[4], claimed[0]])
            #expect(outcome.finished == claimed.sorted())
            #expect(outcome.dropped == [ids[4]], "a job this process never claimed is not finished; an id twice counts once")
            #expect(try s.job(ids[0])?.state == .finished && s.job(ids[0])?.finishedAt == clock.now)
            #expect(try s.state(ids[4]) == .ready)
            let again = try s.finish(claimed)
            #expect(again.finished.isEmpty && again.dropped == claimed.sorted(), "finishing twice does nothing the second time")
            let other = try s.claim(2, ["default"], limit: 1).map(\.id)
            #expect(try s.finish(other, by: 1).dropped == other, "another process's claim is not ours to finish")
            #expect(try s.finish([]).finished.isEmpty)
        }
    }

    @Test("with preserve_finished_jobs false, finishing deletes the job", arguments: Backend.allCases)
    func finishDeletes(_ backend: Backend) throws {
        try backend.withStore(preserveFinishedJobs: false) { s in
            _ = try s.enqueue([NewJob("Work"), NewJob("Work")])
            let claimed = try s.claim(1, ["*"], limit: 1).map(\.id)
            #expect(try s.finish(claimed).finished == claimed)
            #expect(try s.count("jobs") == 1 && s.job(claimed[0]) == nil)
        }
    }

    @Test("a failed attempt is retried after the backoff, by the store's clock, as the same job row, until attempts run out",
          arguments: Backend.allCases)
    func retriesThenFails(_ backend: Backend) throws {
        let policy = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0.5)
        let clock = ManualClock()
        try backend.withStore(retryPolicy: policy, clock: clock.storeClock) { s in
            let id = try s.enqueue(NewJob("Flaky", maxAttempts: 3))
            let error = JobFailure(errorClass: "CommandFailed", message: "exit 1", exitStatus: 1, output: "boom")
            for attempt in 1...3 {
                let job = try #require(try s.claim(1, ["default"], limit: 1).first)
                #expect(job.id == id && job.attempt == attempt)
                let outcome = try s.fail(id, error: error)
                try s.expectInvariant()
                let info = try #require(try s.job(id))
                var stored = try #require(info.lastError)
                #expect(info.attempts == attempt)
                if attempt < 3 {
                    // The delay the policy computed is kept with the error, for drover jobs show.
                    #expect(stored.backoff == "exponential backoff, base 5s, max 1m, jitter 0.5")
                    #expect(stored.retryIn.map { abs($0 - ((info.nextRunAt ?? .distantPast).timeIntervalSince(clock.now))) < 0.002 } == true,
                            "retry_in \(String(describing: stored.retryIn)) is not the wait until the next run")
                }
                stored.retryIn = nil
                stored.backoff = nil
                #expect(stored == error)
                if attempt < 3 {
                    guard case .retryScheduled(let at, let attempts) = outcome else {
                        Issue.record("attempt \(attempt): expected a retry, got \(outcome)")
                        return
                    }
                    #expect(attempts == attempt && info.state == .scheduled && info.nextRunAt == at)
                    let delay = at.timeIntervalSince(clock.now)
                    #expect(policy.delayBounds(afterFailedAttempts: attempt).contains(delay), "attempt \(attempt): \(delay) s")
                    clock.advance(by: delay - 0.001)
                    #expect(try s.dispatchDue() == 0, "not before its time")
                    clock.advance(by: 0.001)
                    #expect(try s.dispatchDue() == 1, "due at its time")
                } else {
                    #expect(outcome == .failed(attempts: 3))
                    #expect(info.state == .failed && info.failedAt == clock.now)
                    let stored = try s.sql("SELECT error FROM \(s.table("failed_executions"))")[0]
                        .decode("error", as: JSON.self).decode(JobFailure.self)
                    #expect(stored == error)
                }
            }
        }
    }

    @Test("a handler's retry policy wins over the store's: fixed, polynomial and exponential delays, each within its bounds",
          arguments: Backend.allCases)
    func handlerRetryPolicy(_ backend: Backend) throws {
        let clock = ManualClock()
        let storeDefault = RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0)
        try backend.withStore(retryPolicy: storeDefault, clock: clock.storeClock) { s in
            let policies: [(RetryPolicy, [Double])] = [
                (RetryPolicy(backoff: .fixed, baseDelay: .seconds(30), maxDelay: .seconds(30), jitter: 0), [30, 30, 30]),
                (RetryPolicy(backoff: .polynomial, baseDelay: .seconds(1), maxDelay: .seconds(60), jitter: 0), [1, 16, 60]),
                (RetryPolicy(backoff: .exponential, baseDelay: .milliseconds(500), maxDelay: .seconds(3600), jitter: 0), [0.5, 1, 2]),
            ]
            for (policy, delays) in policies {
                let id = try s.enqueue(NewJob("Flaky", maxAttempts: 10))
                for (n, expected) in delays.enumerated() {
                    _ = try #require(try s.claim(1, ["*"], limit: 1).first { $0.id == id })
                    guard case .retryScheduled(let at, let attempts) = try s.fail(id, retryPolicy: policy) else {
                        Issue.record("\(policy.backoff) attempt \(n + 1): no retry")
                        return
                    }
                    #expect(attempts == n + 1)
                    #expect(abs(at.timeIntervalSince(clock.now) - expected) < 0.002, "\(policy): after \(n + 1) failures, \(at.timeIntervalSince(clock.now)) s")
                    #expect(try s.job(id)?.lastError?.backoff == policy.description)
                    clock.advance(by: expected)
                    #expect(try s.dispatchDue() == 1)
                }
                _ = try s.claim(1, ["*"], limit: 1)
                try s.finish([id])
            }
            // Without one, the store's.
            let id = try s.enqueue(NewJob("Flaky"))
            _ = try s.claim(1, ["*"], limit: 1)
            guard case .retryScheduled(let at, _) = try s.fail(id) else { Issue.record("no retry"); return }
            #expect(abs(at.timeIntervalSince(clock.now) - 5) < 0.002)
        }
    }

    @Test("a snooze puts the job back after its delay without spending an attempt, frees its concurrency slot, and past max_snoozes counts as a failed attempt",
          arguments: Backend.allCases)
    func snooze(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(retryPolicy: RetryPolicy(baseDelay: .seconds(5), maxDelay: .seconds(60), jitter: 0), clock: clock.storeClock) { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Polite", keyTemplate: "api", maxRunning: 1, duration: .seconds(300))])
            let id = try s.enqueue(NewJob("Polite", maxAttempts: 2))
            for n in 1...2 {
                let job = try #require(try s.claim(1, ["*"], limit: 1).first)
                #expect(job.id == id && job.attempt == 1, "a snooze spends no attempt")
                let waiting = try s.enqueue(NewJob("Polite"))
                #expect(try s.state(waiting) == .blocked, "one slot for the key: another job waits")
                let outcome = try s.snooze(id, for: .seconds(30), maxSnoozes: 2)
                #expect(outcome == .snoozed(at: clock.now.addingTimeInterval(30), snoozes: n))
                try s.expectInvariant()
                let info = try #require(try s.job(id))
                #expect(info.state == .scheduled && info.attempts == 0 && info.snoozes == n && info.lastError == nil)
                #expect(try s.state(waiting) == .ready, "snoozing gave the concurrency slot back")
                _ = try s.claim(2, ["*"], limit: 1)
                try s.finish([waiting], by: 2)
                clock.advance(by: 29.999)
                #expect(try s.dispatchDue() == 0, "not before the delay")
                clock.advance(by: 0.001)
                #expect(try s.dispatchDue() == 1)
            }
            // A third snooze is over the limit: a failed attempt, retried by the policy.
            _ = try #require(try s.claim(1, ["*"], limit: 1).first { $0.id == id })
            guard case .overLimit(.retryScheduled(_, let attempts)) = try s.snooze(id, for: .seconds(30), maxSnoozes: 2) else {
                Issue.record("a snooze past the limit was not a failure")
                return
            }
            #expect(attempts == 1)
            let info = try #require(try s.job(id))
            #expect(info.lastError?.errorClass == SnoozeRules.limitClass && info.snoozes == 2 && info.attempts == 1)
            // Two snoozes counted for /metrics; the one past the limit counted as retried instead.
            let metrics = try s.metrics()
            #expect(metrics.count(.snoozed, queue: "default", className: "Polite") == 2)
            #expect(metrics.count(.retried, queue: "default", className: "Polite") == 1)
            #expect(info.lastError?.message.contains("max_snoozes") == true)

            // A snooze of a job this process does not hold is dropped; a delay out of range is refused.
            #expect(try s.snooze(id, by: 7, for: .seconds(1)) == .dropped)
            #expect(throws: QueueError.self) { try s.snooze(id, for: .zero) }
            #expect(throws: QueueError.self) { try s.snooze(id, for: .seconds(31 * 86_400)) }
            try s.expectInvariant()
        }
    }

    @Test("failing for good enqueues the class's on_failure job (or every class's) in the same transaction, with the failed job's id, class, queue, arguments, attempts and error; retries, hooks' own jobs and (unless asked) cancellations do not",
          arguments: Backend.allCases)
    func failureHooks(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncFailureHooks([
                FailureHook(className: "Invoice", hookClass: "NotifyBilling", includeCancelled: true),
                FailureHook(className: FailureHook.everyClass, hookClass: "NotifyOps"),
            ])
            #expect(try s.failureHooks().map(\.hookClass) == ["NotifyOps", "NotifyBilling"], "* sorts first")
            func hookJobs() throws -> [(className: String, arguments: [String: Any])] {
                try s.listJobs(queue: nil, state: .ready, className: nil, limit: 100)
                    .filter { $0.className.hasPrefix("Notify") }.sorted { $0.id < $1.id }
                    .map { info in
                        let text = try #require(try s.job(info.id)?.arguments?.text)
                        return (info.className, try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]))
                    }
            }
            let invoice = try s.enqueue(NewJob("Invoice", arguments: try JSON(encoding: ["order": 7]), queue: "billing", maxAttempts: 2))
            let error = JobFailure(errorClass: "CommandFailed", message: "exit 3", exitStatus: 3, output: "no route to host\n")
            // A failure with attempts left is retried: no hook yet.
            _ = try s.claim(1, ["billing", "work"], limit: 1)
            #expect(try s.fail(invoice, error: error) != .failed(attempts: 1))
            #expect(try hookJobs().isEmpty)
            // Out of attempts: its class's hook, once.
            try s.sql("UPDATE \(s.table("scheduled_executions")) SET scheduled_at = \(Date(timeIntervalSince1970: 0))")
            _ = try s.dispatchDue()
            _ = try s.claim(1, ["billing", "work"], limit: 1)
            #expect(try s.fail(invoice, error: error) == .failed(attempts: 2))
            var hooks = try hookJobs()
            #expect(hooks.map(\.className) == ["NotifyBilling"])
            let first = try #require(hooks.first?.arguments)
            #expect(first["job_id"] as? Int == invoice && first["class"] as? String == "Invoice" && first["queue"] as? String == "billing")
            #expect((first["arguments"] as? [String: Any])?["order"] as? Int == 7 && first["attempts"] as? Int == 2)
            #expect(first["crashes"] as? Int == 0 && first["cancelled"] as? Bool == false)
            let stored = try #require(first["error"] as? [String: Any])
            #expect(stored["class"] as? String == "CommandFailed" && stored["exit_status"] as? Int == 3 && stored["output"] as? String == "no route to host\n")

            // A permanent failure of another class: every class's hook. A crash limit too.
            let report = try s.enqueue(NewJob("Report", queue: "work"))
            _ = try s.claim(1, ["billing", "work"], limit: 1)
            _ = try s.fail(report, error: error, permanent: true)
            let crasher = try s.enqueue(NewJob("Crasher", queue: "work"))
            _ = try s.claim(2, ["billing", "work"], limit: 1)
            let released = try s.release(2, reason: .crashed(JobFailure(errorClass: "WorkerCrashed", message: "SIGKILL"), maxCrashes: 1))
            #expect(released.failed == [crasher])
            hooks = try hookJobs()
            #expect(hooks.map(\.className) == ["NotifyBilling", "NotifyOps", "NotifyOps"])
            #expect(hooks[1].arguments["job_id"] as? Int == report && hooks[2].arguments["job_id"] as? Int == crasher)
            #expect(hooks[2].arguments["crashes"] as? Int == 1)

            // Cancelled while it ran: only a hook that asked for cancellations hears of it.
            let cancelledInvoice = try s.enqueue(NewJob("Invoice", queue: "work"))
            let cancelledReport = try s.enqueue(NewJob("Report", queue: "work"))
            _ = try s.claim(1, ["billing", "work"], limit: 2)
            for id in [cancelledInvoice, cancelledReport] {
                _ = try s.fail(id, error: JobFailure(errorClass: JobFailure.cancelledClass, message: "cancelled"), permanent: true)
            }
            hooks = try hookJobs()
            #expect(hooks.count == 4 && hooks[3].arguments["job_id"] as? Int == cancelledInvoice && hooks[3].arguments["cancelled"] as? Bool == true)

            // A hook's own job that fails for good enqueues nothing more.
            let hookJob = try #require(try s.listJobs(queue: nil, state: .ready, className: "NotifyOps", limit: 1).first?.id)
            let before = try s.count("jobs")
            let notices = try s.claim(4, ["default"], limit: 10).map(\.id)
            #expect(notices.contains(hookJob))
            _ = try s.fail(hookJob, by: 4, error: error, permanent: true)
            #expect(try s.count("jobs") == before, "no hook for a hook of its own class")
            try s.release(4, reason: .graceful)

            // Rolled back with the failure: a failure and its hook commit together or not at all.
            let rolled = try s.enqueue(NewJob("Report", queue: "work"))
            _ = try s.claim(1, ["billing", "work"], limit: 1)
            struct Abort: Error {}
            #expect(throws: Abort.self) {
                try s.withTransaction {
                    _ = try s.fail(rolled, error: error, permanent: true)
                    throw Abort()
                }
            }
            #expect(try s.count("jobs") == before + 1 && s.state(rolled) == .claimed)
            _ = try s.fail(rolled, error: error, permanent: true)
            #expect(try s.count("jobs") == before + 2)

            // Arguments too large to carry beside the rest are left out, and the failure is stored.
            let big = try s.enqueue(NewJob("Report", arguments: try JSON(encoding: ["blob": String(repeating: "x", count: 1_040_000)]), queue: "work"))
            _ = try s.claim(3, ["billing", "work"], limit: 10)
            #expect(try s.fail(big, by: 3, error: error, permanent: true) == .failed(attempts: 1))
            let last = try #require(try hookJobs().last)
            #expect(last.arguments["job_id"] as? Int == big && last.arguments["arguments_omitted"] as? Bool == true && last.arguments["arguments"] == nil)

            // The hooks follow the configuration: synced again, the ones left out are gone.
            try s.syncFailureHooks([FailureHook(className: "Report", hookClass: "NotifyOps")])
            #expect(try s.failureHooks() == [FailureHook(className: "Report", hookClass: "NotifyOps")])
            #expect(throws: QueueError.self) { try s.syncFailureHooks([FailureHook(className: "Report", hookClass: "not a class")]) }
            try s.expectInvariant()
        }
    }

    @Test("a permanent failure goes to failed at once; a late failure is dropped", arguments: Backend.allCases)
    func permanentAndLate(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("A"), NewJob("B")])
            _ = try s.claim(1, ["default"], limit: 2)
            let failure = JobFailure(errorClass: "CommandFailed", message: "exit 100: permanent", exitStatus: 100)
            #expect(try s.fail(ids[0], error: failure, permanent: true) == .failed(attempts: 1))
            try s.release(1)
            #expect(try s.fail(ids[1], error: failure) == .dropped)
            #expect(try s.fail(ids[0], error: failure) == .dropped, "a failed job is claimed by nobody")
            let info = try #require(try s.job(ids[1]))
            #expect(info.state == .ready && info.attempts == 0 && info.lastError == nil)
        }
    }

    @Test("a failure whose message and output hold NUL is stored, with NUL escaped, never refused (PostgreSQL: SQLSTATE 22P05)", arguments: Backend.allCases)
    func failureWithNUL(_ backend: Backend) throws {
        try backend.withStore { s in
            let id = try s.enqueue([NewJob("A")])[0]
            _ = try s.claim(1, ["default"], limit: 1)
            let failure = JobFailure(errorClass: "Odd\0Class", message: "printed a\0b", exitStatus: 1, output: "x\0y\nz")
            #expect(try s.fail(id, error: failure, permanent: true) == .failed(attempts: 1))
            let stored = try #require(try s.job(id)?.lastError)
            #expect(stored.errorClass == "Odd\\x00Class" && stored.message == "printed a\\x00b" && stored.output == "x\\x00y\nz")
        }
    }

    @Test("a handler's max_attempts replaces the job's", arguments: Backend.allCases)
    func handlerMaxAttempts(_ backend: Backend) throws {
        try backend.withStore { s in
            let id = try s.enqueue(NewJob("Once", maxAttempts: 5))
            _ = try s.claim()
            #expect(try s.fail(id, maxAttempts: 1) == .failed(attempts: 1))
            #expect(try s.job(id)?.maxAttempts == 1)
        }
    }

    @Test("a finish racing a release on another connection: the job ends finished or ready, never both, never lost",
          arguments: Backend.allCases)
    func finishRacesRelease(_ backend: Backend) throws {
        try backend.withStore { s in
            let finisher = UncheckedBox(try s.connectAgain())
            let releaser = UncheckedBox(try s.connectAgain())
            var outcomes: [Bool] = []
            for _ in 0..<40 {
                let id = try s.enqueue(NewJob("Race"))
                _ = try s.claim(9, ["default"], limit: 1)
                let gate = Gate()
                let finish = BackgroundWork { () -> FinishOutcome in
                    gate.wait()
                    return try finisher.value.finish([id], by: 9)
                }
                let release = BackgroundWork { () -> ReleaseOutcome in
                    gate.wait()
                    return try releaser.value.release(9)
                }
                gate.open()
                let finished = try finish.value(timeout: .seconds(30)).finished == [id]
                let released = try release.value(timeout: .seconds(30)).released == [id]
                #expect(finished != released, "exactly one of them acted on job \(id)")
                #expect(try s.state(id) == (finished ? .finished : .ready))
                outcomes.append(finished)
                if !finished {
                    _ = try s.claim(10, ["default"], limit: 1)
                    try s.finish([id], by: 10)
                }
            }
            #expect(outcomes.count == 40)
        }
    }
}

@Suite("Store: releasing claimed jobs, on every backend")
struct ReleaseScenarios {
    @Test("a graceful release puts jobs back in ready with no counter changed", arguments: Backend.allCases)
    func graceful(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue([NewJob("A", queue: "q1"), NewJob("B", queue: "q2"), NewJob("C", queue: "q2")])
            let claimed = try s.claim(3, ["*"], limit: 3).map(\.id)
            #expect(try s.release(3) == ReleaseOutcome(released: claimed.sorted(), failed: []))
            for id in claimed {
                let info = try #require(try s.job(id))
                #expect(info.state == .ready && info.attempts == 0 && info.crashes == 0 && info.lastError == nil)
            }
            #expect(try s.release(3) == ReleaseOutcome(released: [], failed: []), "nothing left to release")
        }
    }

    @Test("a crash counts against each job; at max_crashes the job fails with the crash as its error", arguments: Backend.allCases)
    func crashes(_ backend: Backend) throws {
        try backend.withStore { s in
            let id = try s.enqueue(NewJob("Poison"))
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "the worker died (signal 9)", signal: 9)
            for round in 1...3 {
                _ = try s.claim(round, ["default"], limit: 1)
                let outcome = try s.release(round, reason: .crashed(crash, maxCrashes: 3))
                let info = try #require(try s.job(id))
                #expect(info.crashes == round && info.attempts == 0)
                #expect(info.lastError?.errorClass == "WorkerCrashed" && info.lastError?.signal == 9)
                if round < 3 {
                    #expect(outcome == ReleaseOutcome(released: [id], failed: []) && info.state == .ready)
                } else {
                    #expect(outcome == ReleaseOutcome(released: [], failed: [id]) && info.state == .failed)
                }
                try s.expectInvariant()
            }
            let stored = try s.sql("SELECT error FROM \(s.table("failed_executions"))")[0].decode("error", as: JSON.self)
            struct Counted: Decodable { let crashes: Int; let signal: Int }
            #expect(try stored.decode(Counted.self).crashes == 3)
        }
    }

    @Test("a release can name the jobs it gives back (an id twice counts once); the others stay claimed", arguments: Backend.allCases)
    func releaseSome(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue((0..<3).map { _ in NewJob("W") })
            let claimed = try s.claim(5, ["default"], limit: 3).map(\.id)
            #expect(try s.release(5, jobs: [claimed[1], claimed[1]]).released == [claimed[1]])
            #expect(try s.claimedJobIDs(processID: 5) == [claimed[0], claimed[2]].sorted())
        }
    }
}
