import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Synchronization
import Testing

/// Every operation takes its row locks in one order (JobStore's documentation), so that
/// operations running side by side never wait for each other in a circle. This soaks the mix that
/// deadlocked before (issue 15): batches of enqueues whose jobs carry several concurrency keys in
/// random orders and unique keys, scheduled jobs falling due in the same second, cancellations of
/// random ids, and two "supervisors" claiming, finishing, failing, releasing, dispatching and
/// expiring; then checks that no statement was chosen as a deadlock victim, and that every job
/// still reaches an end. (Each "deadlock detected" in PostgreSQL's log is the error of the victim's
/// statement, which its session receives: the soak sees every one of its own, where the log and
/// pg_stat_database would mix in the other tests running beside it.)
@Suite("Store: no deadlock and nothing stuck under concurrent enqueue, cancel, claim and dispatch")
struct LockOrderSoak {
    static let seconds = Double(ProcessInfo.processInfo.environment["DROVER_SOAK_SECONDS"] ?? "") ?? 8

    @Test("a soak of enqueues with several keys, cancellations, claims and dispatches", arguments: Backend.allCases)
    func soak(_ backend: Backend) throws {
        try backend.withStore(retryPolicy: RetryPolicy(baseDelay: .milliseconds(200), maxDelay: .seconds(1), jitter: 0.5)) { s in
            try s.syncConcurrencyRules([
                ConcurrencyRule(className: "K", keyTemplate: "{k}", maxRunning: 3, duration: .seconds(60)),
                ConcurrencyRule(className: "D", keyTemplate: "d{k}", maxRunning: 1, duration: .seconds(60), onConflict: .discard),
            ])
            let problems = Mutex<[String]>([])
            let deadline = ContinuousClock.now + .seconds(Self.seconds)
            let counts = Mutex((enqueued: 0, cancelled: 0, claimed: 0))

            /// Runs `body` until the deadline on a connection of its own; a deadlock or an error the
            /// runtime would not retry is a problem, a lock timeout (SQLite's busy, a row lock) is
            /// tried again as the runtime does.
            func worker(_ name: String, _ body: @escaping @Sendable (any TestStore) throws -> Void) throws -> BackgroundWork<Void> {
                let store = UncheckedBox(try s.connectAgain())
                return BackgroundWork(name) {
                    while ContinuousClock.now < deadline {
                        do {
                            try body(store.value)
                        } catch let error as DatabaseError where error.code == .deadlockDetected {
                            problems.withLock { $0.append("\(name): \(error.message)") }
                        } catch let error as DatabaseError where error.code == .lockNotAvailable {
                            continue
                        } catch let error as QueueError where error.code == .jobNotFound || error.code == .wrongState {
                            continue
                        } catch {
                            problems.withLock { $0.append("\(name): \(error)") }
                        }
                    }
                }
            }

            let keys = ["a", "b", "c", "d", "e", "f"]
            var work = [try worker("enqueue") { store in
                let batch = (0..<25).map { i -> NewJob in
                    let k = keys.randomElement()!
                    let later = Bool.random() ? Date().addingTimeInterval(1).rounded() : nil
                    switch i % 5 {
                    case 0, 1: return NewJob("K", arguments: .object(#"{"k": "\#(k)"}"#), priority: Int.random(in: -1...1), runAt: later)
                    case 2: return NewJob("D", arguments: .object(#"{"k": "\#(k)"}"#), runAt: later)
                    case 3: return NewJob("W", runAt: later, uniqueKey: Bool.random() ? "u\(Int.random(in: 0..<20))" : nil)
                    default: return NewJob("W", priority: Int.random(in: -2...2))
                    }
                }.shuffled()
                let ids = try store.enqueue(batch)
                counts.withLock { $0.enqueued = max($0.enqueued, ids.max() ?? 0) }
            }]
            work.append(try worker("cancel") { store in
                let top = counts.withLock { $0.enqueued }
                guard top > 0 else { return }
                _ = try store.cancel(Int.random(in: 1...top))
                counts.withLock { $0.cancelled += 1 }
            })
            for n in 1...2 {
                let processID = try s.register("supervisor-\(n)").get("id", as: Int.self)
                work.append(try worker("supervisor \(n)") { store in
                    let claimed = try store.claim(processID, ["*"], limit: 10).map(\.id)
                    counts.withLock { $0.claimed += claimed.count }
                    let half = claimed.count / 2
                    try store.finish(Array(claimed.prefix(half)), by: processID)
                    for id in claimed.dropFirst(half) {
                        if Int.random(in: 0..<4) == 0 {
                            try store.release(processID, jobs: [id], reason: .graceful)
                        } else {
                            try store.fail(id, by: processID, permanent: Bool.random())
                        }
                    }
                    _ = try store.dispatchDue(batchSize: 50)
                    _ = try store.expireConcurrency(batchSize: 50)
                    if Int.random(in: 0..<20) == 0 { _ = try store.retryAllFailed(batchSize: 20) }
                })
            }
            for piece in work { try piece.value(timeout: .seconds(Self.seconds + 120)) }
            #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0 })")
            let (enqueued, cancelled, claimed) = counts.withLock { ($0.enqueued, $0.cancelled, $0.claimed) }
            #expect(enqueued > 100 && claimed > 50, "the soak did work: \(enqueued) enqueued, \(claimed) claimed, \(cancelled) cancels")

            // Nothing is stuck: every job still reaches an end.
            let cleaner = try s.register("cleaner").get("id", as: Int.self)
            try waitUntil("every job finished, failed or gone", timeout: .seconds(60)) {
                _ = try s.dispatchDue(batchSize: 1000)
                let jobs = try s.claim(cleaner, ["*"], limit: 1000).map(\.id)
                try s.finish(jobs, by: cleaner)
                return try s.count("ready_executions") + s.count("scheduled_executions") + s.count("blocked_executions")
                    + s.count("claimed_executions") == 0
            }
        }
    }
}

extension Date {
    /// To the whole second: jobs scheduled for the same second fall due together.
    func rounded() -> Date { Date(timeIntervalSince1970: timeIntervalSince1970.rounded(.up)) }
}
