import DroverPersistence
import Foundation
import Synchronization

/// The supervisor's database work, on a thread of its own, so that the supervisor's loop never
/// waits for the database: it keeps reaping children and feeding systemd's watchdog through an outage.
///
/// Tasks run in order. An essential task (releasing a dead child's jobs) is retried until the
/// database takes it; a routine one (a heartbeat, a pruning pass) is skipped while it is unreachable.
/// The loop is woken through ``wakeup`` after every task, to read what tasks left in shared state.
final class DatabaseAgent<Database: SQLDatabase>: @unchecked Sendable {
    // @unchecked: `session` is used only on the agent's thread; the rest is behind locks.
    struct Task {
        let name: String
        let essential: Bool
        let body: (Database) throws -> Void
    }

    struct Health: Sendable {
        var isDown = false
        var lastError: String?
        var connectedSince: ContinuousClock.Instant?
    }

    let wakeup = Wakeup()
    private let session: DatabaseSession<Database>
    private let log: Log
    /// Guarded by `arrived`'s lock.
    private var tasks: [Task] = []
    private let arrived = NSCondition()
    private let healthState = Mutex(Health())
    /// The task being tried now, and since when: a call that never returns shows here.
    private let current = Mutex<(name: String, since: ContinuousClock.Instant)?>(nil)

    init(session: DatabaseSession<Database>, log: Log) {
        self.session = session
        self.log = log
        let thread = Thread { [self] in loop() }
        thread.name = "database agent"
        thread.start()
    }

    /// The database's state as the agent last saw it.
    var health: Health { healthState.withLock { $0 } }

    /// How long the agent has been in its current task, if it is in one: a long time means its
    /// thread is stuck (a statement or a connection that neither answers nor fails).
    var busyFor: Duration? { current.withLock { $0 }.map { ContinuousClock.now - $0.since } }

    /// The task the agent is in, if any.
    var currentTask: String? { current.withLock { $0?.name } }

    func submit(_ name: String, essential: Bool = false, _ body: @escaping (Database) throws -> Void) {
        arrived.lock()
        tasks.append(Task(name: name, essential: essential, body: body))
        arrived.signal()
        arrived.unlock()
    }

    private func loop() {
        while true {
            arrived.lock()
            while tasks.isEmpty { arrived.wait() }
            let task = tasks.removeFirst()
            arrived.unlock()
            var done = false
            while !done {
                current.withLock { $0 = (task.name, .now) }
                defer { current.withLock { $0 = nil } }
                do {
                    done = try session.run(task.body) != nil
                } catch let error as DatabaseError where task.essential && error.isTransient {
                    // A lock held too long, a deadlock: worth another try, like an outage.
                    log.warning("database task failed; retrying", [("task", task.name), ("error", error.message)])
                    done = false
                } catch {
                    log.error("database task failed", [("task", task.name), ("error", "\(error)")])
                    done = true
                }
                healthState.withLock {
                    $0.isDown = session.isDown
                    $0.lastError = session.lastError?.message
                    $0.connectedSince = session.connectedSince
                }
                wakeup.signal()
                guard !done else { break }
                guard task.essential else { break }
                // Wait for the next attempt, unless the database comes back sooner for another task.
                let wait = session.nextRetry.map { ContinuousClock.now.duration(to: $0) } ?? .milliseconds(500)
                Thread.sleep(forTimeInterval: max(0.05, wait.seconds))
            }
        }
    }
}
