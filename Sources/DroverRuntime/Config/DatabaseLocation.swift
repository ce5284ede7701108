/// Which database to use and where that choice came from (DESIGN.md §6): `--database-url`, then
/// `DROVER_DATABASE_URL`, then the configuration file's `database.url`, then libpq's own defaults
/// (`PGHOST`, `PGDATABASE`, service files, …).
public struct DatabaseLocation: Sendable, Equatable {
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case commandLine
        case environment
        case configurationFile(path: String)
        case libpqDefaults

        public var description: String {
            switch self {
            case .commandLine: return "--database-url"
            case .environment: return "DROVER_DATABASE_URL"
            case .configurationFile(let path): return "database.url in \(path)"
            case .libpqDefaults: return "libpq's defaults (PGHOST, PGPORT, PGDATABASE, PGUSER, …)"
            }
        }
    }

    public static let environmentVariable = "DROVER_DATABASE_URL"

    /// A `postgresql://` URL or libpq `key=value` string; empty means libpq's defaults.
    public let connectionString: String
    public let source: Source
    /// The schema Drover's tables live in.
    public let schema: String

    public init(connectionString: String, source: Source, schema: String) {
        self.connectionString = connectionString
        self.source = source
        self.schema = schema
    }

    public static func resolve(
        commandLineURL: String?, commandLineSchema: String? = nil, environment: [String: String],
        configuration: Configuration?
    ) -> DatabaseLocation {
        let schema = commandLineSchema ?? configuration?.database.schema ?? Configuration.Database().schema
        if let url = commandLineURL {
            return DatabaseLocation(connectionString: url, source: .commandLine, schema: schema)
        }
        if let url = environment[environmentVariable], !url.isEmpty {
            return DatabaseLocation(connectionString: url, source: .environment, schema: schema)
        }
        if let configuration, let url = configuration.database.url, let path = configuration.path {
            return DatabaseLocation(connectionString: url, source: .configurationFile(path: path), schema: schema)
        }
        return DatabaseLocation(connectionString: "", source: .libpqDefaults, schema: schema)
    }
}
