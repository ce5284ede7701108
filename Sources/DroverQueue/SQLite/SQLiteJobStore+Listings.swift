import DroverPersistence
import Foundation

/// What the management commands list on SQLite: queues, processes, and every failed job at once.
extension SQLiteJobStore {
    /// Seconds from the timestamp `column` (text in PostgreSQL's format) to now.
    private static func age(_ column: String) -> SQL {
        "((julianday('now') - julianday(substr(\(unsafeRaw: column), 1, 23))) * 86400.0)"
    }

    public func listQueues(on database: SQLiteConnection) throws -> [QueueInfo] {
        let rows = try database.query("""
            SELECT queue_name, 'ready' AS kind, count(*) AS n, \(Self.age("min(created_at)")) AS oldest
            FROM \(ready) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'scheduled', count(*), NULL FROM \(scheduled) GROUP BY queue_name
            UNION ALL SELECT queue_name, 'blocked', count(*), NULL FROM \(table("blocked_executions")) GROUP BY queue_name
            UNION ALL SELECT j.queue_name, 'claimed', count(*), NULL
                      FROM \(claimed) c JOIN \(jobs) j ON j.id = c.job_id GROUP BY j.queue_name
            UNION ALL SELECT j.queue_name, 'failed', count(*), NULL
                      FROM \(failed) f JOIN \(jobs) j ON j.id = f.job_id GROUP BY j.queue_name
            UNION ALL SELECT queue_name, 'paused', 0, NULL FROM \(pauses)
            """)
        return try QueueInfo.collect(rows)
    }

    public func listProcesses(on database: SQLiteConnection) throws -> [ProcessSummary] {
        try database.query("""
            SELECT p.id, p.kind, p.name, p.hostname, p.pid, p.supervisor_id, p.metadata,
                   \(Self.age("p.last_heartbeat_at")) AS age,
                   (SELECT count(*) FROM \(claimed) c WHERE c.process_id = p.id) AS claimed_jobs
            FROM \(table("processes")) p
            ORDER BY (p.kind = 'supervisor') DESC, coalesce(p.supervisor_id, p.id), p.id
            """).map(ProcessSummary.init(row:))
    }

    public func retryAllFailed(batchSize: Int = 1000, on database: SQLiteConnection) throws -> Int {
        try allFailed(batchSize: batchSize, on: database) { try retryFailed($0, on: database) }
    }

    public func discardAllFailed(batchSize: Int = 1000, on database: SQLiteConnection) throws -> Int {
        try allFailed(batchSize: batchSize, on: database) { try discardFailed($0, on: database) }
    }

    /// Runs `body` on every failed job, `batchSize` ids at a time; returns how many.
    private func allFailed(batchSize: Int, on database: SQLiteConnection, _ body: ([Int]) throws -> [Int]) throws -> Int {
        var total = 0
        while true {
            let ids = try database.query("SELECT job_id FROM \(failed) ORDER BY job_id LIMIT \(batchSize)")
                .map { try $0.decode("job_id", as: Int.self) }
            if ids.isEmpty { return total }
            total += try body(ids).count
        }
    }
}
