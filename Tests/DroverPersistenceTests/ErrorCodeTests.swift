import DroverPersistence
import DroverTestSupport
import Testing

@Suite("Errors carry the SQLSTATE and a code to switch on")
struct ErrorCodeTests {
    @Test("server errors map to codes", arguments: [
        ("unique", DatabaseError.Code.uniqueViolation, "23505"),
        ("notnull", .notNullViolation, "23502"),
        ("check", .checkViolation, "23514"),
        ("fk", .foreignKeyViolation, "23503"),
        ("syntax", .syntaxError, "42601"),
        ("undefined table", .undefinedTable, "42P01"),
        ("undefined column", .undefinedColumn, "42703"),
        ("statement timeout", .queryCanceled, "57014"),
        ("other", .serverError, "22012"),
    ])
    func serverErrorsMapToCodes(_ scenario: String, _ code: DatabaseError.Code, _ sqlState: String) throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let parent = SQLIdentifier(schema, "parent")
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(parent) (id int PRIMARY KEY)")
            try db.execute("CREATE TABLE \(t) (k int UNIQUE, v int NOT NULL CHECK (v >= 0), p int REFERENCES \(parent))")
            try db.execute("INSERT INTO \(t) (k, v) VALUES (1, 1)")
            let statement: SQL = switch scenario {
            case "unique": "INSERT INTO \(t) (k, v) VALUES (\(1), 1)"
            case "notnull": "INSERT INTO \(t) (k, v) VALUES (2, NULL)"
            case "check": "INSERT INTO \(t) (k, v) VALUES (2, -1)"
            case "fk": "INSERT INTO \(t) (k, v, p) VALUES (2, 1, 99)"
            case "syntax": "SELEKT 1"
            case "undefined table": "SELECT * FROM \(SQLIdentifier(schema, "nope"))"
            case "undefined column": "SELECT nope FROM \(t)"
            case "statement timeout": "SELECT pg_sleep(5)"
            default: "SELECT 1 / 0"
            }
            if scenario == "statement timeout" { try db.execute("SET statement_timeout = '50ms'") }
            let error = #expect(throws: DatabaseError.self) { try db.execute(statement) }
            #expect(error?.code == code)
            #expect(error?.sqlState == sqlState)
            #expect(error?.query == statement.text)
            #expect(error?.description.contains(statement.text.prefix(20)) == true)
        }
    }

    @Test("a row locked by another transaction under lock_timeout is lockNotAvailable")
    func lockTimeout() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (k int PRIMARY KEY)")
            try db.execute("INSERT INTO \(t) VALUES (1)")
            let holder = try TestDatabase.connect()
            try holder.execute("BEGIN")
            try holder.execute("SELECT * FROM \(t) WHERE k = 1 FOR UPDATE")
            try db.execute("SET lock_timeout = '100ms'")
            let error = #expect(throws: DatabaseError.self) { try db.execute("UPDATE \(t) SET k = 2 WHERE k = 1") }
            #expect(error?.code == .lockNotAvailable)
            #expect(error?.sqlState == "55P03")
            try holder.execute("ROLLBACK")
        }
    }

    @Test("the details the server gives are kept")
    func detailsAreKept() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let t = SQLIdentifier(schema, "t")
            try db.execute("CREATE TABLE \(t) (k int PRIMARY KEY)")
            try db.execute("INSERT INTO \(t) VALUES (7)")
            let error = #expect(throws: DatabaseError.self) { try db.execute("INSERT INTO \(t) VALUES (7)") }
            #expect(error?.detail?.contains("(k)=(7)") == true)
        }
    }
}
