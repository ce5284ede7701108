import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

/// `JSON(validating:)` accepts exactly what both databases store: strict RFC 8259, checked against
/// PostgreSQL's `jsonb` and SQLite's `json_valid`.
@Suite("JSON validation: strict, as the databases have it")
struct JSONValidationTests {
    static let accepted = [
        #"{}"#, #"[]"#, #"{"a": [1, -2.5e3, 0, 0.1, 1E+2, true, false, null, "x"]}"#, #" {"a":1} "#, "\t[\n]\r",
        #""text""#, #"42"#, #"1e309"#, #"99999999999999999999999999"#, #"{"é": "\u00e9\ud83d\ude00\n\"\\\/"}"#,
        #"{"a": {"a": {"a": {}}}}"#, #"{"dup": 1, "dup": 2}"#,
    ]
    static let refused = [
        "", " ", #"{"a": 1,}"#, #"[1, 2,]"#, #"{"a" 1}"#, #"{a: 1}"#, #"{'a': 1}"#, #"[01]"#, #"[.5]"#, #"[1.]"#, #"[-]"#,
        #"[1e]"#, #"[+1]"#, "{\"a\": \"x\ty\"}", "{\"a\": \"x\u{1}y\"}", #"["\ud800"]"#, #"["\udc00\ud800"]"#, #"["\u0000"]"#,
        #"["\x"]"#, #"["\u12G4"]"#, #"[NaN]"#, #"[Infinity]"#, #"{"a": 1} x"#, #"[1] [2]"#, #"[tru]"#, #"/* c */ 1"#,
        #"["unterminated]"#,
    ]

    @Test("valid documents are accepted, and both databases accept them too")
    func accepted() throws {
        let sqlite = try SQLiteConnection(path: ":memory:", schema: "drover")
        try TestDatabase.withSchema { _, pg in
            for text in Self.accepted {
                #expect(throws: Never.self, "\(text.debugDescription)") { _ = try JSON(validating: text) }
                let inPostgres = try pg.query("SELECT \(text)::jsonb IS NOT NULL AS ok")[0].decode("ok", as: Bool.self)
                let inSQLite = try sqlite.query("SELECT json_valid(\(text)) AS ok")[0].decode("ok", as: Int.self)
                #expect(inPostgres && inSQLite == 1, "\(text.debugDescription)")
            }
        }
    }

    @Test("trailing commas, raw control characters, lone surrogates, \\u0000 and the like are refused, as PostgreSQL refuses them")
    func refused() throws {
        try TestDatabase.withSchema { _, pg in
            for text in Self.refused {
                #expect(throws: JSONError.self, "\(text.debugDescription)") { _ = try JSON(validating: text) }
                #expect(throws: DatabaseError.self, "PostgreSQL should refuse \(text.debugDescription) too") {
                    try pg.withTransaction { tx in _ = try tx.query("SELECT \(text)::jsonb") }
                }
            }
        }
    }

    @Test("errors say what is wrong and where; nesting deeper than 512 levels is refused without exhausting the stack")
    func messages() throws {
        #expect(throws: JSONError.self) { _ = try JSON(validating: String(repeating: "[", count: 100_000)) }
        let deep = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { _ = try JSON(validating: deep) }
        do {
            _ = try JSON(validating: #"{"a": [1, 2,], "b": 3}"#)
            Issue.record("a trailing comma was accepted")
        } catch {
            #expect(error.message == "not valid JSON: a trailing comma at byte 13")
        }
        do {
            _ = try JSON(validating: String(repeating: "[", count: 513))
            Issue.record("deep nesting was accepted")
        } catch {
            #expect(error.message == "not valid JSON: nested more than 512 levels deep at byte 513")
        }
    }

    @Test("an object's members come back in order with each value's text as written; anything but an object is refused")
    func members() throws {
        let object = try JSON(validating: #" { "a\"b" : 12345678901234567890, "n": {"x": [1, {"y": "}"}]}, "s": "\u00e9\n", "a\"b": null } "#)
        let members = try object.objectMembers()
        #expect(members.map(\.name) == ["a\"b", "n", "s", "a\"b"], "names unescaped, repeats kept for the caller to refuse")
        #expect(members.map(\.value.text) == ["12345678901234567890", #"{"x": [1, {"y": "}"}]}"#, #""\u00e9\n""#, "null"])
        #expect(try JSON(validating: "{}").objectMembers().isEmpty)
        for text in ["[1]", "\"x\"", "3"] {
            #expect(throws: JSONError.self, "\(text)") { _ = try JSON(validating: text).objectMembers() }
        }
    }
}
