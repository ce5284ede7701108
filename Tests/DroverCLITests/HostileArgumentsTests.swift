import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Values a user types at the edge of what Drover takes, and past it, on both backends: a usage
/// error (exit 64) that names the value and the range, nothing written, and every listing still
/// readable afterwards. Never a trap.
@Suite("Hostile arguments: every value typed at the command line is checked at the edge")
struct HostileArgumentsTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case postgresql, sqlite
        var testDescription: String { rawValue }
    }

    /// A database of the backend's, and `drover` run against it.
    final class Target {
        let environment: [String: String?]
        let flags: [String]
        let url: String
        let schema: String
        private let keep: AnyObject?

        init(_ backend: Backend) throws {
            switch backend {
            case .postgresql:
                schema = TestDatabase.uniqueSchemaName()
                url = try TestDatabase.url()
                flags = ["--schema", schema]
                keep = nil
            case .sqlite:
                let directory = try TemporaryDirectory("drover-cli")
                url = "sqlite://" + directory.url.appendingPathComponent("q.sqlite3").path
                schema = "drover"
                flags = []
                keep = directory
            }
            environment = ["DROVER_DATABASE_URL": url]
            let migrated = try run(["migrate"])
            try #require(migrated.status == 0, "migrate: \(migrated)")
        }

        /// The store, to set a scene.
        func admin() throws -> any QueueAdmin { try StoreFactory.openAdmin(url: url, options: StoreOptions(schema: schema)) }

        /// Fails `ids` (ready jobs) for good with `error`, as a worker would.
        func failJobs(_ ids: [Int], error: JobFailure) throws {
            try StoreScene.failJobs(ids, error: error, url: url, schema: schema)
        }

        /// Claims every ready job of `queues`, as a worker would: what a worker gets.
        func claim(_ queues: QueueSelection) throws -> [ClaimedJob] { try StoreScene.claim(queues, url: url, schema: schema) }

        func run(_ arguments: [String], stdin: Data? = nil) throws -> DroverBinary.Outcome {
            try DroverBinary.run(arguments + flags, environment: environment, timeout: .seconds(60), stdin: stdin)
        }

        /// `drover` with arguments passed as bytes: each is a printf format, expanded by a shell
        /// (Foundation passes only valid UTF-8).
        func runBytes(_ formats: [String]) throws -> DroverBinary.Outcome {
            var script = "exec \"$0\""
            for index in formats.indices { script += " \"$(printf -- \"$\(index + 1)\")\"" }
            for flag in flags { script += " '\(flag)'" }
            let process = try RunningProcess(
                executable: "/bin/sh", arguments: ["-c", script, DroverBinary.path] + formats,
                environment: ProcessInfo.processInfo.environment.merging(environment.compactMapValues { $0 }) { $1 })
            return try process.wait(timeout: .seconds(30))
        }
    }

    static let range = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"

    @Test("times and delays past the calendar Drover stores are refused by name; the last and first storable times are taken, and listed", arguments: Backend.allCases)
    func times(_ backend: Backend) throws {
        let target = try Target(backend)
        for (arguments, message) in [
            (["--at", "@10000000000000"], "--at \"@10000000000000\" is outside the times a job can run at: give one from \(Self.range)"),
            (["--at", "@-62135596801"], "--at \"@-62135596801\" is outside the times a job can run at"),
            (["--at", "@1e300"], "--at \"@1e300\" is outside the times a job can run at"),
            (["--at", "10000-01-01T00:00:00Z"], "--at \"10000-01-01T00:00:00Z\" is outside the times a job can run at"),
            (["--at", "2026-02-30T00:00:00Z"], "--at \"2026-02-30T00:00:00Z\" is not a time"),
            (["--in", "3000000d"], "--in \"3000000d\" is later than the last time a job can run at, 9999-12-31T23:59:59Z"),
            (["--in", "99999999999999999999d"], "--in \"99999999999999999999d\" is not a duration"),
            (["--timeout", "8d"], "--timeout \"8d\" is not a duration from 1s to 7d"),
            (["--priority", "32768"], "priority 32768 is not an integer from -32768 to 32767"),
            (["--priority=-32769"], "priority -32769 is not an integer from -32768 to 32767"),
            (["--max-attempts", "1001"], "max_attempts 1001 is not an integer from 1 to 1000"),
            (["--max-attempts", "9223372036854775807"], "max_attempts 9223372036854775807 is not an integer from 1 to 1000"),
            (["--priority", "99999999999999999999"], "The value '99999999999999999999' is invalid for '--priority <n>'"),
        ] {
            let outcome = try target.run(["enqueue", "X"] + arguments)
            #expect(outcome.status == 64 && outcome.stderr.contains(message), "\(arguments): \(outcome)")
            #expect(outcome.stdout.isEmpty)
        }
        // The edges themselves are times like any other.
        for at in ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"] {
            let outcome = try target.run(["enqueue", "X", "--at", at])
            #expect(outcome.status == 0, "\(at): \(outcome)")
        }
        let listed = try target.run(["jobs", "list"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stdout.contains("runs at 9999-12-31 23:59:59Z"), "\(listed)")
        #expect(listed.stdout.split(separator: "\n").count == 3, "a header and two jobs: nothing refused was written\n\(listed.stdout)")
        let json = try target.run(["jobs", "list", "--json"])
        #expect(json.status == 0 && json.stdout.contains("9999-12-31T23:59:59Z"), "\(json)")
    }

    @Test("arguments that are not UTF-8 are refused, naming the argument and the byte, never replaced with U+FFFD", arguments: Backend.allCases)
    func notUTF8(_ backend: Backend) throws {
        let target = try Target(backend)
        let outcome = try target.runBytes(["enqueue", "T", "--args", #"{"x":"\377\376"}"#])
        #expect(outcome.status == 64, "\(outcome)")
        #expect(outcome.stderr.contains("argument 4 (the value of --args) is not UTF-8 text: byte 7 starts an invalid sequence."),
                "\(outcome)")
        let joined = try target.runBytes(["enqueue", "T", #"--args={"x":"a\303"}"#])
        #expect(joined.status == 64 && joined.stderr.contains("argument 3 (--args=…) is not UTF-8 text: byte 15"), "\(joined)")
        // Where, never what: the bytes of a database URL could be a password's.
        let url = try target.runBytes(["jobs", "list", "--database-url", #"postgresql://u:s\377cret@h/d"#])
        #expect(url.status == 64 && url.stderr.contains("(the value of --database-url) is not UTF-8 text: byte 17"), "\(url)")
        #expect(!url.stderr.contains("cret") && !url.stderr.contains("0xFF") && !url.stderr.contains("\\xFF"), "\(url)")
        let queue = try target.runBytes(["enqueue", "T", "--queue", #"caf\351"#])
        #expect(queue.status == 64 && queue.stderr.contains("(the value of --queue) is not UTF-8 text: byte 4"), "\(queue)")
        // Valid UTF-8 beyond ASCII is text like any other.
        let fine = try target.runBytes(["enqueue", "T", "--args", #"{"x":"\303\251\360\237\230\200"}"#])
        #expect(fine.status == 0, "\(fine)")
        let id = try #require(Int(fine.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(fine)")
        let shown = try target.run(["jobs", "show", String(id), "--json"])
        #expect(shown.stdout.contains("é😀"), "\(shown)")
    }

    @Test("job ids out of range are usage errors that name the id, for every command that takes one", arguments: Backend.allCases)
    func ids(_ backend: Backend) throws {
        let target = try Target(backend)
        for command in [["jobs", "show"], ["jobs", "cancel"], ["failed", "retry"], ["failed", "discard"]] {
            for id in ["0", "-1", "-9223372036854775808"] {
                let outcome = try target.run(command + [id])
                #expect(outcome.status == 64 && outcome.stderr.contains("job id \(id) is out of range: ids are whole numbers from 1 to 9223372036854775807"),
                        "\(command) \(id): \(outcome)")
            }
            let huge = try target.run(command + ["9223372036854775808"])
            #expect(huge.status == 64 && huge.stderr.contains("9223372036854775808"), "\(command): \(huge)")
            // The largest id is an id: there is no such job (65), nothing traps.
            let largest = try target.run(command + ["9223372036854775807"])
            #expect(largest.status == 65 && largest.stderr.contains("no job with id 9223372036854775807"), "\(command): \(largest)")
        }
    }
}
