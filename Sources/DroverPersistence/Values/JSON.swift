import Foundation

/// A JSON document, bound as `jsonb` and read from `json` or `jsonb` columns.
///
/// ```swift
/// let args = try JSON(encoding: ["to": "ops@example.com"])
/// try connection.execute("UPDATE drover.jobs SET arguments = \(args) WHERE id = \(id)")
/// let back: [String: String] = try row.decode("arguments", as: JSON.self).decode()
/// ```
public struct JSON: Hashable, Sendable, CustomStringConvertible {
    /// The document's text. Always valid JSON.
    public let text: String

    /// Checks that `text` is one JSON value (object, array or scalar).
    public init(validating text: String) throws(JSONError) {
        let data = Data(text.utf8)
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw JSONError(message: "not valid JSON: \(Self.reason(error))")
        }
        self.text = text
    }

    /// Encodes `value` with `encoder`.
    public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws(JSONError) {
        do {
            let data = try encoder.encode(value)
            self.text = String(decoding: data, as: UTF8.self)
        } catch {
            throw JSONError(message: "cannot encode \(T.self) as JSON: \(error)")
        }
    }

    /// Text the server produced, which is valid JSON by construction.
    init(trusted text: String) { self.text = text }

    /// `{}`.
    public static let emptyObject = JSON(trusted: "{}")

    /// Decodes the document as `T`.
    public func decode<T: Decodable>(
        _ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()
    ) throws(JSONError) -> T {
        do {
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw JSONError(message: "cannot decode \(T.self) from JSON: \(error)")
        }
    }

    /// True when the top-level value is an object.
    public var isObject: Bool { text.first(where: { !$0.isWhitespace }) == "{" }
    /// True when the top-level value is an array.
    public var isArray: Bool { text.first(where: { !$0.isWhitespace }) == "[" }

    public var description: String { text }

    private static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        return (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
    }
}

/// A JSON document could not be parsed, encoded or decoded.
public struct JSONError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension JSON: DatabaseCodable {
    public static var databaseType: DatabaseType { .jsonb }
    public var databaseText: String? { text }
    public static func decode(from value: DatabaseValue) throws(DatabaseDecodingFailure) -> JSON {
        // SQLite keeps JSON as text.
        JSON(trusted: try text(of: value, accepting: [.json, .jsonb, .text]))
    }
}
