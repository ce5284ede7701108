import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

/// The resolution order of the README's "Using an existing PostgreSQL", observed from outside: each source points at a different
/// database, and whichever one the process used shows in its outcome.
@Suite("Which database drover uses")
struct DatabaseResolutionTests {
    struct Server {
        let host: String
        let port: String
        let database: String
        func url(_ database: String? = nil) -> String {
            "postgresql:///\(database ?? self.database)?host=\(host)&port=\(port)"
        }
    }

    private func server() throws -> Server {
        let probe = try TestDatabase.connect()
        return Server(host: probe.target.host, port: probe.target.port, database: probe.target.database)
    }

    /// A configuration file in a directory of its own, mode 0644.
    private func withConfig<R>(_ text: String, mode: mode_t = 0o644, _ body: (String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory("drover-cli")
        return try body(try directory.file(text, mode: mode))
    }

    private func migrate(_ arguments: [String], environment: [String: String?] = [:]) throws -> DroverBinary.Outcome {
        let schema = TestDatabase.uniqueSchemaName()
        defer { _ = try? TestDatabase.connect().execute("DROP SCHEMA IF EXISTS \(SQLIdentifier(schema)) CASCADE") }
        return try DroverBinary.run(["migrate", "--schema", schema] + arguments, environment: environment)
    }

    @Test("--database-url beats DROVER_DATABASE_URL")
    func flagBeatsEnvironment() throws {
        let s = try server()
        let outcome = try migrate(["--database-url", s.url()], environment: ["DROVER_DATABASE_URL": s.url("env_db_missing")])
        #expect(outcome.status == 0, "\(outcome)")
    }

    @Test("DROVER_DATABASE_URL beats the configuration file")
    func environmentBeatsFile() throws {
        let s = try server()
        try withConfig("database:\n  url: \(s.url("config_db_missing"))\n") { path in
            let outcome = try migrate(["--config", path], environment: ["DROVER_DATABASE_URL": s.url()])
            #expect(outcome.status == 0, "\(outcome)")
        }
    }

    @Test("the configuration file beats libpq's PG* variables")
    func fileBeatsLibpqDefaults() throws {
        let s = try server()
        try withConfig("database:\n  url: \(s.url("config_db_missing"))\n") { path in
            let outcome = try migrate(
                ["--config", path], environment: ["PGHOST": s.host, "PGPORT": s.port, "PGDATABASE": s.database])
            #expect(outcome.status == 69, "\(outcome)")
            #expect(outcome.stderr.contains("database \"config_db_missing\""))
            #expect(outcome.stderr.contains("database.url in \(path)"))
        }
        try withConfig("database:\n  url: \(s.url())\n") { path in
            let fromFlag = try migrate(["--config", path])
            #expect(fromFlag.status == 0, "\(fromFlag)")
            // DROVER_CONFIG names the file when --config does not.
            let fromEnvironment = try migrate([], environment: ["DROVER_CONFIG": path])
            #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
        }
    }

    @Test("with nothing else set, libpq's PG* variables apply")
    func libpqDefaults() throws {
        let s = try server()
        try withConfig("# no database section\n") { path in
            let outcome = try migrate(
                ["--config", path], environment: ["PGHOST": s.host, "PGPORT": s.port, "PGDATABASE": s.database])
            #expect(outcome.status == 0, "\(outcome)")
        }
    }

    @Test("libpq service files work: a URL may be just service=NAME")
    func serviceFile() throws {
        let s = try server()
        try withConfig("# unused\n") { path in
            let services = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("pg_service.conf").path
            try "[drover_test_service]\nhost=\(s.host)\nport=\(s.port)\ndbname=\(s.database)\n"
                .write(toFile: services, atomically: true, encoding: .utf8)
            let outcome = try migrate(["--config", path, "--database-url", "service=drover_test_service"],
                                      environment: ["PGSERVICEFILE": services])
            #expect(outcome.status == 0, "\(outcome)")
            let viaEnvironment = try migrate(["--config", path], environment: ["PGSERVICEFILE": services, "PGSERVICE": "drover_test_service"])
            #expect(viaEnvironment.status == 0, "\(viaEnvironment)")
        }
    }

    @Test("configuration errors exit 78 naming the file, line and key")
    func configurationErrors() throws {
        let s = try server()
        try withConfig("database:\n  url: \(s.url())\n  shema: oops\n") { path in
            let outcome = try migrate(["--config", path])
            #expect(outcome.status == 78, "\(outcome)")
            #expect(outcome.stderr.contains("\(path):3: database.shema: unknown key"), "\(outcome)")
        }
        try withConfig("database:\n  url: \(s.url())\n", mode: 0o666) { path in
            let outcome = try migrate(["--config", path])
            #expect(outcome.status == 78, "\(outcome)")
            #expect(outcome.stderr.contains("chmod go-w"), "\(outcome)")
        }
        let missing = try migrate(["--config", "/nonexistent/drover.yml"])
        #expect(missing.status == 78, "\(missing)")
        #expect(missing.stderr.contains("/nonexistent/drover.yml"))
    }
}
