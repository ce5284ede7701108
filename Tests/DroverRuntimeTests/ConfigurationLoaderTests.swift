import DroverRuntime
import Foundation
import Testing

@Suite("The configuration file's database section")
struct ConfigurationLoaderTests {
    @Test("reads database.url and database.schema, and accepts the design's other sections")
    func readsDatabaseSection() throws {
        let yaml = """
            # Drover
            database:
              url: postgresql:///drover?host=/run/postgresql
              schema: jobs_2
            workers:
              - queues: [critical, default]
                threads: 5
            supervisor:
              shutdown_timeout: 30s
            """
        let config = try ConfigurationLoader.parse(yaml, path: "/etc/drover/drover.yml")
        #expect(config.database.url == "postgresql:///drover?host=/run/postgresql")
        #expect(config.database.schema == "jobs_2")
        #expect(config.path == "/etc/drover/drover.yml")
    }

    @Test("an empty file, or one without a database section, means defaults")
    func emptyMeansDefaults() throws {
        for yaml in ["", "# nothing\n", "database:\n", "workers: []\n"] {
            let config = try ConfigurationLoader.parse(yaml, path: "d.yml")
            #expect(config.database == Configuration.Database())
        }
    }

    @Test("errors name the file, the line and the key", arguments: [
        ("database:\n  url: x\n  shema: drover\n", "d.yml:3: database.shema: unknown key"),
        ("databse:\n  url: x\n", "d.yml:1: databse: unknown key"),
        ("database:\n  url: [a, b]\n", "d.yml:2: database.url: must be a string"),
        ("database:\n  schema: Drover-Jobs\n", "d.yml:2: database.schema: schema name \"Drover-Jobs\" is not valid"),
        ("database: postgresql:///x\n", "d.yml:1: database: must be a mapping"),
        ("- just\n- a list\n", "d.yml:1: the top level must be a mapping"),
        ("database:\n  url: x\n  url: y\n", "d.yml:2: is not valid YAML: the key url appears twice"),
        ("database:\n  url: \"unterminated\n", "d.yml:3: is not valid YAML: found unexpected end of stream while scanning a quoted scalar that starts on line 2"),
    ])
    func errorsNameLineAndKey(_ yaml: String, _ expected: String) {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml, path: "d.yml") }
        #expect(error?.description.hasPrefix(expected) == true, "got: \(error?.description ?? "no error")")
    }

    @Test("a file writable by other users is refused; a missing file named explicitly is an error")
    func fileChecks() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("drover-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("drover.yml").path
        try "database:\n  schema: s1\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        #expect(try ConfigurationLoader.load(path: path).database.schema == "s1")
        chmod(path, 0o646)
        let writable = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path) }
        #expect(writable?.description.contains("chmod o-w") == true)
        let missing = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: directory.appendingPathComponent("nope.yml").path, environment: [:])
        }
        #expect(missing?.description.contains("No such file") == true)
        let fromEnvironment = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: nil, environment: ["DROVER_CONFIG": directory.appendingPathComponent("env.yml").path])
        }
        #expect(fromEnvironment?.path.hasSuffix("env.yml") == true)
    }
}

@Suite("Which database: --database-url, DROVER_DATABASE_URL, database.url, libpq defaults")
struct DatabaseLocationTests {
    let config = Configuration(database: .init(url: "postgresql:///from_config", schema: "cfg"), path: "/etc/drover/drover.yml")

    @Test("the command line wins over everything")
    func commandLineFirst() {
        let location = DatabaseLocation.resolve(
            commandLineURL: "postgresql:///from_flag", environment: ["DROVER_DATABASE_URL": "postgresql:///from_env"],
            configuration: config)
        #expect(location.connectionString == "postgresql:///from_flag")
        #expect(location.source == .commandLine)
        #expect(location.schema == "cfg", "the schema still comes from the file")
    }

    @Test("then the environment, then the file, then libpq's defaults")
    func thenEnvironmentThenFileThenDefaults() {
        let env = DatabaseLocation.resolve(
            commandLineURL: nil, environment: ["DROVER_DATABASE_URL": "postgresql:///from_env"], configuration: config)
        #expect(env.connectionString == "postgresql:///from_env")
        #expect(env.source == .environment)
        let file = DatabaseLocation.resolve(commandLineURL: nil, environment: ["DROVER_DATABASE_URL": ""], configuration: config)
        #expect(file.connectionString == "postgresql:///from_config")
        #expect(file.source == .configurationFile(path: "/etc/drover/drover.yml"))
        let defaults = DatabaseLocation.resolve(commandLineURL: nil, environment: [:], configuration: nil)
        #expect(defaults.connectionString == "")
        #expect(defaults.source == .libpqDefaults)
        #expect(defaults.schema == "drover")
    }

    @Test("--schema overrides the file's schema")
    func schemaFlag() {
        let location = DatabaseLocation.resolve(commandLineURL: nil, commandLineSchema: "other", environment: [:], configuration: config)
        #expect(location.schema == "other")
    }
}
