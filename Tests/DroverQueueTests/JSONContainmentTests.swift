import DroverPersistence
import DroverTestSupport
import Foundation
import PropertyBased
import Testing

/// `drover_json_contains` (SQLite's stand-in for `jsonb @>`, which `--args-contain` filters by)
/// against PostgreSQL's own operator: random pairs of JSON documents, most of them a document and
/// a piece of it, so that both answers come up. A fixed seed in `make test`;
/// DROVER_JSON_SEED=random (or a printed seed) for others.
@Suite("JSON containment on SQLite is PostgreSQL's @>")
struct JSONContainmentTests {
    static let defaultSeed = "qvEjZm0ACtkjFJpWm7GWA1dL2zqDrjsEJhzy4P0C0V8="
    static let pairs = 3_000

    /// A random JSON value of at most `depth` levels, from a small alphabet of keys and scalars
    /// so that pieces match often.
    static func value(_ rng: inout Xoshiro, depth: Int) -> Any {
        let scalars: [Any] = [1, 2, 1.5, -3, 0, "a", "b", "é", "", true, false, NSNull()]
        switch Int.random(in: 0..<(depth > 0 ? 6 : 3), using: &rng) {
        case 0, 1, 2: return scalars.randomElement(using: &rng)!
        case 3, 4:
            var object: [String: Any] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                object[["k", "n", "x", "é"].randomElement(using: &rng)!] = value(&rng, depth: depth - 1)
            }
            return object
        default:
            return (0..<Int.random(in: 0...3, using: &rng)).map { _ in value(&rng, depth: depth - 1) }
        }
    }

    /// A piece of `value` (keys and elements dropped, deeper pieces taken), or now and then a change.
    static func piece(of value: Any, _ rng: inout Xoshiro) -> Any {
        if Int.random(in: 0..<8, using: &rng) == 0 { return Self.value(&rng, depth: 1) }
        if let object = value as? [String: Any] {
            return object.filter { _ in Bool.random(using: &rng) }.mapValues { piece(of: $0, &rng) }
        }
        if let array = value as? [Any] {
            return array.filter { _ in Bool.random(using: &rng) }.map { piece(of: $0, &rng) }.shuffled(using: &rng)
        }
        return value
    }

    static func text(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]), as: UTF8.self)
    }

    @Test("random pairs: the Swift rule, SQLite's function and PostgreSQL's @> give the same answer")
    func agrees() throws {
        let given = ProcessInfo.processInfo.environment["DROVER_JSON_SEED"]
        let seed = given.map { $0 == "random" ? Xoshiro().currentSeed : $0 } ?? Self.defaultSeed
        guard var rng = Xoshiro(seed: seed) else {
            Issue.record("DROVER_JSON_SEED=\(seed) is not a seed: give one this test printed, or random")
            return
        }
        var cases: [(String, String)] = []
        for _ in 0..<Self.pairs {
            let haystack = Self.value(&rng, depth: 3)
            let needle = Bool.random(using: &rng) ? Self.piece(of: haystack, &rng) : Self.value(&rng, depth: 2)
            cases.append((try Self.text(haystack), try Self.text(needle)))
        }
        let directory = try TemporaryDirectory("drover-json-contains")
        let sqlite = try SQLiteConnection(path: directory.url.appendingPathComponent("j.sqlite3").path)
        var yes = 0
        try TestDatabase.withSchema(migrate: false) { _, pg in
            let answers = try pg.query("""
                SELECT a::jsonb @> b::jsonb AS contained FROM unnest(\(cases.map(\.0)), \(cases.map(\.1))) WITH ORDINALITY AS t(a, b, n) ORDER BY n
                """).map { try $0.decode("contained", as: Bool.self) }
            for ((haystack, needle), postgres) in zip(cases, answers) {
                let swift = JSONContainment.contains(haystack, needle)
                let lite = try sqlite.query("SELECT drover_json_contains(\(haystack), \(needle)) AS c")[0].decode("c", as: Bool?.self)
                if postgres { yes += 1 }
                guard swift == postgres && lite == postgres else {
                    Issue.record("""
                        \(haystack) @> \(needle): PostgreSQL \(postgres), Swift \(String(describing: swift)), SQLite \(String(describing: lite))
                        (seed \(seed); run again with DROVER_JSON_SEED=\(seed))
                        """)
                    return
                }
            }
        }
        #expect(yes > Self.pairs / 5 && yes < Self.pairs * 4 / 5, "both answers come up: \(yes) of \(Self.pairs) contained")
        // Not JSON: no answer, rather than a wrong one.
        #expect(JSONContainment.contains("{", "{}") == nil)
        #expect(try sqlite.query("SELECT drover_json_contains('{\"a\": 1}', 'nope') AS c")[0].decode("c", as: Bool?.self) == nil)
    }
}
