import Foundation

/// A Swift value that can be sent as a bound parameter, in PostgreSQL's text format.
public protocol DatabaseEncodable: Sendable {
    /// The type the parameter is declared as (also for a NULL of this Swift type).
    static var databaseType: DatabaseType { get }
    /// The parameter's text; `nil` sends NULL.
    var databaseText: String? { get }
}

extension DatabaseEncodable {
    public var databaseValue: DatabaseValue { DatabaseValue(type: Self.databaseType, text: databaseText) }
}

/// A Swift value that can be read from a column.
public protocol DatabaseDecodable {
    static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Self
}

public typealias DatabaseCodable = DatabaseEncodable & DatabaseDecodable

/// Why a value could not be decoded; the caller turns it into a ``DatabaseError`` naming the column.
public enum DatabaseDecodingFailure: Error, Sendable, Equatable {
    /// The column is NULL and the Swift type is not optional.
    case unexpectedNull
    /// The column's type cannot be read as the Swift type.
    case typeMismatch
    /// The column's type fits but its text could not be parsed.
    case malformed(String)
}

extension DatabaseDecodable {
    /// The text of a non-NULL value whose type is one of `accepted`.
    static func text(
        of value: DatabaseValue, accepting accepted: Set<DatabaseType>
    ) throws(DatabaseDecodingFailure) -> String {
        guard let text = value.text else { throw .unexpectedNull }
        guard accepted.contains(value.type) else { throw .typeMismatch }
        return text
    }
}

extension DatabaseValue: DatabaseDecodable {
    /// The raw value, whatever its type.
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> DatabaseValue { value }
}

// MARK: - Optional

extension Optional: DatabaseEncodable where Wrapped: DatabaseEncodable {
    public static var databaseType: DatabaseType { Wrapped.databaseType }
    public var databaseText: String? { self?.databaseText }
}

extension Optional: DatabaseDecodable where Wrapped: DatabaseDecodable {
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Self {
        if value.isNull { return .none }
        return try Wrapped.decode(from: value)
    }
}

// MARK: - Integers

private let integerTypes: Set<DatabaseType> = [.int2, .int4, .int8, .oid]

extension DatabaseDecodable where Self: FixedWidthInteger {
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Self {
        let text = try text(of: value, accepting: integerTypes)
        guard let int = Self(text) else { throw .malformed("\(text) does not fit in \(Self.self)") }
        return int
    }
}

extension Int: DatabaseCodable {
    public static var databaseType: DatabaseType { .int8 }
    public var databaseText: String? { String(self) }
}

extension Int64: DatabaseCodable {
    public static var databaseType: DatabaseType { .int8 }
    public var databaseText: String? { String(self) }
}

extension Int32: DatabaseCodable {
    public static var databaseType: DatabaseType { .int4 }
    public var databaseText: String? { String(self) }
}

extension Int16: DatabaseCodable {
    public static var databaseType: DatabaseType { .int2 }
    public var databaseText: String? { String(self) }
}

// MARK: - Text

private let textTypes: Set<DatabaseType> = [.text, .varchar, .bpchar, .name, .char, .unknown, .uuid]

extension String: DatabaseCodable {
    public static var databaseType: DatabaseType { .text }
    public var databaseText: String? { self }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> String {
        try text(of: value, accepting: textTypes)
    }
}

extension Substring: DatabaseEncodable {
    public static var databaseType: DatabaseType { .text }
    public var databaseText: String? { String(self) }
}

extension UUID: DatabaseCodable {
    public static var databaseType: DatabaseType { .uuid }
    public var databaseText: String? { uuidString.lowercased() }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> UUID {
        let text = try text(of: value, accepting: [.uuid, .text, .varchar])
        guard let uuid = UUID(uuidString: text) else { throw .malformed(text) }
        return uuid
    }
}

// MARK: - Bool, Double

extension Bool: DatabaseCodable {
    public static var databaseType: DatabaseType { .bool }
    public var databaseText: String? { self ? "t" : "f" }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Bool {
        // SQLite has no boolean: it stores 1 and 0.
        switch try text(of: value, accepting: [.bool, .int8]) {
        case "t", "1": return true
        case "f", "0": return false
        case let other: throw .malformed(other)
        }
    }
}

extension Double: DatabaseCodable {
    public static var databaseType: DatabaseType { .float8 }
    public var databaseText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)  // the shortest text that reads back as the same Double
    }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Double {
        let text = try text(of: value, accepting: [.float4, .float8, .numeric, .int2, .int4, .int8])
        guard let double = Double(text) else { throw .malformed(text) }
        return double
    }
}

// MARK: - Date

extension Date: DatabaseCodable {
    public static var databaseType: DatabaseType { .timestamptz }
    public var databaseText: String? { DatabaseTime.format(self) }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> Date {
        // SQLite stores timestamps as text, in the same format.
        let text = try text(of: value, accepting: [.timestamptz, .timestamp, .text])
        guard let date = DatabaseTime.parse(text) else {
            throw .malformed("\(text) is not an ISO timestamp; the session's DateStyle must be ISO")
        }
        return date
    }
}
