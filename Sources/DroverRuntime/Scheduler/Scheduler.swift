import DroverPersistence
import DroverQueue
import Foundation

/// A scheduler process: enqueues the runs of recurring tasks as they fall due. Any number of
/// schedulers may run against one database; each run is enqueued exactly once (``JobStore``'s
/// `enqueueRun` records it in the same transaction as its job, under a unique constraint).
final class Scheduler<Driver: RuntimeDriver> {
    private let runtime: ChildRuntime<Driver>
    /// How often the task list is read again (tasks added or removed at run time).
    private let pollingInterval: Duration
    private var tasks: [(task: RecurringTask, schedule: Schedule)] = []
    /// Tasks whose schedule cannot be read, by key, so that each is reported once.
    private var reported: Set<String> = []
    private var enqueued = 0
    private var log: Log { runtime.log }

    init(runtime: ChildRuntime<Driver>) throws {
        guard let part = runtime.spec.scheduler else { throw ValidationFailure("a scheduler's spec has no scheduler part") }
        self.runtime = runtime
        pollingInterval = Duration(milliseconds: part.pollingIntervalMilliseconds)
    }

    private struct Metadata: Encodable {
        let tasks: Int
        let enqueued: Int
    }

    private var metadata: JSON { (try? JSON(encoding: Metadata(tasks: tasks.count, enqueued: enqueued))) ?? .emptyObject }

    func run() -> Int32 {
        guard runtime.register(metadata: metadata) else { return ExitStatus.ok.rawValue }
        var nextRefresh = ContinuousClock.now
        while true {
            if runtime.stopping {
                runtime.deregister()
                return ExitStatus.ok.rawValue
            }
            if ContinuousClock.now >= nextRefresh {
                refreshTasks()
                nextRefresh = .now + pollingInterval
            }
            enqueueDueRuns()
            if let status = runtime.heartbeatIfDue(metadata: metadata) { return status }

            var deadlines = [nextRefresh, runtime.nextHeartbeat]
            if let retry = runtime.session.nextRetry { deadlines.append(retry) }
            let now = Date()
            if let next = tasks.compactMap({ $0.schedule.next(after: now) }).min() {
                // A millisecond past the run time, so that the run is due when the loop looks.
                deadlines.append(.now + .milliseconds(Int64(next.timeIntervalSince(now) * 1000) + 1))
            }
            _ = runtime.wait(timeout: ContinuousClock.now.duration(to: deadlines.min()!))
        }
    }

    private func refreshTasks() {
        do {
            guard let all = try runtime.session.run({ try runtime.store.tasks(on: $0) }) else { return }
            tasks = all.compactMap { task in
                do {
                    let schedule = try Schedule(task.schedule, timeZone: task.timeZone)
                    reported.remove(task.key)
                    return (task, schedule)
                } catch {
                    if reported.insert(task.key).inserted {
                        log.error("a recurring task's schedule cannot be read; it does not run", [("task", task.key), ("error", "\(error)")])
                    }
                    return nil
                }
            }
        } catch {
            log.error("reading the recurring tasks failed", [("error", "\(error)")])
        }
    }

    private func enqueueDueRuns() {
        for (task, schedule) in tasks {
            do {
                let done: Void? = try runtime.session.run { connection in
                    let last = try runtime.store.lastRun(of: task.key, on: connection)
                    for runAt in DueRuns.runs(of: task, schedule: schedule, lastRun: last, now: Date()) {
                        guard let job = try runtime.store.enqueueRun(of: task, at: runAt, on: connection) else { continue }
                        enqueued += 1
                        log.info("enqueued a recurring run", [
                            ("task", task.key), ("run_at", DatabaseTime.utcText(runAt)), ("job", String(job)),
                        ])
                    }
                }
                if done == nil { return }  // The database is away; the loop waits for it.
            } catch {
                log.error("enqueueing a recurring run failed", [("task", task.key), ("error", "\(error)")])
            }
        }
    }
}
