import DroverPersistence
import DroverQueue
import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

/// Bad input of every kind, generated: mangled configuration files and job arguments never crash
/// Drover, always get an error that names the problem, and never leave anything half-written.
/// The generator is seeded (`DROVER_FUZZ_SEED` repeats a run; the seed is in every failure).
@Suite("Fuzzing: the configuration parser, job arguments and every option of drover enqueue")
struct FuzzTests {
    typealias Generator = SplitMix

    /// A fixed seed unless `DROVER_FUZZ_SEED` gives one (a number, or `random`): make test runs
    /// the same cases every time.
    static let seed: UInt64 = {
        switch ProcessInfo.processInfo.environment["DROVER_FUZZ_SEED"] {
        case "random": return UInt64.random(in: 1 ... .max)
        case let text?: return UInt64(text) ?? 20_261_202
        case nil: return 20_261_202
        }
    }()

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
            rate_limit: {key: "smtp:{kind}", limit: 10, period: 1s}
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

    /// Values at and past every edge an option of `drover enqueue` has.
    static let optionValues: [String: [String]] = [
        "--priority": ["-32768", "32767", "32768", "-32769", "9223372036854775807", "-9223372036854775808", "99999999999999999999",
                       "0x10", "1_000", "+5", "1e3", "", " 1", "\u{0661}"],
        "--max-attempts": ["1", "1000", "0", "1001", "-1", "9223372036854775807", "18446744073709551616", "nan"],
        "--at": ["@10000000000000", "@-10000000000000", "@1e300", "@-1e300", "@nan", "@inf", "@253402300799", "@253402300800",
                 "@-62135596800", "@-62135596801", "9999-12-31T23:59:59Z", "9999-12-31T23:59:60Z", "10000-01-01T00:00:00Z",
                 "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                 "2028-02-29T00:00:00+14:00", "2026-11-27T03:00:00+99:00", "2026-11-27 03:00", "9999-12-31 23:59", "@", ""],
        "--in": ["0s", "1ms", "-1s", "3000000d", "2914000d", "99999999999999999999d", "1e9d", "1h1h", "5m30s", "ms", ""],
        "--timeout": ["1s", "7d", "999ms", "7d1ms", "0s", "-5s", "99999999999999999999s", "1e309s"],
        "--queue": ["default", String(repeating: "q", count: 100), String(repeating: "q", count: 101), "*", "a b", "-a", ""],
        "--unique-key": ["k", String(repeating: "é", count: 1000), String(repeating: "é", count: 1001), ""],
        "--args": ["{}", "[]", "{\"a\": 1e309}", String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
                   // One argument holds at most 128 KiB (MAX_ARG_STRLEN): 1 MiB is the API's to test.
                   "{\"p\": \"" + String(repeating: "x", count: 131_000) + "\"}",
                   "{\"\\u0000\": 1}", "\"text\"", "null", ""],
    ]

    @Test("drover enqueue with 150 options at and past their edges, mangled: each exits 0 or 64 with a message, never a trap; every listing still works")
    func enqueueOptions() throws {
        var random = Generator(state: Self.seed ^ 0x0e17)
        let directory = try TemporaryDirectory("drover-fuzz-options")
        let environment = ["DROVER_DATABASE_URL": "sqlite://" + directory.url.appendingPathComponent("q.sqlite3").path]
        let options = Self.optionValues.keys.sorted()
        var accepted = 0
        for round in 0..<150 {
            let option = options.randomElement(using: &random)!
            var value = Self.optionValues[option]!.randomElement(using: &random)!
            if Bool.random(using: &random) && value.utf8.count < 200 {
                // No NUL (argv cannot hold one), and within the 128 KiB one argument may have.
                value = String(decoding: Self.mangle(Array(value.utf8), &random).filter { $0 != 0 }.prefix(100_000), as: UTF8.self)
            }
            let shown = value.count > 80 ? String(value.prefix(80)) + "… (\(value.utf8.count) bytes)" : value
            let outcome: DroverBinary.Outcome
            do {
                outcome = try DroverBinary.run(["enqueue", "Fuzz", "\(option)=\(value)"], environment: environment, timeout: .seconds(30))
            } catch {
                Issue.record("seed \(Self.seed), round \(round): \(option)=\(shown): \(error)")
                continue
            }
            #expect([0, 64].contains(outcome.status), "seed \(Self.seed), round \(round): \(option)=\(shown): \(outcome)")
            if outcome.status == 64 {
                #expect(outcome.stderr.contains("rror"), "seed \(Self.seed), round \(round): \(option)=\(shown): \(outcome)")
            } else {
                accepted += 1
            }
        }
        #expect(accepted > 10, "seed \(Self.seed): some values are fine")
        for listing in [["jobs", "list"], ["jobs", "list", "--json"], ["queues", "list"]] {
            let outcome = try DroverBinary.run(listing + ["--limit", "1000"].filter { _ in listing.first == "jobs" }, environment: environment)
            #expect(outcome.status == 0, "seed \(Self.seed): \(listing) after the fuzzing: \(outcome)")
        }
    }
}
