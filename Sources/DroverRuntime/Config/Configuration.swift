/// Drover's configuration file (DESIGN.md §5).
///
/// Only the `database` section is interpreted so far; the other sections of the design are
/// recognised (so a complete file is accepted) and are validated by the parts that use them.
public struct Configuration: Sendable, Equatable {
    public struct Database: Sendable, Equatable {
        /// A `postgresql://` URL or libpq `key=value` string; nil means "not set here".
        public var url: String?
        /// The PostgreSQL schema Drover's tables live in.
        public var schema: String

        public init(url: String? = nil, schema: String = "drover") {
            self.url = url
            self.schema = schema
        }
    }

    public var database = Database()
    /// The file this was read from, nil when no file was read.
    public var path: String?

    public init(database: Database = Database(), path: String? = nil) {
        self.database = database
        self.path = path
    }
}

/// A configuration problem: names the file, the line and the key, and says what to do.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let line: Int?
    public let key: String?
    public let message: String

    public init(path: String, line: Int? = nil, key: String? = nil, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var location = path
        if let line { location += ":\(line)" }
        if let key { location += ": \(key)" }
        return "\(location): \(message)"
    }
}
