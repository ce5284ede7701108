import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover migrate` and `drover version`, run as real processes against the test PostgreSQL.
@Suite("drover migrate")
struct MigrateCommandTests {
    private func appliedVersions(_ schema: String) throws -> [Int] {
        try TestDatabase.connect()
            .query("SELECT version FROM \(SQLIdentifier(schema, "schema_migrations")) ORDER BY version")
            .map { try $0.decode("version", as: Int.self) }
    }

    private func dropping<R>(_ schema: String, _ body: () throws -> R) throws -> R {
        defer { _ = try? TestDatabase.connect().execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        return try body()
    }

    @Test("migrate creates the schema; the second run is a no-op")
    func migrateTwice() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let url = try TestDatabase.url()
        try dropping(schema) {
            let first = try DroverBinary.run(["migrate", "--database-url", url, "--schema", schema])
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout.contains("applied migration 1 (data_model)"))
            #expect(first.stdout.contains("schema \"\(schema)\" is now at version \(DroverSchema.latestVersion)"))

            let second = try DroverBinary.run(["migrate", "--database-url", url, "--schema", schema])
            #expect(second.status == 0, "\(second)")
            #expect(!second.stdout.contains("applied migration"))
            #expect(second.stdout.contains("is up to date at version \(DroverSchema.latestVersion)"))
            #expect(try appliedVersions(schema) == DroverSchema.migrations.map(\.version))

            let status = try DroverBinary.run(["migrate", "--status", "--database-url", url, "--schema", schema])
            #expect(status.status == 0)
            #expect(status.stdout.contains("1\tdata_model\tapplied"))
        }
    }

    @Test("two drover migrate started at once both succeed and apply each migration once")
    func twoAtOnce() throws {
        let schema = TestDatabase.uniqueSchemaName()
        let url = try TestDatabase.url()
        try dropping(schema) {
            let a = try DroverBinary.start(["migrate", "--database-url", url, "--schema", schema])
            let b = try DroverBinary.start(["migrate", "--database-url", url, "--schema", schema])
            let outcomes = [try a.wait(), try b.wait()]
            for outcome in outcomes { #expect(outcome.status == 0, "\(outcome)") }
            let applyCount = outcomes.map { $0.stdout.components(separatedBy: "applied migration 1 ").count - 1 }.reduce(0, +)
            #expect(applyCount == 1, "exactly one of them applied migration 1")
            #expect(try appliedVersions(schema) == DroverSchema.migrations.map(\.version))
        }
    }

    @Test("bad arguments exit 64 and say what to type instead", arguments: [
        (["migarte"], "unknown command 'migarte'. Did you mean 'drover migrate'?"),
        (["frobnicate"], "unknown command 'frobnicate'. The commands are: start, check, migrate, enqueue, jobs, failed, queues, recurring, concurrency, processes, status, version."),
        (["migrate", "--bogus"], "Unknown option '--bogus'"),
        (["migrate", "--schema", "Bad-Name"], "lowercase letters"),
        (["migrate", "--database-url", ""], "--database-url is empty"),
        (["migrate", "--database-url"], "Missing value for '--database-url <url>'"),
        (["version", "extra"], "Unexpected argument 'extra'"),
    ])
    func badArguments(_ arguments: [String], _ expected: String) throws {
        let outcome = try DroverBinary.run(arguments)
        #expect(outcome.status == 64, "\(outcome)")
        #expect(outcome.stderr.contains(expected), "\(outcome)")
        #expect(outcome.stderr.contains("--help") || outcome.stderr.contains("Usage:"), "\(outcome)")
    }

    @Test("an unreachable database exits 69 with a distinct message for each cause, never the password")
    func unavailableDatabase() throws {
        let probe = try TestDatabase.connect()
        let (host, port, database) = (probe.target.host, probe.target.port, probe.target.database)
        try TestDatabase.ensurePasswordRole()
        let secret = "Wr0ng-Pa55word"
        let cases: [(url: String, says: String)] = [
            ("postgresql://drover_password_test:\(secret)@/\(database)?host=\(host)&port=\(port)", "refused the credentials"),
            ("postgresql://nobody:\(secret)@127.0.0.1:1/\(database)", "check that PostgreSQL is running"),
            ("postgresql://root:\(secret)@/drover_missing_db?host=\(host)&port=\(port)", "the database does not exist"),
        ]
        var messages: Set<String> = []
        for (url, says) in cases {
            let outcome = try DroverBinary.run(["migrate", "--database-url", url])
            #expect(outcome.status == 69, "\(outcome)")
            #expect(outcome.stderr.contains(says), "\(outcome)")
            #expect(outcome.stderr.contains("(the database came from --database-url)"))
            #expect(!outcome.stderr.contains(secret) && !outcome.stdout.contains(secret), "the password leaked: \(outcome)")
            messages.insert(outcome.stderr)
        }
        #expect(messages.count == cases.count)
    }

    @Test("a malformed URL is a usage error on the command line and a configuration error in the environment")
    func malformedURL() throws {
        let url = "postgresql://user:Sup3r-Secret-pw@host:port/db"
        let flag = try DroverBinary.run(["migrate", "--database-url", url])
        #expect(flag.status == 64, "\(flag)")
        #expect(flag.stderr.contains("not valid"))
        #expect(!flag.stderr.contains("Sup3r-Secret-pw"))
        let env = try DroverBinary.run(["migrate"], environment: ["DROVER_DATABASE_URL": url])
        #expect(env.status == 78, "\(env)")
        #expect(env.stderr.contains("(the database came from DROVER_DATABASE_URL)"))
    }

    @Test("version prints the release and the schema version, as text or JSON")
    func version() throws {
        let text = try DroverBinary.run(["version"])
        #expect(text.status == 0)
        #expect(text.stdout == "drover 0.1.0 (schema version \(DroverSchema.latestVersion))\n")
        let json = try DroverBinary.run(["version", "--json"])
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(decoded?["version"] as? String == "0.1.0")
        #expect(decoded?["schema_version"] as? Int == DroverSchema.latestVersion)
        let flag = try DroverBinary.run(["--version"])
        #expect(flag.stdout == "0.1.0\n")
        let help = try DroverBinary.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("migrate") && help.stdout.contains("version"))
    }
}
