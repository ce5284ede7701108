import DroverPersistence
import Foundation
import DroverTestSupport
import Testing

/// What happens when the server ends a connection: idle, mid-statement, inside a transaction.
@Suite("Dropped connections")
struct ConnectionLossTests {
    /// Ends `pid`'s session and waits (up to 5 s, inside the server) until it is gone.
    private func terminate(_ pid: Int32, using admin: Connection) throws {
        let ended = try admin.query("SELECT pg_terminate_backend(\(pid), 5000) AS ended")[0].decode("ended", as: Bool.self)
        #expect(ended)
    }

    /// Waits until `pid` is blocked waiting for a lock.
    private func waitUntilBlocked(_ pid: Int32, admin: Connection) throws {
        try waitUntil("backend \(pid) waits for a lock") { try TestDatabase.isWaitingForLock(pid, admin: admin) }
    }

    @Test("a connection the server ended while idle is re-established on next use, transparently")
    func idleDropReconnects() throws {
        let db = try TestDatabase.connect()
        let admin = try TestDatabase.connect()
        let before = db.backendPID
        try terminate(before, using: admin)
        #expect(try db.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1)
        #expect(db.backendPID != before)
    }

    @Test("session settings survive a reconnect: lock_timeout still bounds a wait for a row lock")
    func settingsSurviveReconnect() throws {
        try TestDatabase.withSchema(migrate: false) { schema, admin in
            let t = SQLIdentifier(schema, "t")
            try admin.execute("CREATE TABLE \(t) (k int PRIMARY KEY)")
            try admin.execute("INSERT INTO \(t) VALUES (1)")
            let db = try TestDatabase.connect()
            try db.setSessionSetting("lock_timeout", to: "300ms")
            try terminate(db.backendPID, using: admin)
            // The next use reconnects, to a new session that must have the setting again.
            #expect(try db.query("SHOW lock_timeout")[0].decode("lock_timeout", as: String.self) == "300ms")
            // Another session holds the row for 5 s: a lost lock_timeout would wait all that time.
            let locked = DispatchSemaphore(value: 0)
            let holder = BackgroundWork("holder") {
                let holder = try TestDatabase.connect()
                try holder.execute("BEGIN")
                try holder.execute("SELECT * FROM \(t) WHERE k = 1 FOR UPDATE")
                locked.signal()
                Thread.sleep(forTimeInterval: 5)
                try holder.execute("ROLLBACK")
            }
            #expect(locked.wait(timeout: .now() + 10) == .success)
            let started = ContinuousClock.now
            let blocked = #expect(throws: DatabaseError.self) { try db.execute("UPDATE \(t) SET k = 1 WHERE k = 1") }
            #expect(blocked?.code == .lockNotAvailable, "it gave up after lock_timeout instead of waiting")
            #expect(ContinuousClock.now - started < .seconds(3))
            try holder.value(timeout: .seconds(15))
        }
    }

    @Test("a statement in flight when the connection drops fails with connectionLost and is not retried")
    func inFlightStatementFails() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (k int PRIMARY KEY, v int)")
            try db.execute("INSERT INTO \(t) VALUES (1, 0)")
            let holder = try TestDatabase.connect()
            try holder.execute("BEGIN")
            try holder.execute("SELECT * FROM \(t) WHERE k = 1 FOR UPDATE")

            let victimPID = db.backendPID
            // db's UPDATE blocks on holder's lock; its backend is ended while it waits.
            let admin = try TestDatabase.connect()
            let blocked = BackgroundWork { [db = UncheckedBox(db)] () -> DatabaseError? in
                do {
                    try db.value.execute("UPDATE \(t) SET v = v + 1 WHERE k = 1")
                    return nil
                } catch let error as DatabaseError {
                    return error
                }
            }
            try waitUntilBlocked(victimPID, admin: admin)
            try terminate(victimPID, using: admin)
            let error = try blocked.value()
            #expect(error?.code == .connectionLost)
            #expect(error?.message.contains("may or may not have taken effect") == true)
            try holder.execute("ROLLBACK")
            #expect(try admin.query("SELECT v FROM \(t)")[0].decode("v", as: Int.self) == 0)
            // The next use reconnects.
            #expect(try db.query("SELECT v FROM \(t)")[0].decode("v", as: Int.self) == 0)
            #expect(db.backendPID != victimPID)
        }
    }

    @Test("a statement whose outcome is unknown is never sent twice")
    func notRetried() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            // nextval() is not rolled back, so the sequence counts how often the statement ran.
            let counter = SQLIdentifier(schema, "counter")
            try db.execute("CREATE SEQUENCE \(counter)")
            let error = #expect(throws: DatabaseError.self) {
                try db.execute("SELECT nextval(\(counter.quoted)), pg_terminate_backend(pg_backend_pid()), pg_sleep(5)")
            }
            #expect(error?.code == .connectionLost)
            let ran = try TestDatabase.connect().query("SELECT last_value FROM \(counter)")[0].decode("last_value", as: Int.self)
            #expect(ran == 1)
        }
    }

    @Test("a connection lost inside a transaction fails the transaction; nothing of it is committed")
    func lostInsideTransaction() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (v int)")
            let admin = try TestDatabase.connect()
            let error = #expect(throws: DatabaseError.self) {
                try db.withTransaction { db in
                    try db.execute("INSERT INTO \(t) VALUES (1)")
                    try terminate(db.backendPID, using: admin)
                    // Must not run outside the transaction on a fresh connection.
                    try db.execute("INSERT INTO \(t) VALUES (2)")
                }
            }
            #expect(error?.code == .connectionLost)
            #expect(try admin.query("SELECT count(*) AS n FROM \(t)")[0].decode("n", as: Int.self) == 0)
            #expect(try db.query("SELECT count(*) AS n FROM \(t)")[0].decode("n", as: Int.self) == 0)
        }
    }
}

/// Hands a non-Sendable value to one other thread, which the test then waits for.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
