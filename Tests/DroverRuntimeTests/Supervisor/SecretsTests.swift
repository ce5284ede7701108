import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The database password reaches libpq and nothing else: not a child's environment, not a job
/// command's, not a log line, not a command's output.
@Suite("Secrets stay secret: children, commands, logs and listings")
struct SecretsTests {
    /// A command that writes what it can see of itself and of its worker into `DIR`.
    static let snoop = """
        #!/bin/sh
        cd "$(dirname "$0")"
        id=$DROVER_JOB_ID
        env > "env-$id"
        tr '\\0' '\\n' < /proc/$PPID/environ > "parent-environ-$id"
        tr '\\0' ' ' < /proc/$PPID/cmdline > "parent-cmdline-$id"
        ls -l /proc/$PPID/fd > "parent-fds-$id" 2>&1
        cat /proc/$PPID/fd/5 > "parent-fd5-$id" 2>&1
        echo $PPID > "ppid-$id"
        """

    static func configuration(scripts: TemporaryDirectory) -> String {
        """
        workers:
          - queues: ["*"]
            threads: 2
            polling_interval: 200ms
        dispatchers:
          - polling_interval: 200ms
        \(SupervisorHarness.fastSupervisor)
        handlers:
          Snoop:
            command: [\(scripts.url.appendingPathComponent("snoop.sh").path)]
        """
    }

