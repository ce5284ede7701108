import DroverPersistence
import Foundation

/// A paused job class, as `drover classes list` shows it.
public struct PausedClass: Sendable, Equatable {
    public let className: String
    public let pausedAt: Date
    /// Its jobs that wait in ready, which no worker takes while it is paused.
    public let ready: Int
}

extension JobStore {
    var classPauses: SQLIdentifier { table("class_pauses") }

    /// Stops workers from taking jobs of `className`, on every queue; enqueueing goes on and jobs
    /// already running finish. Returns false when it was paused already.
    ///
    /// Claims pass over a paused class's ready jobs one by one (each a lookup of its class): a
    /// class with many jobs waiting at the head of a queue slows claims on that queue while it is
    /// paused. Pausing its queue, where that is the whole of it, costs nothing.
    @discardableResult
    public func pauseClass(_ className: String, on database: Driver.Database) throws -> Bool {
        try JobRules.checkClassName(className)
        return try database.change("""
            INSERT INTO \(classPauses) (class_name, created_at) VALUES (\(className), \(now().sql)) ON CONFLICT (class_name) DO NOTHING
            """) == 1
    }

    /// Lets workers take jobs of `className` again and wakes those of the queues its jobs wait in.
    /// Returns false when it was not paused.
    @discardableResult
    public func resumeClass(_ className: String, on database: Driver.Database) throws -> Bool {
        try JobRules.checkClassName(className)
        return try database.atomically {
            guard try database.change("DELETE FROM \(classPauses) WHERE class_name = \(className)") == 1 else { return false }
            let queues = try database.fetch("""
                SELECT DISTINCT r.queue_name FROM \(ready) r JOIN \(jobs) j ON j.id = r.job_id WHERE j.class_name = \(className)
                """).map { try $0.decode("queue_name", as: String.self) }
            try driver.wakeWorkers(queues: queues, in: self, on: database)
            return true
        }
    }

    /// The paused classes, by name, with their ready jobs.
    public func pausedClasses(on database: Driver.Database) throws -> [PausedClass] {
        try database.fetch("""
            SELECT p.class_name, p.created_at,
                   (SELECT count(*) FROM \(ready) r JOIN \(jobs) j ON j.id = r.job_id WHERE j.class_name = p.class_name) AS ready
            FROM \(classPauses) p ORDER BY p.class_name
            """).map { row in
            PausedClass(className: try row.decode("class_name"), pausedAt: try row.decode("created_at"), ready: try row.decode("ready"))
        }
    }

    /// The claim's condition that ready row `r` is not of a paused class: nothing to look up while
    /// no class is paused (the first test is computed once per statement).
    var notOfPausedClass: SQL {
        """
        (NOT EXISTS (SELECT 1 FROM \(classPauses))
         OR NOT EXISTS (SELECT 1 FROM \(jobs) pj JOIN \(classPauses) pc ON pc.class_name = pj.class_name WHERE pj.id = r.job_id))
        """
    }
}
