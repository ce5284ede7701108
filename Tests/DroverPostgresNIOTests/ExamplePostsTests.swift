import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Examples/Posts: a Hummingbird app that creates a post and enqueues its job in one postgres-nio
/// transaction, and runs the job in its own workers. Built by `swift build --build-tests` (a target
/// of the root package), run here for real against the test PostgreSQL.
@Suite("The Hummingbird example app (Examples/Posts)")
struct ExamplePostsTests {
    /// `posts-example`, beside the drover binary in the build folder.
    static var binary: String {
        URL(fileURLWithPath: DroverBinary.path).deletingLastPathComponent().appendingPathComponent("posts-example").path
    }

    /// One HTTP request through curl: (status, body).
    static func http(_ method: String, _ url: String, json: String? = nil) throws -> (status: Int, body: String) {
        var argv = ["-sS", "--max-time", "10", "--noproxy", "*", "-X", method, "-w", "\n%{http_code}"]
        if let json { argv += ["-H", "Content-Type: application/json", "--data-binary", json] }
        argv.append(url)
        let outcome = try RunningProcess(executable: "/usr/bin/curl", arguments: argv, environment: [:]).wait(timeout: .seconds(20))
        guard outcome.status == 0, let newline = outcome.stdout.lastIndex(of: "\n"),
              let status = Int(outcome.stdout[outcome.stdout.index(after: newline)...]) else {
            throw CurlFailed(description: "curl \(argv.joined(separator: " ")): \(outcome)")
        }
        return (status, String(outcome.stdout[..<newline]))
    }

    struct CurlFailed: Error, CustomStringConvertible { let description: String }

    static func object(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    @Test("POST /posts creates a post and its job at once, the app's worker publishes it; a duplicate leaves no orphan job; a hostile title is stored exactly")
    func endToEnd() throws {
        let binary = Self.binary
        #expect(FileManager.default.isExecutableFile(atPath: binary), "swift build --build-tests builds \(binary)")
        let db = try TestDatabase.connect()
        let schema = TestDatabase.uniqueSchemaName()
        let appSchema = TestDatabase.uniqueSchemaName()
        defer {
            _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE")
            _ = try? db.execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(appSchema)) CASCADE")
        }
        try db.execute("CREATE SCHEMA \(SQLIdentifier(appSchema))")
        let directory = try TemporaryDirectory("drover-posts")
        let config = try directory.file("""
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 200ms
            dispatchers:
              - polling_interval: 200ms
            \(SupervisorHarness.fastSupervisor)
            """)
        var environment = ProcessInfo.processInfo.environment
        environment["DROVER_DATABASE_URL"] = try TestDatabase.url()
        environment["POSTS_DATABASE_URL"] = try TestDatabase.url()
        environment["POSTS_SCHEMA"] = appSchema
        environment["NOTIFY_SOCKET"] = nil

        let migrated = try RunningProcess(executable: binary, arguments: ["migrate", "--schema", schema], environment: environment)
            .wait(timeout: .seconds(60))
        #expect(migrated.status == 0, "\(migrated)")

        let server = try RunningProcess(
            executable: binary, arguments: ["serve", "--listen", "127.0.0.1:0", "--schema", schema], environment: environment)
        defer {
            if server.isRunning {
                kill(server.pid, SIGKILL)
                _ = try? server.wait(timeout: .seconds(10))
            }
        }
        var base = ""
        try waitUntil("the app listens", timeout: .seconds(30)) {
            if let line = server.stdoutSoFar.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                base = String(line.dropFirst("listening on ".count))
            }
            return !base.isEmpty || !server.isRunning
        }
        #expect(!base.isEmpty, "\(server.stderrSoFar)")
        let store = try PostgresJobStore(schema: schema)
        let jobs = SQLIdentifier(schema, "jobs")
        let posts = SQLIdentifier(appSchema, "posts")

        // Created: the post and its job, in one transaction, before any worker runs.
        let created = try Self.http("POST", "\(base)/posts", json: #"{"title": "Hello, world"}"#)
        #expect(created.status == 201, "\(created)")
        let answer = Self.object(created.body)
        let postID = try #require(answer["post"] as? Int, "\(created)")
        let jobID = try #require(answer["job"] as? Int, "\(created)")
        let job = try #require(try store.job(jobID, on: db))
        #expect(job.className == "PublishPost" && job.queue == "posts" && job.state == .ready)
        #expect(try job.arguments?.decode([String: Int].self) == ["postID": postID])
        let unpublished = try Self.http("GET", "\(base)/posts/\(postID)")
        #expect(unpublished.status == 200 && Self.object(unpublished.body)["published"] as? Bool == false, "\(unpublished)")

        // A duplicate title: 409, and neither a second post nor a job for it.
        let duplicate = try Self.http("POST", "\(base)/posts", json: #"{"title": "Hello, world"}"#)
        #expect(duplicate.status == 409, "\(duplicate)")
        #expect(try db.query("SELECT count(*) AS n FROM \(posts)")[0].decode("n", as: Int.self) == 1)
        #expect(try db.query("SELECT count(*) AS n FROM \(jobs)")[0].decode("n", as: Int.self) == 1, "no orphan job")

        // A hostile title is stored, byte for byte.
        let hostile = "'); DROP TABLE posts; -- \"quoted\" \\ <script>alert(1)</script> 🐄 é"
        let hostileJSON = String(decoding: try JSONEncoder().encode(["title": hostile]), as: UTF8.self)
        let second = try Self.http("POST", "\(base)/posts", json: hostileJSON)
        #expect(second.status == 201, "\(second)")
        let secondID = try #require(Self.object(second.body)["post"] as? Int)
        let stored = try db.query("SELECT title FROM \(posts) WHERE id = \(secondID)")[0].decode("title", as: String.self)
        #expect(Array(stored.utf8) == Array(hostile.utf8))
        let shown = try Self.http("GET", "\(base)/posts/\(secondID)")
        #expect(Self.object(shown.body)["title"] as? String == hostile, "\(shown)")
        #expect(try Self.http("GET", "\(base)/posts/999999").status == 404)
        #expect(try Self.http("POST", "\(base)/posts", json: #"{"title": ""}"#).status == 400)

        // The app's workers publish both posts.
        let workers = try RunningProcess(
            executable: binary, arguments: ["start", "--config", config, "--schema", schema], environment: environment)
        defer {
            if workers.isRunning {
                kill(workers.pid, SIGKILL)
                _ = try? workers.wait(timeout: .seconds(10))
            }
        }
        try waitUntil("both posts are published", timeout: .seconds(30)) {
            try store.listJobs(state: .finished, on: db).count == 2 || !workers.isRunning
        }
        for id in [postID, secondID] {
            let post = try Self.http("GET", "\(base)/posts/\(id)")
            #expect(Self.object(post.body)["published"] as? Bool == true, "\(post)\n\(workers.stderrSoFar)")
        }
        kill(workers.pid, SIGTERM)
        let stopped = try workers.wait(timeout: .seconds(30))
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("msg=published"), "\(stopped.stderr)")
        kill(server.pid, SIGTERM)
        let served = try server.wait(timeout: .seconds(30))
        #expect(served.status == 0, "\(served)")
        #expect(!served.stderr.contains(environment["DROVER_DATABASE_URL"]!))
    }
}
