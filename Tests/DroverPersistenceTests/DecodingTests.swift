import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

@Suite("Typed decoding of rows")
struct DecodingTests {
    @Test("each supported type round-trips through the server")
    func roundTrips() throws {
        let db = try TestDatabase.connect()
        func echo<T: DatabaseCodable & Equatable>(_ value: T) throws -> T {
            try db.query("SELECT \(value) AS v")[0].decode("v", as: T.self)
        }
        #expect(try echo(0) == 0)
        #expect(try echo(Int.max) == Int.max)
        #expect(try echo(Int.min) == Int.min)
        #expect(try echo(Int32(-7)) == -7)
        #expect(try echo("text") == "text")
        #expect(try echo(true) == true)
        #expect(try echo(false) == false)
        for double in [0.1, -2.5e-300, 1.7976931348623157e308, Double.infinity, -Double.infinity] {
            #expect(try echo(double) == double)
        }
        #expect(try db.query("SELECT \(Double.nan) AS v")[0].decode("v", as: Double.self).isNaN)
        let uuid = UUID()
        #expect(try echo(uuid) == uuid)
        let json = try JSON(validating: #"{"a": [1, 2, {"b": null}], "c": "d"}"#)
        let back = try db.query("SELECT \(json) AS v")[0].decode("v", as: JSON.self)
        #expect(try back.decode([String: JSONValueForTest].self) == json.decode([String: JSONValueForTest].self))
    }

    @Test("timestamps keep microseconds and mean the same instant in any session time zone")
    func timestamps() throws {
        let db = try TestDatabase.connect()
        let instant = Date(timeIntervalSince1970: 1_795_000_000.123456)
        for zone in ["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"] {
            try db.execute("SELECT set_config('TimeZone', \(zone), false)")
            let row = try db.query("SELECT \(instant) AS t, \(instant)::text AS shown")[0]
            let back = try row.decode("t", as: Date.self)
            let shown = try row.decode("shown", as: String.self)
            #expect(abs(back.timeIntervalSince(instant)) < 1e-6, "in \(zone), read as \(shown)")
        }
        let fixed = try db.query("SELECT timestamptz '2026-11-27 02:02:31.5+05:30' AS t")[0].decode("t", as: Date.self)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let expected = calendar.date(from: DateComponents(year: 2026, month: 11, day: 26, hour: 20, minute: 32, second: 31))!
        #expect(fixed == expected.addingTimeInterval(0.5))
        let future = try db.query("SELECT 'infinity'::timestamptz AS t")[0].decode("t", as: Date.self)
        #expect(future == .distantFuture)
    }

    @Test("NULL reads as nil into an optional and fails into a non-optional, naming the column")
    func nulls() throws {
        let db = try TestDatabase.connect()
        let row = try db.query("SELECT NULL::bigint AS missing_count, 5 AS present")[0]
        #expect(try row.decode("missing_count", as: Int?.self) == nil)
        #expect(try row.decode("present", as: Int?.self) == 5)
        let nulls = try db.query("""
            SELECT NULL::bigint AS i, NULL::text AS s, NULL::boolean AS b, NULL::timestamptz AS t,
                   NULL::double precision AS d, NULL::jsonb AS j, NULL::uuid AS u, NULL::bigint[] AS a
            """)[0]
        #expect(try nulls.decode("i", as: Int?.self) == nil)
        #expect(try nulls.decode("s", as: String?.self) == nil)
        #expect(try nulls.decode("b", as: Bool?.self) == nil)
        #expect(try nulls.decode("t", as: Date?.self) == nil)
        #expect(try nulls.decode("d", as: Double?.self) == nil)
        #expect(try nulls.decode("j", as: JSON?.self) == nil)
        #expect(try nulls.decode("u", as: UUID?.self) == nil)
        #expect(try nulls.decode("a", as: [Int]?.self) == nil)
        let error = #expect(throws: DatabaseError.self) { try row.decode("missing_count", as: Int.self) }
        #expect(error?.code == .decodingFailed)
        #expect(error?.message.contains("\"missing_count\"") == true)
        #expect(error?.message.contains("Int?") == true)
    }

    @Test("a type that does not fit is an error naming the column and both types")
    func mismatches() throws {
        let db = try TestDatabase.connect()
        let row = try db.query("SELECT 'seven'::text AS label, 7 AS n, now() AS at, '{}'::jsonb AS doc")[0]
        let asInt = #expect(throws: DatabaseError.self) { try row.decode("label", as: Int.self) }
        #expect(asInt?.message.contains("\"label\" is text") == true)
        #expect(asInt?.message.contains("Int") == true)
        #expect(throws: DatabaseError.self) { try row.decode("n", as: String.self) }
        #expect(throws: DatabaseError.self) { try row.decode("at", as: Bool.self) }
        #expect(throws: DatabaseError.self) { try row.decode("doc", as: String.self) }
        let missing = #expect(throws: DatabaseError.self) { try row.decode("nope", as: Int.self) }
        #expect(missing?.message.contains("label, n, at, doc") == true)
        let tooBig = try db.query("SELECT 3000000000::bigint AS big")[0]
        #expect(throws: DatabaseError.self) { try tooBig.decode("big", as: Int32.self) }
    }
}

/// Enough of JSON to compare documents structurally in tests.
indirect enum JSONValueForTest: Codable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValueForTest]), object([String: JSONValueForTest])
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValueForTest].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValueForTest].self)) }
    }
    func encode(to encoder: Encoder) throws {}
}
