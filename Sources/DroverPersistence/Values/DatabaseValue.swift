/// A PostgreSQL type, by its OID.
public struct DatabaseType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Lets the server infer the parameter's type from where it is used.
    public static let unspecified = DatabaseType(rawValue: 0)
    public static let bool = DatabaseType(rawValue: 16)
    public static let bytea = DatabaseType(rawValue: 17)
    public static let char = DatabaseType(rawValue: 18)
    public static let name = DatabaseType(rawValue: 19)
    public static let int8 = DatabaseType(rawValue: 20)
    public static let int2 = DatabaseType(rawValue: 21)
    public static let int4 = DatabaseType(rawValue: 23)
    public static let text = DatabaseType(rawValue: 25)
    public static let oid = DatabaseType(rawValue: 26)
    public static let json = DatabaseType(rawValue: 114)
    public static let float4 = DatabaseType(rawValue: 700)
    public static let float8 = DatabaseType(rawValue: 701)
    public static let unknown = DatabaseType(rawValue: 705)
    public static let bpchar = DatabaseType(rawValue: 1042)
    public static let varchar = DatabaseType(rawValue: 1043)
    public static let date = DatabaseType(rawValue: 1082)
    public static let timestamp = DatabaseType(rawValue: 1114)
    public static let timestamptz = DatabaseType(rawValue: 1184)
    public static let interval = DatabaseType(rawValue: 1186)
    public static let numeric = DatabaseType(rawValue: 1700)
    public static let uuid = DatabaseType(rawValue: 2950)
    public static let jsonb = DatabaseType(rawValue: 3802)

    public static let boolArray = DatabaseType(rawValue: 1000)
    public static let int2Array = DatabaseType(rawValue: 1005)
    public static let int4Array = DatabaseType(rawValue: 1007)
    public static let textArray = DatabaseType(rawValue: 1009)
    public static let varcharArray = DatabaseType(rawValue: 1015)
    public static let int8Array = DatabaseType(rawValue: 1016)
    public static let float8Array = DatabaseType(rawValue: 1022)
    public static let timestamptzArray = DatabaseType(rawValue: 1185)
    public static let uuidArray = DatabaseType(rawValue: 2951)
    public static let jsonbArray = DatabaseType(rawValue: 3807)

    /// The SQL name, for messages.
    public var description: String {
        switch self {
        case .unspecified: return "unspecified"
        case .bool: return "boolean"
        case .bytea: return "bytea"
        case .char: return "\"char\""
        case .name: return "name"
        case .int8: return "bigint"
        case .int2: return "smallint"
        case .int4: return "integer"
        case .text: return "text"
        case .oid: return "oid"
        case .json: return "json"
        case .float4: return "real"
        case .float8: return "double precision"
        case .unknown: return "unknown"
        case .bpchar: return "character"
        case .varchar: return "character varying"
        case .date: return "date"
        case .timestamp: return "timestamp without time zone"
        case .timestamptz: return "timestamp with time zone"
        case .interval: return "interval"
        case .numeric: return "numeric"
        case .uuid: return "uuid"
        case .jsonb: return "jsonb"
        case .boolArray: return "boolean[]"
        case .int2Array: return "smallint[]"
        case .int4Array: return "integer[]"
        case .textArray: return "text[]"
        case .varcharArray: return "character varying[]"
        case .int8Array: return "bigint[]"
        case .float8Array: return "double precision[]"
        case .timestamptzArray: return "timestamp with time zone[]"
        case .uuidArray: return "uuid[]"
        case .jsonbArray: return "jsonb[]"
        default: return "type with OID \(rawValue)"
        }
    }
}

/// One value as PostgreSQL's text format carries it: a bound parameter, a column of a row, or a
/// record's attribute. `text == nil` is SQL NULL.
public struct DatabaseValue: Hashable, Sendable, CustomStringConvertible {
    public var type: DatabaseType
    public var text: String?

    public init(type: DatabaseType, text: String?) {
        self.type = type
        self.text = text
    }

    public static func null(_ type: DatabaseType = .unspecified) -> DatabaseValue {
        DatabaseValue(type: type, text: nil)
    }

    public var isNull: Bool { text == nil }

    public var description: String { text.map { "\($0)::\(type)" } ?? "NULL::\(type)" }
}
