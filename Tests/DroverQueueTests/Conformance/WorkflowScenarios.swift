import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// JSON compared as values: PostgreSQL's jsonb gives back its own spacing.
func canonical(_ json: JSON?) -> String? {
    guard let json, let value = try? JSONSerialization.jsonObject(with: Data(json.text.utf8), options: .fragmentsAllowed),
          let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]) else { return json?.text }
    return String(decoding: data, as: UTF8.self)
}

extension Array where Element == Dependency {
    /// Each as (job, outcome, canonical result).
    var canonical: [String] { map { "\($0.jobID) \($0.outcome?.rawValue ?? "-") \(DroverQueueTests.canonical($0.result) ?? "-")" } }
}

@Suite("Store: jobs that wait for other jobs, on every backend")
struct DependencyScenarios {
    @Test("a job waits until every job it waits for finished, then is ready, with their results", arguments: Backend.allCases)
    func waitsForAll(_ backend: Backend) throws {
        try backend.withStore { s in
            let (a, b) = (try s.enqueue(NewJob("Resize")), try s.enqueue(NewJob("Resize")))
            let zip = try s.enqueue(NewJob("Zip", after: [a, b]))
            #expect(try s.state(zip) == .waiting)
            #expect(try s.claim(1).map(\.id) == [a, b], "a waiting job is not claimed")
            try s.finish([a], processID: 1, results: [a: .object(#"{"path":"/t/a.jpg"}"#)])
            #expect(try s.state(zip) == .waiting, "one of two finished")
            #expect(try s.dependencies(of: zip).canonical == [#"\#(a) finished {"path":"\/t\/a.jpg"}"#, "\(b) - -"])
            try s.finish([b])
            #expect(try s.state(zip) == .ready)
            #expect(canonical(try s.job(a)?.result) == canonical(.object(#"{"path":"/t/a.jpg"}"#)), "the result is kept with the job")
            let claimed = try s.claim(1)
            #expect(claimed.map(\.id) == [zip])
            // What a command reads on stdin: its arguments, with what became of the jobs it waited for.
            #expect(canonical(claimed.first?.arguments) == canonical(.object("""
                {"drover_dependencies":[{"job_id":\(a),"outcome":"finished","result":{"path":"/t/a.jpg"}},{"job_id":\(b),"outcome":"finished"}]}
                """)))
        }
    }

    @Test("a job waiting for one that already finished runs at once; one enqueued for later is scheduled once released",
          arguments: Backend.allCases)
    func finishedDependencyAndRunAt(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            _ = try s.claim(1)
            try s.finish([a], processID: 1, results: [a: .object("[1,2]")])
            let now = try s.enqueue(NewJob("B", after: [a]))
            #expect(try s.state(now) == .ready)
            #expect(canonical(try s.dependencies(of: now).first?.result) == "[1,2]")
            let c = try s.enqueue(NewJob("C"))
            let later = try s.enqueue(NewJob("D", runAt: Date().addingTimeInterval(3600), after: [c]))
            #expect(try s.state(later) == .waiting)
            _ = try s.claim(1)
            try s.finish([c])
            #expect(try s.state(later) == .scheduled, "released before its time, it waits for its time")
        }
    }

    @Test("when a job fails for good, the jobs waiting for it fail at once, down the chain, unless they run after failures",
          arguments: Backend.allCases)
    func failureCascades(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            let b = try s.enqueue(NewJob("B", after: [a]))
            let c = try s.enqueue(NewJob("C", after: [b]))
            let anyway = try s.enqueue(NewJob("Report", after: [a], runAfterFailure: true))
            _ = try s.claim(1)
            #expect(try s.fail(a, permanent: true) == .failed(attempts: 1))
            for id in [b, c] {
                let job = try #require(try s.job(id))
                #expect(job.state == .failed && job.lastError?.errorClass == DependencyFailure.errorClass, "\(job)")
                #expect(job.attempts == 0, "it never ran")
            }
            #expect(try s.job(b)?.lastError?.message.contains("job \(a)") == true)
            #expect(try s.job(c)?.lastError?.message.contains("job \(b)") == true)
            #expect(try s.state(anyway) == .ready)
            #expect(try s.dependencies(of: anyway) == [Dependency(jobID: a, outcome: .failed, result: nil)])
            #expect(canonical(try s.job(anyway)?.arguments) == canonical(.object(#"{"drover_dependencies":[{"job_id":\#(a),"outcome":"failed"}]}"#)))
        }
    }

    @Test("a retry that is not the last leaves the waiting job waiting; the crash limit fails it as any failure",
          arguments: Backend.allCases)
    func retriesAndCrashes(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A", maxAttempts: 2))
            let b = try s.enqueue(NewJob("B", after: [a]))
            _ = try s.claim(1)
            guard case .retryScheduled = try s.fail(a) else { Issue.record("a retry"); return }
            #expect(try s.state(b) == .waiting)
            let x = try s.enqueue(NewJob("X"))
            let y = try s.enqueue(NewJob("Y", after: [x]))
            _ = try s.claim(2, ["*"], limit: 10)
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            try s.release(2, reason: .crashed(crash, maxCrashes: 2))
            #expect(try s.state(y) == .waiting, "a crash that puts its job back is no failure")
            _ = try s.claim(2, ["*"], limit: 10)
            try s.release(2, reason: .crashed(crash, maxCrashes: 2))
            #expect(try s.state(x) == .failed)
            #expect(try s.job(y)?.lastError?.errorClass == DependencyFailure.errorClass)
        }
    }

    @Test("cancelling a job fails the jobs waiting for it; cancelling a waiting job deletes it", arguments: Backend.allCases)
    func cancellation(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            let b = try s.enqueue(NewJob("B", after: [a]))
            let c = try s.enqueue(NewJob("C", after: [a]))
            #expect(try s.cancel(c) == .discarded(was: .waiting))
            #expect(try s.job(c) == nil)
            #expect(try s.cancel(a) == .discarded(was: .ready))
            #expect(try s.job(b)?.state == .failed)
            let d = try s.enqueue(NewJob("D"))
            let e = try s.enqueue(NewJob("E", after: [d]))
            #expect(try s.cancelWaiting([d]) == [d])
            #expect(try s.job(e)?.state == .failed)
        }
    }

    @Test("unknown ids, a job not yet enqueued, a failed job and bad lists are refused at enqueue, and nothing is written",
          arguments: Backend.allCases)
    func refusedAtEnqueue(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            _ = try s.claim(1)
            _ = try s.fail(a, permanent: true)
            let before = try s.count("jobs")
            let refusals: [(NewJob, String)] = [
                (NewJob("B", after: [a + 1]), "no job with id \(a + 1)"),
                (NewJob("B", after: [9_999_999]), "no job with id 9999999"),
                (NewJob("B", after: [a]), "job \(a) has failed for good"),
                (NewJob("B", after: [0]), "0 is not a job id"),
                (NewJob("B", after: [a, a]), "lists a job twice"),
                (NewJob("B", uniqueKey: "k", after: [a]), "unique key"),
                (NewJob("B", arguments: .object("[1]"), after: [a], runAfterFailure: true), "a JSON object as arguments"),
            ]
            for (job, message) in refusals {
                do {
                    _ = try s.enqueue([NewJob("Fine"), job])
                    Issue.record("\(job) was enqueued")
                } catch let error as QueueError {
                    #expect(error.code == .invalidJob && error.message.contains(message), "\(error.message)")
                    #expect(error.jobIndex == 1 && error.message.hasPrefix("job 2: "), "\(error.message)")
                }
            }
            #expect(try s.count("jobs") == before, "a refused enqueue writes nothing")
            #expect(try s.count("job_dependencies") == 0)
            // Asked to run even after a failure, it may wait for a failed job: it runs at once.
            let anyway = try s.enqueue(NewJob("B", after: [a], runAfterFailure: true))
            #expect(try s.state(anyway) == .ready)
        }
    }

    @Test("a released job with a concurrency key is admitted: blocked while its key is full", arguments: Backend.allCases)
    func releasedJobsAreAdmitted(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Sync", keyTemplate: "k", maxRunning: 1, duration: .seconds(60))])
            let holder = try s.enqueue(NewJob("Sync"))
            let a = try s.enqueue(NewJob("A"))
            let sync = try s.enqueue(NewJob("Sync", after: [a]))
            #expect(try s.state(sync) == .waiting)
            _ = try s.claim(1, ["*"], limit: 10)
            try s.finish([a])
            #expect(try s.state(sync) == .blocked)
            try s.finish([holder])
            #expect(try s.state(sync) == .ready)
        }
    }

    @Test("retrying a job whose dependency failed is refused until that one is retried with it; then it waits again",
          arguments: Backend.allCases)
    func retryingDependants(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            let b = try s.enqueue(NewJob("B", after: [a]))
            _ = try s.claim(1)
            _ = try s.fail(a, permanent: true)
            #expect(try s.state(b) == .failed)
            #expect(throws: QueueError.self) { try s.retryFailed([b]) }
            #expect(try s.state(b) == .failed, "nothing was retried")
            #expect(try s.retryAllFailed(batchSize: 1) == 2, "one at a time, in id order: the dependency first")
            #expect(try s.state(a) == .ready)
            #expect(try s.state(b) == .waiting)
            _ = try s.claim(1)
            try s.finish([a])
            #expect(try s.state(b) == .ready)
        }
    }

    @Test("with finished jobs not kept, a dependant still gets its dependency's result", arguments: Backend.allCases)
    func resultWithoutPreservedJobs(_ backend: Backend) throws {
        try backend.withStore(preserveFinishedJobs: false) { s in
            let a = try s.enqueue(NewJob("A"))
            let b = try s.enqueue(NewJob("B", after: [a]))
            _ = try s.claim(1)
            try s.finish([a], processID: 1, results: [a: .object(#"{"n":1}"#)])
            #expect(try s.job(a) == nil)
            #expect(try s.state(b) == .ready)
            #expect(try s.dependencies(of: b).canonical == [#"\#(a) finished {"n":1}"#])
        }
    }

    @Test("a result over 64 KiB is refused before anything is written; the job stays claimed", arguments: Backend.allCases)
    func resultTooLarge(_ backend: Backend) throws {
        try backend.withStore { s in
            let a = try s.enqueue(NewJob("A"))
            _ = try s.claim(1)
            let big = try JSON(validating: "\"" + String(repeating: "x", count: JobRules.maxResultBytes) + "\"")
            #expect {
                try s.finish([a], processID: 1, results: [a: big])
            } throws: { error in
                (error as? QueueError)?.message.contains("64 KiB") == true && (error as? QueueError)?.jobIDs == [a]
            }
            #expect(try s.state(a) == .claimed)
            let fits = try JSON(validating: "\"" + String(repeating: "x", count: JobRules.maxResultBytes - 2) + "\"")
            try s.finish([a], processID: 1, results: [a: fits])
            #expect(canonical(try s.job(a)?.result) == canonical(fits))
        }
    }
}

@Suite("Store: batches and their callbacks, on every backend")
struct BatchScenarios {
    static let callbacks = NewBatch(description: "album 7", onSuccess: "Done", onComplete: "Tidy", onFailure: "Alert", callbackQueue: "hooks")

    /// The callback jobs of the store, by class, with their arguments.
    func callbackJobs(_ s: any TestStore) throws -> [String: [BatchCallbackArguments]] {
        var found: [String: [BatchCallbackArguments]] = [:]
        for job in try s.list(queue: "hooks", limit: 100) {
            let arguments = try #require(try s.job(job.id)?.arguments)
            found[job.className, default: []].append(try arguments.decode(BatchCallbackArguments.self))
        }
        return found
    }

    @Test("every job finished: on_success and on_complete are enqueued once, in the last finish, with the batch's counts",
          arguments: Backend.allCases)
    func success(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, ids) = try s.enqueueBatch(Self.callbacks, jobs: [NewJob("Thumb"), NewJob("Thumb"), NewJob("Thumb")])
            #expect(try s.batch(batch)?.total == 3 && s.batch(batch)?.pending == 3)
            #expect(try ids.compactMap { try s.job($0)?.batchID } == [batch, batch, batch])
            _ = try s.claim(1, ["default"], limit: 3)
            try s.finish([ids[0], ids[1]])
            #expect(try callbackJobs(s).isEmpty, "never early")
            try s.finish([ids[2]])
            let hooks = try callbackJobs(s)
            let expected = BatchCallbackArguments(batchID: batch, event: "success", description: "album 7", total: 3, finished: 3,
                                                  failed: 0, pending: 0)
            #expect(hooks["Done"] == [expected])
            var complete = expected
            complete.event = "complete"
            #expect(hooks["Tidy"] == [complete])
            #expect(hooks["Alert"] == nil)
            let info = try #require(try s.batch(batch))
            #expect(info.completedAt != nil && info.successJobID != nil && info.completeJobID != nil && info.failureJobID == nil)
            #expect(try s.batchStates(batch) == [.finished: 3])
        }
    }

    @Test("the first failure enqueues on_failure once; the end enqueues on_complete, not on_success; cancelled jobs count as failed",
          arguments: Backend.allCases)
    func failure(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, ids) = try s.enqueueBatch(Self.callbacks, jobs: (0..<4).map { _ in NewJob("Thumb") })
            _ = try s.claim(1, ["default"], limit: 2)
            _ = try s.fail(ids[0], permanent: true)
            _ = try s.fail(ids[1], permanent: true)
            var hooks = try callbackJobs(s)
            #expect(hooks["Alert"]?.count == 1 && hooks["Alert"]?.first?.failedJobID == ids[0])
            #expect(hooks["Tidy"] == nil)
            _ = try s.cancel(ids[2])
            _ = try s.claim(1, ["default"], limit: 1)
            try s.finish([ids[3]])
            hooks = try callbackJobs(s)
            #expect(hooks["Alert"]?.count == 1, "once, however many fail")
            #expect(hooks["Done"] == nil)
            #expect(hooks["Tidy"]?.count == 1 && hooks["Tidy"]?.first?.failed == 3 && hooks["Tidy"]?.first?.finished == 1)
            #expect(try s.batch(batch)?.failed == 3)
        }
    }

    @Test("a job of the batch adds jobs to it while it runs; the batch completes only after them", arguments: Backend.allCases)
    func addFromInside(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, ids) = try s.enqueueBatch(NewBatch(onComplete: "Tidy", callbackQueue: "hooks"), jobs: [NewJob("Split")])
            _ = try s.claim(1)
            let added = try s.enqueue([NewJob("Thumb", batchID: batch), NewJob("Thumb", batchID: batch)])
            try s.finish(ids)
            #expect(try callbackJobs(s).isEmpty, "two added jobs are pending")
            #expect(try s.batch(batch)?.total == 3)
            _ = try s.claim(1, ["default"], limit: 2)
            try s.finish(added)
            #expect(try callbackJobs(s)["Tidy"]?.first?.total == 3)
            // Complete now: no job can join it.
            #expect {
                try s.enqueue(NewJob("Late", batchID: batch))
            } throws: { ($0 as? QueueError)?.message.contains("batch \(batch) is complete") == true }
            #expect {
                try s.enqueue(NewJob("Late", batchID: batch + 100))
            } throws: { ($0 as? QueueError)?.message.contains("no batch with id \(batch + 100)") == true }
        }
    }

    @Test("a crash release counts as any failure: back in ready it is pending, past the crash limit it failed",
          arguments: Backend.allCases)
    func crashes(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, ids) = try s.enqueueBatch(Self.callbacks, jobs: [NewJob("Thumb")])
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            _ = try s.claim(1)
            try s.release(1, reason: .crashed(crash, maxCrashes: 2))
            #expect(try s.batch(batch)?.pending == 1)
            _ = try s.claim(1)
            try s.release(1, reason: .crashed(crash, maxCrashes: 2))
            #expect(try s.batch(batch)?.failed == 1)
            #expect(try callbackJobs(s)["Tidy"]?.count == 1 && callbackJobs(s)["Alert"]?.count == 1)
            _ = ids
        }
    }

    @Test("a failed job retried is pending again; a batch complete already does not call back twice", arguments: Backend.allCases)
    func retries(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, ids) = try s.enqueueBatch(Self.callbacks, jobs: [NewJob("Thumb"), NewJob("Thumb")])
            _ = try s.claim(1, ["default"], limit: 2)
            _ = try s.fail(ids[0], permanent: true)
            try s.retryFailed([ids[0]])
            #expect(try s.batch(batch)?.pending == 2 && s.batch(batch)?.failed == 0)
            try s.finish([ids[1]])
            _ = try s.claim(1, ["default"], limit: 1)
            try s.finish([ids[0]])
            var hooks = try callbackJobs(s)
            #expect(hooks["Done"]?.count == 1 && hooks["Tidy"]?.count == 1 && hooks["Alert"]?.count == 1)
            // After completion: a failure and a retry change counts, never call back again.
            let (second, more) = try s.enqueueBatch(Self.callbacks, jobs: [NewJob("Thumb")])
            _ = try s.claim(1, ["default"], limit: 1)
            _ = try s.fail(more[0], permanent: true)
            try s.retryFailed([more[0]])
            _ = try s.claim(1, ["default"], limit: 1)
            try s.finish([more[0]])
            hooks = try callbackJobs(s)
            #expect(hooks["Tidy"]?.filter { $0.batchID == second }.count == 1)
            #expect(hooks["Done"]?.filter { $0.batchID == second }.isEmpty == true, "it completed with a failure")
            #expect(try s.batch(second)?.finished == 1 && s.batch(second)?.pending == 0)
        }
    }

    @Test("bad batches are refused with the field at fault, and nothing is written", arguments: Backend.allCases)
    func refused(_ backend: Backend) throws {
        try backend.withStore { s in
            let cases: [(NewBatch, [NewJob], String)] = [
                (NewBatch(onSuccess: "no spaces"), [NewJob("A")], "on_success"),
                (NewBatch(callbackQueue: "bad queue"), [NewJob("A")], "callback_queue"),
                (NewBatch(description: String(repeating: "d", count: 5000)), [NewJob("A")], "description"),
                (NewBatch(), [], "at least one job"),
                (NewBatch(), [NewJob("A"), NewJob("A", after: [4242])], "no job with id 4242"),
            ]
            for (batch, jobs, text) in cases {
                #expect { try s.enqueueBatch(batch, jobs: jobs) } throws: { ($0 as? QueueError)?.message.contains(text) == true }
            }
            let (jobs, batches) = (try s.count("jobs"), try s.count("batches"))
            #expect(jobs == 0 && batches == 0)
        }
    }

    @Test("a fan-out, fan-in workflow in a batch: thumbnails, a zip after them, a callback once all is done",
          arguments: Backend.allCases)
    func pipeline(_ backend: Backend) throws {
        try backend.withStore { s in
            let (batch, thumbs) = try s.enqueueBatch(NewBatch(onComplete: "Notify", callbackQueue: "hooks"),
                                                     jobs: (1...5).map { NewJob("Thumb", arguments: .object("{\"n\":\($0)}")) })
            let zip = try s.enqueue(NewJob("Zip", after: thumbs, batchID: batch))
            var claimed = try s.claim(1, ["default"], limit: 10)
            #expect(Set(claimed.map(\.id)) == Set(thumbs))
            try s.finish(thumbs, processID: 1, results: Dictionary(uniqueKeysWithValues: thumbs.map { ($0, .object("{\"t\":\($0)}")) }))
            #expect(try callbackJobs(s).isEmpty, "the zip is pending")
            claimed = try s.claim(1, ["default"], limit: 10)
            #expect(claimed.map(\.id) == [zip])
            #expect(try s.dependencies(of: zip).map { canonical($0.result) } == thumbs.map { "{\"t\":\($0)}" })
            try s.finish([zip])
            #expect(try callbackJobs(s)["Notify"]?.first?.total == 6)
        }
    }

    @Test("two connections finishing a batch's last jobs at once: its callbacks are enqueued exactly once", arguments: Backend.allCases)
    func concurrentCompletions(_ backend: Backend) throws {
        try backend.withStore { s in
            for round in 0..<20 {
                let (batch, ids) = try s.enqueueBatch(Self.callbacks, jobs: [NewJob("T"), NewJob("T")])
                _ = try s.claim(1, ["default"], limit: 1)
                _ = try s.claim(2, ["default"], limit: 1)
                let others = [UncheckedBox(try s.connectAgain()), UncheckedBox(try s.connectAgain())]
                let gate = Gate()
                let failing = round % 2 == 1
                let enders = others.enumerated().map { i, other in
                    BackgroundWork("ender \(i)") { () -> Void in
                        gate.wait()
                        if failing && i == 1 {
                            _ = try other.value.fail(ids[i], processID: i + 1, error: JobFailure(errorClass: "E", message: "m"),
                                                     permanent: true, maxAttempts: nil, retryPolicy: nil)
                        } else {
                            _ = try other.value.finish([ids[i]], processID: i + 1)
                        }
                    }
                }
                gate.open()
                for ender in enders { try ender.value(timeout: .seconds(60)) }
                let hooks = try callbackJobs(s)
                #expect(hooks["Tidy"]?.filter { $0.batchID == batch }.count == 1, "round \(round)")
                #expect(hooks["Done"]?.filter { $0.batchID == batch }.count == (round % 2 == 0 ? 1 : 0), "round \(round)")
                #expect(try s.batch(batch)?.pending == 0)
            }
        }
    }
}
