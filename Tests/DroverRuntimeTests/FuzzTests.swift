import DroverPersistence
import DroverQueue
import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

/// Bad input of every kind, generated: mangled configuration files and job arguments never crash
/// Drover, always get an error that names the problem, and never leave anything half-written.
/// The generator is seeded (`DROVER_FUZZ_SEED` repeats a run; the seed is in every failure).
@Suite("Fuzzing: the configuration parser and job arguments")
struct FuzzTests {
    /// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seed: UInt64 = ProcessInfo.processInfo.environment["DROVER_FUZZ_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 1 ... .max)

    /// A configuration with every section, to mangle.
    static let validConfig = """
        database:
          url: sqlite:///var/lib/drover/drover.sqlite3
          schema: drover
        workers:
          - queues: [critical, default, "mail*"]
            threads: 5
            processes: 2
            polling_interval: 1s
        dispatchers:
          - polling_interval: 500ms
            batch_size: 500
        handlers:
          SendReport:
            command: [/usr/local/bin/send-report, --verbose]
            timeout: 5m
            max_attempts: 10
            env: {LANG: C.UTF-8, API_TOKEN: secret}
            concurrency: {key: "report:{kind}", limit: 1, duration: 10m, on_conflict: discard}
        recurring:
          nightly: {class: SendReport, args: {kind: nightly}, schedule: "0 3 * * *", time_zone: Europe/Berlin, catch_up: true}
        supervisor:
          heartbeat_interval: 10s
          alive_threshold: 60s
          shutdown_timeout: 30s
          max_crashes: 3
          max_restarts: 10
          restart_window: 5m
        retention:
          preserve_finished_jobs: true
          clear_finished_after: 1d
        """

    /// Pieces that make parsers work hard: huge and odd numbers, NUL, invalid UTF-8, deep nesting,
    /// anchors and aliases, tabs, very long strings, YAML directives.
    static let nasty: [[UInt8]] = [
        Array("99999999999999999999999999999".utf8), Array("-1".utf8), Array("1e309".utf8), Array(".nan".utf8),
        [0], [0xff, 0xfe], [0xc3], [0xed, 0xa0, 0x80], Array("\t".utf8), Array(": :".utf8), Array("- - -".utf8),
        Array("&a [*a, *a]".utf8), Array("*undefined".utf8), Array("!!binary AAAA".utf8), Array("%YAML 9.9\n---".utf8),
        Array(String(repeating: "[", count: 5000).utf8), Array(String(repeating: "{a: ", count: 2000).utf8),
        Array(String(repeating: "x", count: 200_000).utf8), Array("\u{FEFF}".utf8), Array("\"\\u0000\"".utf8),
        Array("0x7fffffffffffffff".utf8), Array("10000000000000000000000s".utf8), Array("1h1h1h".utf8),
    ]

    static func mangle(_ base: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = base
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: if !bytes.isEmpty { bytes[at] = UInt8.random(in: 0 ... .max, using: &random) }
            case 1: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &random)))
            case 2: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 30)], at: at)
            case 3: bytes.insert(contentsOf: nasty.randomElement(using: &random)!, at: at)
            case 4: bytes = Array(bytes.prefix(at))
            default:
                // A value replaced: after a ": " (or "- "), up to the end of its line.
                if let colon = bytes[at...].firstIndex(of: UInt8(ascii: ":")) {
                    let end = bytes[colon...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                    bytes.replaceSubrange((colon + 1)..<end, with: [UInt8(ascii: " ")] + nasty.randomElement(using: &random)!)
                }
            }
        }
        return bytes
    }

    @Test("5,000 mangled configuration files: each is valid or refused with an error naming the file; none crashes")
    func configurationParser() throws {
        var random = Generator(state: Self.seed)
        let directory = try TemporaryDirectory("drover-fuzz")
        let base = Array(Self.validConfig.utf8)
        var refused = 0
        for round in 0..<5_000 {
            let bytes = Self.mangle(base, &random)
            let path = directory.url.appendingPathComponent("drover.yml").path
            FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o644])
            do {
                _ = try ConfigurationLoader.load(path: path)
            } catch {
                refused += 1
                #expect(error.path == path && !error.message.isEmpty, "seed \(Self.seed), round \(round): \(error)")
                #expect(error.description.hasPrefix(path), "seed \(Self.seed), round \(round): \(error)")
            }
        }
        #expect(refused > 1_000, "the mangling should break most files (seed \(Self.seed))")
    }

    @Test("drover check on 60 mangled files exits 0 or 78 with a message, never with a signal")
    func checkCommand() throws {
        var random = Generator(state: Self.seed ^ 0x5eed)
        let directory = try TemporaryDirectory("drover-fuzz-check")
        for round in 0..<60 {
            let bytes = Self.mangle(Array(Self.validConfig.utf8), &random)
            let path = directory.url.appendingPathComponent("drover-\(round).yml").path
            FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o644])
            let outcome = try DroverBinary.run(["check", "--config", path], timeout: .seconds(30))
            #expect([0, 78].contains(outcome.status), "seed \(Self.seed), round \(round): \(outcome)")
            if outcome.status == 78 {
                #expect(outcome.stderr.contains(path), "seed \(Self.seed), round \(round): \(outcome)")
            }
        }
    }

    @Test("mangled job arguments: valid JSON objects are enqueued whole, anything else is refused and nothing is written")
    func jobArguments() throws {
        var random = Generator(state: Self.seed ^ 0xa165)
        let directory = try TemporaryDirectory("drover-fuzz-args")
        let (store, db) = try SQLiteDriver.open(
            url: "sqlite://" + directory.url.appendingPathComponent("q.sqlite3").path, options: StoreOptions())
        let base = Array(#"{"user": {"id": 42, "tags": ["a", "ü"], "note": "hello\nworld"}, "n": 1.5, "ok": true}"#.utf8)
        var accepted = 0
        for round in 0..<2_000 {
            let bytes = Self.mangle(base, &random)
            let before = try store.listJobs(queue: nil, state: nil, className: nil, limit: 1_000_000, on: db).count
            let text = String(decoding: bytes, as: UTF8.self)
            do {
                let arguments = try JSON(validating: text)
                // A batch with one good job and this one: all or nothing.
                let ids = try store.enqueue([NewJob("Fuzz"), NewJob("Fuzz", arguments: arguments)], on: db)
                accepted += 1
                let stored = try #require(try store.job(ids[1], on: db)?.arguments)
                #expect(stored.text == arguments.text, "seed \(Self.seed), round \(round): stored arguments differ")
            } catch let error as JSONError {
                #expect(!error.message.isEmpty)
            } catch let error as QueueError {
                #expect(error.code == .invalidJob && error.message.hasPrefix("job 2: "), "seed \(Self.seed), round \(round): \(error)")
            } catch {
                Issue.record("seed \(Self.seed), round \(round): \(error) for arguments \(text.debugDescription)")
            }
            let after = try store.listJobs(queue: nil, state: nil, className: nil, limit: 1_000_000, on: db).count
            #expect(after == before || after == before + 2, "seed \(Self.seed), round \(round): half a batch written")
        }
        #expect(accepted > 0)
    }
}
