import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

/// The SQLite connection: the first piece of the embedded backend (issue 8).
@Suite("SQLite: statements, transactions, locks, and the heartbeat of Solid Queue #350")
struct SQLiteTests {
    func database(_ directory: TemporaryDirectory, busyTimeout: Duration = .seconds(5)) throws -> SQLiteConnection {
        try SQLiteConnection(path: directory.url.appendingPathComponent("drover.sqlite3").path, schema: "drover", busyTimeout: busyTimeout)
    }

    @Test("values are bound, never spliced, and come back typed; the file is schema-qualified like PostgreSQL")
    func statements() throws {
        let directory = try TemporaryDirectory("drover-sqlite")
        let db = try database(directory)
        try db.execute(unsafeRawScript: """
            CREATE TABLE drover.things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, weight REAL, flag INTEGER, at TEXT, note TEXT)
            """)
        let tricky = "Robert'); DROP TABLE things;--"
        let at = Date(timeIntervalSince1970: 1_795_000_000.25)
        let inserted = try db.query("""
            INSERT INTO drover.things (name, weight, flag, at, note) VALUES (\(tricky), \(2.5), \(true), \(at), \(String?.none)) RETURNING id
            """)
        let id = try inserted[0].decode("id", as: Int.self)
        let row = try #require(try db.query("SELECT * FROM drover.things WHERE id = \(id)").first)
        #expect(try row.decode("name", as: String.self) == tricky)
        #expect(try row.decode("weight", as: Double.self) == 2.5)
        #expect(try row.decode("flag", as: Bool.self))
        #expect(try row.decode("at", as: Date.self) == at)
        #expect(try row.decode("note", as: String?.self) == nil)
        let duplicate = #expect(throws: DatabaseError.self) { try db.execute("INSERT INTO drover.things (name) VALUES (\(tricky))") }
        #expect(duplicate?.code == .uniqueViolation)
        let missing = #expect(throws: DatabaseError.self) { try db.query("SELECT * FROM drover.absent_table") }
        #expect(missing?.code == .undefinedTable)
    }

    @Test("transactions commit or roll back; a nested one is a savepoint")
    func transactions() throws {
        let directory = try TemporaryDirectory("drover-sqlite")
        let db = try database(directory)
        try db.execute(unsafeRawScript: "CREATE TABLE drover.t (v INTEGER)")
        struct Abort: Error {}
        try db.withTransaction { db in
            try db.execute("INSERT INTO drover.t VALUES (\(1))")
            #expect(throws: Abort.self) {
                try db.withTransaction { db in
                    try db.execute("INSERT INTO drover.t VALUES (\(2))")
                    throw Abort()
                }
            }
        }
        #expect(throws: Abort.self) {
            try db.withTransaction { db in
                try db.execute("INSERT INTO drover.t VALUES (\(3))")
                throw Abort()
            }
        }
        #expect(try db.query("SELECT v FROM drover.t").map { try $0.decode("v", as: Int.self) } == [1])
    }

    @Test("a writer waits out the busy timeout and then fails with lockNotAvailable; readers are not blocked (WAL)")
    func locks() throws {
        let directory = try TemporaryDirectory("drover-sqlite")
        let holder = try database(directory)
        let other = try database(directory, busyTimeout: .milliseconds(200))
        try holder.execute(unsafeRawScript: "CREATE TABLE drover.t (v INTEGER); INSERT INTO drover.t VALUES (1)")
        try holder.execute(unsafeRawScript: "BEGIN IMMEDIATE; UPDATE drover.t SET v = 2")
        #expect(try other.query("SELECT v FROM drover.t")[0].decode("v", as: Int.self) == 1, "a reader sees the last commit")
        let started = ContinuousClock.now
        let busy = #expect(throws: DatabaseError.self) { try other.withTransaction { db in try db.execute("UPDATE drover.t SET v = 3") } }
        #expect(busy?.code == .lockNotAvailable)
        #expect(ContinuousClock.now - started >= .milliseconds(150), "it waited for the lock first")
        try holder.execute(unsafeRawScript: "COMMIT")
        try other.withTransaction { db in try db.execute("UPDATE drover.t SET v = 3") }
        #expect(try holder.query("SELECT v FROM drover.t")[0].decode("v", as: Int.self) == 3)
    }

    @Test("Solid Queue #350 on SQLite: a heartbeat that hits a held write lock fails, keeps its change, and the next one flushes it")
    func heartbeatSurvivesBusy() throws {
        let directory = try TemporaryDirectory("drover-sqlite")
        let holder = try database(directory)
        let db = try database(directory, busyTimeout: .milliseconds(200))
        try holder.execute(unsafeRawScript: """
            CREATE TABLE drover.processes (id INTEGER PRIMARY KEY, last_heartbeat_at TEXT, beats INTEGER NOT NULL DEFAULT 0);
            INSERT INTO drover.processes (id, last_heartbeat_at) VALUES (1, '2026-11-27 00:00:00+00');
            """)
        let table = SQLIdentifier("drover", "processes")
        let process = try Record.find(in: table, id: 1, on: db)
        let first = Date(timeIntervalSince1970: 1_795_000_000)

        // Another connection holds the write lock for longer than this one's busy timeout.
        try holder.execute(unsafeRawScript: "BEGIN IMMEDIATE; UPDATE drover.processes SET beats = beats WHERE id = 1")
        let failed = #expect(throws: DatabaseError.self) {
            try process.withLock(on: db) { record in
                record.set("last_heartbeat_at", to: first)
                record.set("beats", to: 1)
            }
        }
        #expect(failed?.code == .lockNotAvailable)
        // The heartbeat's write never happened; nothing is left half-done, nothing refuses to lock.
        try holder.execute(unsafeRawScript: "COMMIT")
        #expect(try Record.find(in: table, id: 1, on: holder).get("beats", as: Int.self) == 0)

        // A change made outside the lock stays pending through a failure, and the next heartbeat
        // flushes it first: Drover's withLock never says "unpersisted changes".
        process.set("beats", to: 5)
        try holder.execute(unsafeRawScript: "BEGIN IMMEDIATE")
        #expect(throws: DatabaseError.self) { try process.withLock(on: db) { $0.set("last_heartbeat_at", to: first) } }
        #expect(process.hasPendingChanges)
        try holder.execute(unsafeRawScript: "COMMIT")
        let second = first.addingTimeInterval(10)
        try process.withLock(on: db) { record in record.set("last_heartbeat_at", to: second) }
        #expect(!process.hasPendingChanges)
        let stored = try Record.find(in: table, id: 1, on: holder)
        #expect(try stored.get("beats", as: Int.self) == 5)
        #expect(try stored.get("last_heartbeat_at", as: Date.self) == second)
    }
}