    /// Checks that no child of `supervisor` shows `secrets` (or the spec) in its environment or
    /// command line, or still holds the spec's memory file.
    static func expectChildrenKeepNothing(of supervisor: pid_t, secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let children = ProcessTable.children(of: supervisor).map(\.pid)
        #expect(children.count >= 2, "a worker and a dispatcher", sourceLocation: sourceLocation)
        for pid in children {
            let environ = String(decoding: try #require(FileManager.default.contents(atPath: "/proc/\(pid)/environ")), as: UTF8.self)
            let cmdline = String(decoding: try #require(FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")), as: UTF8.self)
            #expect(environ.contains("PATH="), "child \(pid)'s environment was read", sourceLocation: sourceLocation)
            for text in secrets + ["DROVER_CHILD_SPEC", "PGPASSWORD=", "DROVER_DATABASE_URL="] {
                #expect(!environ.contains(text), "child \(pid)'s environment holds \(text)", sourceLocation: sourceLocation)
                #expect(!cmdline.contains(text), "child \(pid)'s command line holds \(text)", sourceLocation: sourceLocation)
            }
            let descriptors = ProcessTable.descriptors(pid)
            #expect(!descriptors.values.contains { $0.contains("drover-child-spec") },
                    "child \(pid) still holds its spec: \(descriptors)", sourceLocation: sourceLocation)
        }
    }

    /// Runs a Snoop job (enqueued by `enqueue`) and checks that what its command saw of itself and
    /// of its worker holds none of `secrets`.
    static func expectCommandSeesNothing(
        scripts: TemporaryDirectory, workers: () throws -> [pid_t], secrets: [String], enqueue: () throws -> Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let id = try enqueue()
        let ppidFile = scripts.url.appendingPathComponent("ppid-\(id)").path
        try waitUntil("job \(id)'s command ran", timeout: .seconds(30)) {
            (try? String(contentsOfFile: ppidFile, encoding: .utf8))?.hasSuffix("\n") == true
        }
        let parent = try #require(pid_t(try String(contentsOfFile: ppidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(try workers().contains(parent), "the command's parent \(parent) is a worker", sourceLocation: sourceLocation)
        for name in ["env", "parent-environ", "parent-cmdline", "parent-fds", "parent-fd5"] {
            let text = try String(contentsOfFile: scripts.url.appendingPathComponent("\(name)-\(id)").path, encoding: .utf8)
            for secret in secrets + ["DROVER_CHILD_SPEC", "PGPASSWORD=", "DROVER_DATABASE_URL=", "drover-child-spec", "databaseURL"] {
                #expect(!text.contains(secret), "\(name) holds \(secret): \(text)", sourceLocation: sourceLocation)
            }
        }
        let environment = try String(contentsOfFile: scripts.url.appendingPathComponent("env-\(id)").path, encoding: .utf8)
        #expect(environment.contains("DROVER_JOB_ID=\(id)\n"), sourceLocation: sourceLocation)
    }

    enum PasswordPlace: String, CaseIterable, CustomStringConvertible {
        /// `password = '…'` in the configuration file's key=value URL.
        case inTheURL
        /// `PGPASSWORD` in the supervisor's environment, the URL without one.
        case pgpassword
        var description: String { rawValue }
    }

    @Test("PostgreSQL with a password the server asks for: children connect, yet no child, command, log line or listing shows it",
          arguments: PasswordPlace.allCases)
    func postgres(place: PasswordPlace) throws {
        try TestDatabase.ensurePasswordRole()
        let (role, secret) = TestDatabase.passwordRole
        let probe = try TestDatabase.connect()
        let (host, port, database) = (probe.target.host, probe.target.port, probe.target.database)
        let base = "host=\(host) port=\(port) dbname=\(database) user=\(role)"
        let url = place == .inTheURL ? "\(base) password = '\(secret)'" : base
        let scripts = try TemporaryDirectory("drover-secrets")
        chmod(scripts.url.path, 0o777)
        try scripts.file(Self.snoop, named: "snoop.sh", mode: 0o755)
        let harness = try SupervisorHarness(
            config: Self.configuration(scripts: scripts), environment: ["PGPASSWORD": place == .pgpassword ? secret : nil],
            databaseInConfig: true, supervisorDatabaseURL: url
        ) { schema, db in
            // The role may use this schema's tables; the grants go with the schema.
            let quoted = SQLIdentifier(schema).quoted
            try db.execute(unsafeRawScript: """
                GRANT USAGE ON SCHEMA \(quoted) TO \(role);
                GRANT ALL ON ALL TABLES IN SCHEMA \(quoted) TO \(role);
                GRANT ALL ON ALL SEQUENCES IN SCHEMA \(quoted) TO \(role);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA \(quoted) TO \(role);
                """)
        }
        try harness.waitForReady()
        try waitUntil("a worker and a dispatcher registered") {
            Set(try harness.registeredChildren().map(\.kind)).isSuperset(of: [.worker, .dispatcher])
        }
        // They connected as the role, which the server asks for the password: it reached libpq.
        let sessions = try harness.registeredChildren().map { "drover \($0.kind.rawValue) \($0.name)" }
        let roles = try harness.db.query("""
            SELECT DISTINCT usename AS name FROM pg_stat_activity WHERE application_name = ANY(\(sessions))
            """).map { try $0.decode("name", as: String?.self) }
        #expect(roles == [role], "the sessions of \(sessions)")

        try Self.expectChildrenKeepNothing(of: harness.pid, secrets: [secret, url])
        try Self.expectCommandSeesNothing(
            scripts: scripts, workers: { try harness.registeredChildren().filter { $0.kind == .worker }.map { pid_t($0.pid) } },
            secrets: [secret, url], enqueue: { try harness.enqueue("Snoop")[0] })

        let firstLine = try #require(harness.log.split(separator: "\n").first { $0.contains("using PostgreSQL") })
        #expect(firstLine.contains(place == .inTheURL ? "password = ***" : base), "\(firstLine)")

        // The listings, given the same URL (and PGPASSWORD), connect and show no password.
        let environment: [String: String?] = ["DROVER_DATABASE_URL": url, "PGPASSWORD": place == .pgpassword ? secret : nil]
        for arguments in [["processes"], ["processes", "--json"], ["status"], ["migrate", "--status"]] {
            let outcome = try DroverBinary.run(arguments + ["--schema", harness.schema], environment: environment)
            #expect(outcome.status == 0, "\(arguments): \(outcome)")
            #expect(!(outcome.stdout + outcome.stderr).contains(secret), "\(arguments): \(outcome)")
        }
        let processes = try DroverBinary.run(["processes", "--schema", harness.schema], environment: environment)
        #expect(processes.stdout.contains("worker"), "\(processes)")

        let stopped = try harness.stop()
        #expect(stopped.status == 0, "\(stopped)")
        #expect(!harness.log.contains(secret), "the log shows the password")
        #expect(!stopped.stdout.contains(secret))
    }

    @Test("SQLite: PGPASSWORD and DROVER_DATABASE_URL of the supervisor reach no child and no command")
    func sqlite() throws {
        let secret = "pg-secret-\(UUID().uuidString)"
        let scripts = try TemporaryDirectory("drover-secrets")
        try scripts.file(Self.snoop, named: "snoop.sh", mode: 0o755)
        let run = try SQLiteRuntimeTests.Run(config: Self.configuration(scripts: scripts), environment: ["PGPASSWORD": secret])
        try run.waitForReady()
        let (store, db) = try run.open()
        try waitUntil("a worker registered") { try !run.workers(on: db).isEmpty }
        try Self.expectChildrenKeepNothing(of: run.process.pid, secrets: [secret])
        try Self.expectCommandSeesNothing(
            scripts: scripts, workers: { try run.workers(on: db).map { pid_t($0.pid) } }, secrets: [secret],
            enqueue: { try store.enqueue(NewJob("Snoop"), on: db) })
        let outcome = try run.stop()
        #expect(outcome.status == 0, "\(outcome)")
        #expect(!outcome.stderr.contains(secret))
    }
}
