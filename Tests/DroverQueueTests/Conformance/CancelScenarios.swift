import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("Store: cancelling jobs in every state, on every backend")
struct CancelScenarios {
    @Test("a ready, scheduled or blocked job is deleted at once; a ready one gives its slot to a blocked one", arguments: Backend.allCases)
    func waitingJobsAreDeleted(_ backend: Backend) throws {
        try backend.withStore { s in
            try s.syncConcurrencyRules([ConcurrencyRule(className: "Sync", keyTemplate: "k", maxRunning: 1, duration: .seconds(60))])
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work", runIn: .seconds(3600)), NewJob("Sync"), NewJob("Sync")])
            #expect(try ids.map(s.state) == [.ready, .scheduled, .ready, .blocked])
            #expect(try s.cancel(ids[0]) == .discarded(was: .ready))
            #expect(try s.cancel(ids[1]) == .discarded(was: .scheduled))
            #expect(try s.cancel(ids[3]) == .discarded(was: .blocked))
            #expect(try s.count("jobs") == 1)
            let next = try s.enqueue(NewJob("Sync"))
            #expect(try s.state(next) == .blocked)
            #expect(try s.cancel(ids[2]) == .discarded(was: .ready))
            #expect(try s.state(next) == .ready, "the cancelled ready job's slot went to the blocked one")
        }
    }

    @Test("a running job is marked on its claim; asking again changes nothing; the worker sees the request", arguments: Backend.allCases)
    func runningJobIsRequested(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work")])
            _ = try s.claim(7, ["*"], limit: 2)
            #expect(try s.cancelRequests(processID: 7).isEmpty)
            #expect(try s.cancel(ids[0]) == .requested(processID: 7))
            #expect(try s.cancel(ids[0]) == .requested(processID: 7))
            #expect(try s.cancelRequests(processID: 7) == [ids[0]])
            #expect(try s.state(ids[0]) == .claimed, "it runs until its worker stops it")
        }
    }

    @Test("a cancelled job whose worker stops or dies before stopping it fails as cancelled instead of running again",
          arguments: Backend.allCases)
    func releaseHonoursCancellation(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work"), NewJob("Work")])
            _ = try s.claim(1, ["*"], limit: 1)
            _ = try s.claim(2, ["*"], limit: 2)
            _ = try s.cancel(ids[0])
            _ = try s.cancel(ids[1])
            #expect(try s.release(1) == ReleaseOutcome(released: [], failed: [ids[0]]))
            let failure = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            #expect(try s.release(2, reason: .crashed(failure, maxCrashes: 3)) == ReleaseOutcome(released: [ids[2]], failed: [ids[1]]))
            for id in ids.prefix(2) {
                let job = try #require(try s.job(id))
                #expect(job.state == .failed && job.lastError?.errorClass == JobFailure.cancelledClass)
            }
            #expect(try s.state(ids[2]) == .ready)
        }
    }

    @Test("finished, failed and unknown jobs cannot be cancelled, and say why in the same words", arguments: Backend.allCases)
    func nothingToCancel(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work")])
            _ = try s.claim(1, ["*"], limit: 2)
            try s.finish([ids[0]])
            try s.fail(ids[1], permanent: true)
            let finished = #expect(throws: QueueError.self) { try s.cancel(ids[0]) }
            #expect(finished?.code == .wrongState && finished?.jobIDs == [ids[0]])
            #expect(finished?.message == "job \(ids[0]) is finished: only waiting or running jobs can be cancelled")
            let failed = #expect(throws: QueueError.self) { try s.cancel(ids[1]) }
            #expect(failed?.message == "job \(ids[1]) is failed: only waiting or running jobs can be cancelled")
            let missing = #expect(throws: QueueError.self) { try s.cancel(999_999) }
            #expect(missing?.code == .jobNotFound && missing?.message == "no job with id 999999")
            #expect(try s.state(ids[0]) == .finished && s.state(ids[1]) == .failed, "nothing changed")
        }
    }
}
