import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The job counts of `/metrics` (``JobMetric``) are written by the store in the transaction of
/// the change they count: each figure must match what the scenario did, exactly, on every
/// backend, before and after the event log is folded.
@Suite("Store: job counts and histograms match what happened, on every backend")
struct MetricsScenarios {
    @Test("every kind of change is counted once, by queue and class, with exact latencies and durations", arguments: Backend.allCases)
    func everyChangeIsCounted(_ backend: Backend) throws {
        let clock = ManualClock()
        try backend.withStore(clock: clock.storeClock) { s in
            let a = try s.enqueue([NewJob("Mail", queue: "q1"), NewJob("Mail", queue: "q1"), NewJob("Mail", queue: "q1")])
            let b = try s.enqueue([NewJob("Report", queue: "q2"), NewJob("Report", queue: "q2")])
            let later = try s.enqueue(NewJob("Mail", queue: "q1", runIn: .seconds(3600)))
            clock.advance(by: 2)
            #expect(try s.claim(1, ["*"], limit: 10).count == 5)
            clock.advance(by: 0.3)
            try s.finish([a[0], a[1]])
            #expect(try s.fail(a[2]) != .dropped, "retried: attempts are left")
            let timeout = JobFailure(errorClass: JobFailure.timeoutClass, message: "ran longer than its timeout")
            #expect(try s.fail(b[0], processID: 1, error: timeout, permanent: true, maxAttempts: nil, retryPolicy: nil) == .failed(attempts: 1))
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            #expect(try s.release(1, reason: .crashed(crash, maxCrashes: 5)).released == [b[1]])
            #expect(try s.cancel(later) == .discarded(was: .scheduled))
            try s.retryFailed([b[0]])
            let doomed = try s.enqueue(NewJob("Sync", queue: "q2"))
            #expect(try s.claim(2, ["q2"], limit: 10).count == 3, "the retried, the released and the new job")
            _ = try s.fail(doomed, processID: 2, error: JobFailure(errorClass: "Boom", message: "no"), permanent: true, maxAttempts: nil, retryPolicy: nil)
            _ = try s.discardFailed([doomed])
            // A batch refused whole counts nothing.
            #expect(throws: QueueError.self) { try s.enqueue([NewJob("Mail", queue: "q1"), NewJob("Mail", priority: 99_999)]) }

            for fold in [false, true] {
                if fold { try s.foldMetricEvents() }
                let m = try s.metrics()
                let when = fold ? "after folding" : "before folding"
                #expect(m.count(.enqueued, queue: "q1", className: "Mail") == 4, "\(when)")
                #expect(m.count(.enqueued, queue: "q2", className: "Report") == 2, "\(when)")
                #expect(m.count(.enqueued, queue: "q2", className: "Sync") == 1, "\(when)")
                #expect(m.count(.latency, queue: "q1", className: "Mail") == 3, "\(when): started")
                #expect(m.count(.latency, queue: "q2", className: "Report") == 4, "\(when): started twice each (process 2 took them back)")
                #expect(m.count(.latency, queue: "q2", className: "Sync") == 1, "\(when): started")
                #expect(m.count(.duration, queue: "q1", className: "Mail") == 2, "\(when): finished")
                #expect(m.total(.duration) == 2, "\(when): finished")
                #expect(m.count(.retried, queue: "q1", className: "Mail") == 1, "\(when): an automatic retry")
                #expect(m.count(.retried, queue: "q2", className: "Report") == 1, "\(when): a person's retry")
                #expect(m.count(.failed, queue: "q2", className: "Report") == 1, "\(when)")
                #expect(m.count(.failed, queue: "q2", className: "Sync") == 1, "\(when)")
                #expect(m.count(.timedOut, queue: "q2", className: "Report") == 1, "\(when)")
                #expect(m.count(.crashReleased, queue: "q2", className: "Report") == 1, "\(when)")
                #expect(m.count(.cancelled, queue: "q1", className: "Mail") == 1, "\(when)")
                #expect(m.count(.discarded, queue: "q2", className: "Sync") == 1, "\(when)")
                #expect(m.total(.enqueued) == 7 && m.total(.failed) == 2 && m.total(.cancelled) == 1, "\(when)")

                // Latency: 2 s in ready (the 2.5 s bucket); duration: 0.3 s from claim to finish (0.5 s).
                let latency = try #require(m.histograms[.init(.latency, queue: "q1", className: "Mail")])
                #expect(latency.buckets[MetricBuckets.index(of: 2)] == 3 && abs(latency.sum - 6) < 0.001, "\(when): \(latency)")
                let duration = try #require(m.histograms[.init(.duration, queue: "q1", className: "Mail")])
                #expect(duration.buckets[MetricBuckets.index(of: 0.3)] == 2 && abs(duration.sum - 0.6) < 0.001, "\(when): \(duration)")
            }
        }
    }

