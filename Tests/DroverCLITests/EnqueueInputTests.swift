import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover enqueue` fed from files and pipes, on both backends: arguments too long for a command
/// line (`--args -`, `--args @FILE`), and one job per line (`--jsonl`) in batches, where a bad
/// line is named by its number and no batch is half written.
@Suite("drover enqueue from files and pipes")
struct EnqueueInputTests {
    typealias Backend = HostileArgumentsTests.Backend
    typealias Target = HostileArgumentsTests.Target

    /// The job's arguments as `drover jobs show --json` prints them (a JSON object).
    static func arguments(_ target: Target, _ id: String) throws -> [String: Any] {
        let shown = try target.run(["jobs", "show", id, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
        return try #require(object?["arguments"] as? [String: Any], "\(shown)")
    }

    static func jobCount(_ target: Target) throws -> Int {
        let listed = try target.run(["jobs", "list", "--limit", "100000", "--json"])
        return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any], "\(listed)").count
    }

    @Test("--args - and --args @FILE take arguments of up to 1 MiB, past what a command line holds; more, bad JSON or no file is exit 64 naming it",
          arguments: Backend.allCases)
    func argumentsFromInput(_ backend: Backend) throws {
        let target = try Target(backend)
        // A million bytes: a command line takes at most 128 KiB in one argument.
        let blob = String(repeating: "é", count: 499_980)
        let document = try JSONSerialization.data(withJSONObject: ["blob": blob, "n": 7])
        let piped = try target.run(["enqueue", "Import", "--args", "-"], stdin: document + Data("\n".utf8))
        #expect(piped.status == 0, "\(piped)")
        let pipedID = piped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try Self.arguments(target, pipedID)["blob"] as? String == blob)

        let directory = try TemporaryDirectory("drover-args-file")
        let file = directory.url.appendingPathComponent("args.json")
        try document.write(to: file)
        let fromFile = try target.run(["enqueue", "Import", "--args", "@" + file.path])
        #expect(fromFile.status == 0, "\(fromFile)")
        #expect(try Self.arguments(target, fromFile.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["n"] as? Int == 7)

        let tooLarge = try JSONSerialization.data(withJSONObject: ["blob": String(repeating: "x", count: 1_048_576)])
        let refused = try target.run(["enqueue", "Import", "--args", "-"], stdin: tooLarge)
        #expect(refused.status == 64 && refused.stderr.contains("the limit is 1048576 (1 MiB)"), "\(refused)")
        let notJSON = try target.run(["enqueue", "Import", "--args", "-"], stdin: Data("{\"a\": ".utf8))
        #expect(notJSON.status == 64 && notJSON.stderr.contains("--args - (standard input) is not valid JSON"), "\(notJSON)")
        let missing = try target.run(["enqueue", "Import", "--args", "@" + directory.url.appendingPathComponent("none.json").path])
        #expect(missing.status == 64 && missing.stderr.contains("none.json: cannot read the file"), "\(missing)")
        #expect(try Self.jobCount(target) == 2, "nothing written by the refused ones")
    }

    /// `count` lines of jobs: class Line, queue q<i % 3>, priority i % 5, arguments {"i": i, …}.
    static func lines(_ range: ClosedRange<Int>) -> [String] {
        range.map { #"{"class": "Line", "queue": "q\#($0 % 3)", "priority": \#($0 % 5), "arguments": {"i": \#($0), "big": 12345678901234567890, "text": "tab\tquote\" \u00e9 \ud83d\ude00"}}"# }
    }

    @Test("--jsonl enqueues one job per line in batches, in order, with each line's values; blank lines and CRLF are fine",
          arguments: Backend.allCases)
    func jsonLines(_ backend: Backend) throws {
        let target = try Target(backend)
        var input = Self.lines(1...2_500)
        input.insert("", at: 1200)
        let data = Data((input.joined(separator: "\r\n") + "\r\n").utf8)
        let done = try target.run(["enqueue", "--jsonl", "-", "--batch-size", "1000"], stdin: data)
        #expect(done.status == 0, "\(done)")
        let ids = done.stdout.split(separator: "\n").compactMap { Int($0) }
        #expect(ids.count == 2_500 && ids == ids.sorted() && Set(ids).count == 2_500, "one id a line, in order")
        #expect(done.stderr.contains("enqueued 2500 jobs"), "\(done)")
        let shown = try target.run(["jobs", "show", String(ids[1_499]), "--json"])
        let job = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        #expect(job["queue"] as? String == "q0" && job["priority"] as? Int == 0 && job["class"] as? String == "Line", "\(job)")
        #expect(shown.stdout.contains("12345678901234567890"), "every digit kept\n\(shown.stdout)")
        let arguments = try #require(job["arguments"] as? [String: Any])
        #expect(arguments["i"] as? Int == 1_500 && arguments["text"] as? String == "tab\tquote\" é 😀")

        // The command's class and options are the defaults for what a line leaves out.
        let defaults = try target.run(["enqueue", "Fallback", "--queue", "slow", "--jsonl", "-"], stdin: Data("""
            {"arguments": {"x": 1}}
            {"class": "Own", "timeout": "1m30s", "trace_context": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
            """.utf8))
        #expect(defaults.status == 0, "\(defaults)")
        let two = defaults.stdout.split(separator: "\n").map(String.init)
        let first = try target.run(["jobs", "show", two[0], "--json"]).stdout
        #expect(first.contains("\"class\":\"Fallback\"") && first.contains("\"queue\":\"slow\""), "\(first)")
        let claimed = try target.claim(["slow"])
        #expect(claimed.map(\.className) == ["Fallback", "Own"], "\(claimed)")
        #expect(claimed.last?.traceContext == ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"])
        let badTrace = try target.run(["enqueue", "A", "--jsonl", "-"], stdin: Data(#"{"trace_context": {"traceparent": 1}}"#.utf8))
        #expect(badTrace.status == 64 && badTrace.stderr.contains("line 1: trace_context must be a JSON object of strings"), "\(badTrace)")
    }

    @Test("--jsonl: a batch with bad lines is not written; every bad line of it is named with its number, and what was written is said",
          arguments: Backend.allCases)
    func badLineStops(_ backend: Backend) throws {
        let target = try Target(backend)
        var input = Self.lines(1...2_000)
        input[1_499] = #"{"class": "Line", "priority": 99999}"#
        input[1_649] = #"{"class": "Line", "colour": "red"}"#
        input[1_799] = #"{"class": "Line", "arguments": {"unterminated": tru"#
        let outcome = try target.run(["enqueue", "--jsonl", "-", "--batch-size", "1000"], stdin: Data(input.joined(separator: "\n").utf8))
        #expect(outcome.status == 64, "\(outcome)")
        #expect(outcome.stderr.contains("line 1500: priority 99999 is not an integer from -32768 to 32767"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("line 1650: unknown key \"colour\""))
        #expect(outcome.stderr.contains("line 1800: not valid JSON"))
        #expect(outcome.stderr.contains("nothing from line 1001 on was enqueued (lines 1 to 1000 were)"), "\(outcome.stderr)")
        #expect(outcome.stdout.split(separator: "\n").count == 1_000)
        #expect(try Self.jobCount(target) == 1_000, "the first batch only")
    }

    @Test("--jsonl --skip-bad skips each bad line, saying which, and enqueues the rest; --json reports them",
          arguments: Backend.allCases)
    func skipBad(_ backend: Backend) throws {
        let target = try Target(backend)
        var input = Self.lines(1...30)
        input[4] = "[1, 2]"
        input[9] = #"{"class": "no spaces allowed"}"#
        input[19] = #"{"queue": "q"}"#
        let outcome = try target.run(["enqueue", "--jsonl", "-", "--batch-size", "7", "--skip-bad", "--json"],
                                     stdin: Data(input.joined(separator: "\n").utf8))
        #expect(outcome.status == 0, "\(outcome)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any], "\(outcome)")
        #expect(report["enqueued"] as? Int == 27)
        let skipped = try #require(report["skipped"] as? [[String: Any]])
        #expect(skipped.map { $0["line"] as? Int } == [5, 10, 20])
        #expect((skipped[1]["error"] as? String)?.contains("is not a valid class name") == true, "\(skipped)")
        #expect((skipped[2]["error"] as? String)?.contains("the job has no class") == true, "\(skipped)")
        #expect(outcome.stderr.contains("skipped line 5: a line must be a JSON object"), "\(outcome.stderr)")
        #expect(try Self.jobCount(target) == 27)
    }

    @Test("bad combinations are usage errors: --args with --jsonl, --skip-bad without it, a batch size out of range, no file",
          arguments: [Backend.sqlite])
    func usage(_ backend: Backend) throws {
        let target = try Target(backend)
        for (arguments, words) in [
            (["enqueue", "--jsonl", "-", "--args", "{}"], "--args and --jsonl do not go together"),
            (["enqueue", "A", "--skip-bad"], "--skip-bad goes with --jsonl"),
            (["enqueue", "--jsonl", "-", "--batch-size", "0"], "--batch-size 0 is not from 1 to 10000"),
            (["enqueue", "--jsonl", "/nonexistent/jobs.jsonl"], "--jsonl /nonexistent/jobs.jsonl: there is no such file"),
            (["enqueue"], "give the job's class"),
        ] {
            let outcome = try target.run(arguments)
            #expect(outcome.status == 64 && outcome.stderr.contains(words), "\(arguments): \(outcome)")
        }
    }
}
