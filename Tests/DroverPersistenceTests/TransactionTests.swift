import DroverPersistence
import DroverTestSupport
import Testing

@Suite("Transactions")
struct TransactionTests {
    struct Boom: Error {}

    private func count(_ table: SQLIdentifier, on db: Connection) throws -> Int {
        try db.query("SELECT count(*) AS n FROM \(table)")[0].decode("n", as: Int.self)
    }

    @Test("a transaction that throws leaves no trace")
    func throwingBodyRollsBack() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (v int)")
            #expect(throws: Boom.self) {
                try db.withTransaction { db in
                    try db.execute("INSERT INTO \(t) VALUES (\(1))")
                    throw Boom()
                }
            }
            let other = try TestDatabase.connect()
            #expect(try count(t, on: other) == 0)
            #expect(try count(t, on: db) == 0)
        }
    }

    @Test("a transaction that returns is visible to a second connection, and only after commit")
    func returningBodyCommits() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (v int)")
            let other = try TestDatabase.connect()
            let value = try db.withTransaction { db in
                try db.execute("INSERT INTO \(t) VALUES (\(42))")
                #expect(try count(t, on: other) == 0, "uncommitted work is invisible to others")
                return 42
            }
            #expect(value == 42)
            #expect(try other.query("SELECT v FROM \(t)")[0].decode("v", as: Int.self) == 42)
        }
    }

    @Test("a nested transaction is a savepoint: its failure rolls back only its own work")
    func nestedIsSavepoint() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (v int)")
            try db.withTransaction { db in
                try db.execute("INSERT INTO \(t) VALUES (1)")
                #expect(throws: DatabaseError.self) {
                    try db.withTransaction { db in
                        try db.execute("INSERT INTO \(t) VALUES (2)")
                        try db.execute("INSERT INTO \(t) VALUES ('not a number')")
                    }
                }
                try db.withTransaction { db in try db.execute("INSERT INTO \(t) VALUES (3)") }
            }
            let values = try TestDatabase.connect().query("SELECT v FROM \(t) ORDER BY v").map { try $0.decode("v", as: Int.self) }
            #expect(values == [1, 3])
        }
    }

    @Test("a failed statement caught inside the body aborts the transaction instead of committing half of it")
    func caughtErrorAborts() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (v int UNIQUE)")
            let error = #expect(throws: DatabaseError.self) {
                try db.withTransaction { db in
                    try db.execute("INSERT INTO \(t) VALUES (1)")
                    _ = try? db.execute("INSERT INTO \(t) VALUES (1)")  // unique violation, swallowed
                }
            }
            #expect(error?.code == .transactionAborted)
            #expect(try count(t, on: TestDatabase.connect()) == 0)
            #expect(try db.query("SELECT 1 AS one")[0].decode("one", as: Int.self) == 1, "the connection is usable after")
        }
    }

    @Test("withTransaction over a transaction begun by hand is an error, not a silent second BEGIN")
    func manualBeginIsRefused() throws {
        let db = try TestDatabase.connect()
        try db.execute("BEGIN")
        let error = #expect(throws: DatabaseError.self) { try db.withTransaction { _ in } }
        #expect(error?.code == .transactionAborted)
        try db.execute("ROLLBACK")
        try db.withTransaction { _ in }
    }

    @Test("a serializable transaction reports a serialization failure with its code")
    func serializationFailure() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (k int PRIMARY KEY, v int)")
            try db.execute("INSERT INTO \(t) VALUES (1, 0), (2, 0)")
            let other = try TestDatabase.connect()
            try other.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            _ = try other.query("SELECT sum(v) FROM \(t)")
            let error = #expect(throws: DatabaseError.self) {
                try db.withTransaction(isolation: .serializable) { db in
                    _ = try db.query("SELECT sum(v) FROM \(t)")
                    try db.execute("UPDATE \(t) SET v = v + 1 WHERE k = 1")
                    try other.execute("UPDATE \(t) SET v = v + 1 WHERE k = 2")
                    try other.execute("COMMIT")
                }
            }
            #expect(error?.code == .serializationFailure)
            #expect(error?.sqlState == "40001")
        }
    }
}
