import DroverPersistence
import DroverTestSupport
import Testing

@Suite("Bound parameters")
struct BoundParameterTests {
    static let hostileValues = [
        "it's",
        "''",
        "\"quoted\"",
        "'; DROP TABLE notes; --",
        "$1",
        "$2::int",
        "); DELETE FROM notes; (",
        "SELECT 1; SELECT 2",
        "\\x00ff",
        "\\\\x41\\",
        "E'\\''",
        "%s %d ? :name",
        "/* comment */ -- comment",
        "$$ dollar quoted $$",
        "💥 naïve ünïcödé 中文",
        "",
        String(repeating: "x", count: 100_000),
    ]

    @Test("interpolated values become $n parameters, never SQL text")
    func interpolationProducesBinds() {
        let queue = "mail'; DROP TABLE jobs; --"
        let priority = 3
        let sql: SQL = "SELECT id FROM jobs WHERE queue_name = \(queue) AND priority < \(priority)"
        #expect(sql.text == "SELECT id FROM jobs WHERE queue_name = $1 AND priority < $2")
        #expect(sql.binds.map(\.text) == [queue, "3"])
        #expect(sql.binds.map(\.type) == [.text, .int8])
    }

    @Test("fragments compose and number their parameters in order")
    func fragmentsCompose() {
        let a = 1, b = "two", c = 3.5
        let condition: SQL = "x = \(a) AND y = \(b)"
        var sql: SQL = "SELECT * FROM t WHERE \(condition) AND z = \(c)"
        sql.append(" LIMIT \(10)")
        #expect(sql.text == "SELECT * FROM t WHERE x = $1 AND y = $2 AND z = $3 LIMIT $4")
        #expect(sql.binds.map(\.text) == ["1", "two", "3.5", "10"])
        let joined = SQL.joined([condition, "w = \(b)"], separator: " OR ")
        #expect(joined.text == "x = $1 AND y = $2 OR w = $3")
    }

    @Test("identifiers are quoted, with quotes doubled")
    func identifiersAreQuoted() throws {
        let sql: SQL = "SELECT * FROM \(SQLIdentifier("drover", "jobs")) JOIN \(SQLIdentifier("we\"ird"))"
        #expect(sql.text == #"SELECT * FROM "drover"."jobs" JOIN "we""ird""#)
        #expect(sql.binds.isEmpty)
        #expect(throws: DatabaseError.self) { try SQLIdentifier.validated("Robert'); DROP") }
        #expect(try SQLIdentifier.validated("drover_2").quoted == "\"drover_2\"")
    }

    @Test("hostile text round-trips unchanged and never executes")
    func hostileTextRoundTrips() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let notes = SQLIdentifier(schema, "notes")
            try db.execute("CREATE TABLE \(notes) (id serial PRIMARY KEY, body text NOT NULL)")
            for value in Self.hostileValues {
                let echoed = try db.query("SELECT \(value)::text AS v")[0].decode("v", as: String.self)
                #expect(echoed == value)
                try db.execute("INSERT INTO \(notes) (body) VALUES (\(value))")
                let matches = try db.query("SELECT count(*) AS n FROM \(notes) WHERE body = \(value)")[0]
                    .decode("n", as: Int.self)
                #expect(matches == 1, "exactly the row holding \(value.prefix(40)) matches")
            }
            let stored = try db.query("SELECT body FROM \(notes) ORDER BY id").map { try $0.decode("body", as: String.self) }
            #expect(stored == Self.hostileValues)
        }
    }

    @Test("a NUL byte in a parameter is refused before anything is sent")
    func nulByteIsRefused() throws {
        try TestDatabase.withSchema(migrate: false) { schema, db in
            let notes = SQLIdentifier(schema, "notes")
            try db.execute("CREATE TABLE \(notes) (body text)")
            let error = #expect(throws: DatabaseError.self) {
                try db.execute("INSERT INTO \(notes) (body) VALUES (\("before\u{0}after"))")
            }
            #expect(error?.code == .invalidParameter)
            #expect(error?.message.contains("$1") == true)
            #expect(try db.query("SELECT count(*) AS n FROM \(notes)")[0].decode("n", as: Int.self) == 0)
        }
    }

    @Test("arrays bind as one parameter, for = ANY and unnest")
    func arraysBind() throws {
        let db = try TestDatabase.connect()
        let names = ["a", "b,c", "d\"e", "f\\g", "NULL", ""]
        let echoed = try db.query("SELECT \(names) AS v")[0].decode("v", as: [String].self)
        #expect(echoed == names)
        let ids = [3, 1, 2]
        let sum = try db.query("SELECT sum(x)::bigint AS s FROM unnest(\(ids)) AS x")[0].decode("s", as: Int.self)
        #expect(sum == 6)
        #expect(try db.query("SELECT 2 = ANY(\(ids)) AS hit")[0].decode("hit", as: Bool.self))
        let withNull = try db.query("SELECT ARRAY[1, NULL, 3]::bigint[] AS v")[0].decode("v", as: [Int?].self)
        #expect(withNull == [1, nil, 3])
    }
}

@Suite("Prepared statements")
struct PreparedStatementTests {
    @Test("a prepared statement runs again with other values, and is prepared anew after a reconnect")
    func preparedAcrossReconnect() throws {
        let db = try TestDatabase.connect()
        for value in [1, 2, 3, 40] {
            #expect(try db.query("SELECT \(value) * 2 AS doubled", prepared: true)[0].decode("doubled", as: Int.self) == value * 2)
        }
        let count = try db.query("SELECT count(*) AS n FROM pg_prepared_statements")[0].decode("n", as: Int.self)
        #expect(count == 1, "one statement, prepared once")
        #expect(try db.query("SELECT \("text") || 'x' AS t", prepared: true)[0].decode("t", as: String.self) == "textx")

        let admin = try TestDatabase.connect()
        try admin.execute("SELECT pg_terminate_backend(\(db.backendPID), 5000)")
        #expect(try db.query("SELECT \(21) * 2 AS doubled", prepared: true)[0].decode("doubled", as: Int.self) == 42)
        let error = #expect(throws: DatabaseError.self) { try db.query("SELECT \(1) / 0 AS x", prepared: true) }
        #expect(error?.sqlState == "22012")
    }
}
