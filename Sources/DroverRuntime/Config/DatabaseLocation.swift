import DroverPersistence
import DroverQueue
import Foundation

/// Which database to use and where that choice came from: `--database-url`, then
/// `DROVER_DATABASE_URL`, then the configuration file's `database.url`, then libpq's own defaults
/// when the environment names a PostgreSQL server (`PGHOST`, `PGDATABASE` or `PGSERVICE`), and
/// otherwise the embedded default: a SQLite file, `$STATE_DIRECTORY/drover.sqlite3` under systemd,
/// else `./drover.sqlite3`.
///
/// A URL is PostgreSQL's (`postgresql://…` or libpq `key=value` pairs) unless it starts with
/// `sqlite:`: `sqlite:///var/lib/drover/drover.sqlite3` (absolute) or `sqlite:drover.sqlite3`
/// (relative to the working directory).
public struct DatabaseLocation: Sendable, Equatable {
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case commandLine
        case environment
        case configurationFile(path: String)
        case libpqDefaults
        case embeddedDefault

        public var description: String {
            switch self {
            case .commandLine: return "--database-url"
            case .environment: return "DROVER_DATABASE_URL"
            case .configurationFile(let path): return "database.url in \(path)"
            case .libpqDefaults: return "libpq's defaults (PGHOST, PGPORT, PGDATABASE, PGUSER, …)"
            case .embeddedDefault: return "the default (no database configured)"
            }
        }
    }

    public static let environmentVariable = "DROVER_DATABASE_URL"

    /// A `postgresql://` URL or libpq `key=value` string; empty means libpq's defaults.
    public let connectionString: String
    public let source: Source
    /// The schema Drover's tables live in.
    public let schema: String

    /// A `sqlite:` URL is kept with its path made absolute (`sqlite:///abs/path`).
    public init(connectionString: String, source: Source, schema: String) {
        self.connectionString = Self.sqlitePath(connectionString).map { "sqlite://" + $0 } ?? connectionString
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
        if ["PGHOST", "PGDATABASE", "PGSERVICE"].contains(where: { !(environment[$0] ?? "").isEmpty }) {
            return DatabaseLocation(connectionString: "", source: .libpqDefaults, schema: schema)
        }
        return DatabaseLocation(connectionString: defaultSQLiteURL(environment: environment), source: .embeddedDefault, schema: schema)
    }

    /// Whether this is a SQLite database.
    public var isSQLite: Bool { Self.sqlitePath(connectionString) != nil }

    /// The file of a `sqlite:` URL (nil for any other), made absolute (``StoreFactory/sqlitePath(_:)``).
    public static func sqlitePath(_ url: String) -> String? { StoreFactory.sqlitePath(url) }

    /// `sqlite://` and the file: `$STATE_DIRECTORY/drover.sqlite3` under systemd (its first
    /// directory), else `drover.sqlite3` in the working directory.
    static func defaultSQLiteURL(environment: [String: String]) -> String {
        let directory = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? FileManager.default.currentDirectoryPath
        return "sqlite://" + URL(fileURLWithPath: directory).appendingPathComponent("drover.sqlite3").path
    }

    /// What the log says of this database: a SQLite file's path, or a PostgreSQL URL without its password.
    public var redacted: String {
        if isSQLite { return connectionString }
        return connectionString.isEmpty ? source.description : Connection.redacted(connectionString)
    }
}