    @Test("a cancelled running job, a crash limit and cleared queues are counted as what they became", arguments: Backend.allCases)
    func endingsAreCountedAsWhatTheyBecame(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work"), NewJob("Work"), NewJob("Work", runIn: .seconds(60))])
            _ = try s.claim(1, ["*"], limit: 2)
            _ = try s.cancel(ids[0])
            let crash = JobFailure(errorClass: "WorkerCrashed", message: "killed")
            // ids[0]: cancelled (not failed); ids[1]: its first crash is its last (failed, and released after a crash).
            #expect(try s.release(1, reason: .crashed(crash, maxCrashes: 1)).failed == [ids[0], ids[1]])
            #expect(try s.clear("default", batchSize: 1) == (ready: 1, scheduled: 1))
            let m = try s.metrics()
            #expect(m.count(.cancelled, queue: "default", className: "Work") == 1)
            #expect(m.count(.failed, queue: "default", className: "Work") == 1)
            #expect(m.count(.crashReleased, queue: "default", className: "Work") == 2)
            #expect(m.count(.discarded, queue: "default", className: "Work") == 2, "a cleared queue's jobs count as discarded")
            #expect(m.count(.enqueued, queue: "default", className: "Work") == 4)
        }
    }

    @Test("the queues and processes come with the counts", arguments: Backend.allCases)
    func queuesAndProcesses(_ backend: Backend) throws {
        try backend.withStore { s in
            _ = try s.enqueue([NewJob("Work", queue: "a"), NewJob("Work", queue: "b")])
            _ = try s.pause("b")
            _ = try s.register(kind: .worker, name: "worker-1", supervisorID: nil, metadata: .emptyObject)
            let m = try s.metrics()
            #expect(m.queues.map(\.name) == ["a", "b"] && m.queues.map(\.paused) == [false, true])
            #expect(m.queues.map(\.ready) == [1, 1])
            #expect(m.processes.map(\.name) == ["worker-1"])
        }
    }

    @Test("the counts of the last hour come by minute, once folded, for the dashboard's chart", arguments: Backend.allCases)
    func countsByMinute(_ backend: Backend) throws {
        try backend.withStore { s in
            let ids = try s.enqueue([NewJob("Work"), NewJob("Work"), NewJob("Work")])
            _ = try s.claim(1, ["*"], limit: 3)
            try s.finish([ids[0], ids[1]])
            _ = try s.fail(ids[2], permanent: true)
            try s.foldMetricEvents()
            let minutes = try s.countsByMinute(last: 60)
            #expect(minutes.count == 60)
            #expect(zip(minutes, minutes.dropFirst()).allSatisfy { $1.minute.timeIntervalSince($0.minute) == 60 }, "one entry a minute")
            #expect(minutes.reduce(0) { $0 + $1.finished } == 2 && minutes.reduce(0) { $0 + $1.failed } == 1)
            #expect(minutes.reduce(0) { $0 + $1.started } == 3 && minutes.reduce(0) { $0 + $1.enqueued } == 3)
            #expect(minutes.last!.finished + minutes.dropLast().last!.finished == 2, "counted in the last minute or two")
        }
    }
}
