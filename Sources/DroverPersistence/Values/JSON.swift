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

    /// Checks that `text` is one JSON value (object, array or scalar), strictly as RFC 8259 has it
    /// and as PostgreSQL's `jsonb` and SQLite's `json_valid` accept it: no trailing commas, no raw
    /// control characters in strings, no lone surrogates, no `\u0000` (which `jsonb` cannot hold),
    /// and at most ``JSONValidator/maxDepth`` levels of nesting.
    public init(validating text: String) throws(JSONError) {
        try JSONValidator.validate(text)
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
    /// The members of this JSON object in order: each name (unescaped) and its value's text as
    /// written (so that an argument such as 12345678901234567890 keeps every digit).
    ///
    /// - Throws: ``JSONError`` when the text is not a JSON object.
    public func objectMembers() throws(JSONError) -> [(name: String, value: JSON)] {
        guard isObject else { throw JSONError(message: "not a JSON object") }
        let bytes = Array(text.utf8)
        return try JSONValidator.members(of: bytes).map { member throws(JSONError) in
            let nameText = String(decoding: bytes[member.name], as: UTF8.self)
            guard let name = try? JSONDecoder().decode(String.self, from: Data(nameText.utf8)) else {
                throw JSONError(message: "not valid JSON: the member name \(nameText)")
            }
            return (name, JSON(trusted: String(decoding: bytes[member.value], as: UTF8.self)))
        }
    }

    public var isObject: Bool { text.first(where: { !$0.isWhitespace }) == "{" }
    /// True when the top-level value is an array.
    public var isArray: Bool { text.first(where: { !$0.isWhitespace }) == "[" }

    public var description: String { text }
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

/// A strict JSON syntax check (RFC 8259), the same everywhere: Foundation's parser accepts trailing
/// commas and other extensions that the databases refuse.
enum JSONValidator {
    /// Deeper nesting is refused: it is never data a job needs, and it costs stack.
    static let maxDepth = 512

    static func validate(_ text: String) throws(JSONError) {
        var validator = Cursor(bytes: Array(text.utf8))
        try validator.document()
    }

    /// The byte ranges of each top-level member's name (with its quotes) and value in `bytes`, a
    /// JSON object; validates the whole document on the way.
    static func members(of bytes: [UInt8]) throws(JSONError) -> [(name: Range<Int>, value: Range<Int>)] {
        var cursor = Cursor(bytes: bytes)
        cursor.skipSpace()
        guard cursor.current == UInt8(ascii: "{") else { throw cursor.fail("expected a JSON object") }
        cursor.at += 1
        cursor.depth = 1
        var members: [(name: Range<Int>, value: Range<Int>)] = []
        cursor.skipSpace()
        if cursor.current == UInt8(ascii: "}") {
            cursor.at += 1
        } else {
            while true {
                guard cursor.current == UInt8(ascii: "\"") else { throw cursor.fail("expected a member name in double quotes") }
                let nameStart = cursor.at
                try cursor.string()
                let name = nameStart..<cursor.at
                cursor.skipSpace()
                guard cursor.current == UInt8(ascii: ":") else { throw cursor.fail("expected ':' after a member name") }
                cursor.at += 1
                cursor.skipSpace()
                let valueStart = cursor.at
                try cursor.value()
                members.append((name, valueStart..<cursor.at))
                cursor.skipSpace()
                if cursor.current == UInt8(ascii: "}") {
                    cursor.at += 1
                    break
                }
                guard cursor.current == UInt8(ascii: ",") else { throw cursor.fail("expected ',' or '}'") }
                cursor.at += 1
                cursor.skipSpace()
            }
        }
        cursor.skipSpace()
        if let byte = cursor.current { throw cursor.fail("unexpected \(cursor.describe(byte)) after the value") }
        return members
    }

    private struct Cursor {
        let bytes: [UInt8]
        var at = 0
        var depth = 0

        mutating func document() throws(JSONError) {
            skipSpace()
            try value()
            skipSpace()
            if at < bytes.count { throw fail("unexpected \(describe(bytes[at])) after the value") }
        }

        func fail(_ message: String) -> JSONError {
            JSONError(message: "not valid JSON: \(message) at byte \(at + 1)")
        }

        func describe(_ byte: UInt8) -> String {
            (0x21...0x7e).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : String(format: "byte 0x%02x", byte)
        }

        var current: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d { at += 1 }
        }

        mutating func expect(_ literal: String) throws(JSONError) {
            for byte in literal.utf8 {
                guard current == byte else { throw fail("expected \(literal)") }
                at += 1
            }
        }

        mutating func value() throws(JSONError) {
            guard let byte = current else { throw fail("a value is missing") }
            switch byte {
            case UInt8(ascii: "{"): try container(close: UInt8(ascii: "}"), keyed: true)
            case UInt8(ascii: "["): try container(close: UInt8(ascii: "]"), keyed: false)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try expect("true")
            case UInt8(ascii: "f"): try expect("false")
            case UInt8(ascii: "n"): try expect("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw fail("unexpected \(describe(byte))")
            }
        }

        mutating func container(close: UInt8, keyed: Bool) throws(JSONError) {
            depth += 1
            guard depth <= JSONValidator.maxDepth else { throw fail("nested more than \(JSONValidator.maxDepth) levels deep") }
            at += 1
            skipSpace()
            if current == close {
                at += 1
                depth -= 1
                return
            }
            while true {
                if keyed {
                    guard current == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
                    try string()
                    skipSpace()
                    guard current == UInt8(ascii: ":") else { throw fail("expected ':' after a member name") }
                    at += 1
                    skipSpace()
                }
                try value()
                skipSpace()
                if current == close {
                    at += 1
                    depth -= 1
                    return
                }
                guard current == UInt8(ascii: ",") else {
                    throw fail("expected ',' or '\(Character(UnicodeScalar(close)))'")
                }
                at += 1
                skipSpace()
                if current == close { throw fail("a trailing comma") }
            }
        }

        mutating func string() throws(JSONError) {
            at += 1
            var pendingHighSurrogate = false
            while true {
                guard let byte = current else { throw fail("an unterminated string") }
                if pendingHighSurrogate && byte != UInt8(ascii: "\\") { throw fail("a lone surrogate escape") }
                switch byte {
                case UInt8(ascii: "\""):
                    at += 1
                    return
                case 0x00..<0x20:
                    throw fail("a raw control character (\(describe(byte))) in a string; escape it")
                case UInt8(ascii: "\\"):
                    at += 1
                    guard let escaped = current else { throw fail("an unterminated string") }
                    if escaped == UInt8(ascii: "u") {
                        at += 1
                        let code = try hex4()
                        if (0xd800...0xdbff).contains(code) {
                            guard !pendingHighSurrogate else { throw fail("a lone surrogate escape") }
                            pendingHighSurrogate = true
                            continue
                        }
                        if (0xdc00...0xdfff).contains(code) {
                            guard pendingHighSurrogate else { throw fail("a lone surrogate escape") }
                            pendingHighSurrogate = false
                            continue
                        }
                        guard !pendingHighSurrogate else { throw fail("a lone surrogate escape") }
                        if code == 0 { throw fail("\\u0000, which PostgreSQL's jsonb cannot store") }
                        continue
                    }
                    guard !pendingHighSurrogate else { throw fail("a lone surrogate escape") }
                    guard "\"\\/bfnrt".utf8.contains(escaped) else { throw fail("an unknown escape \\\(describe(escaped))") }
                    at += 1
                default:
                    at += 1
                }
            }
        }

        mutating func hex4() throws(JSONError) -> Int {
            var code = 0
            for _ in 0..<4 {
                guard let byte = current, let digit = Int(String(UnicodeScalar(byte)), radix: 16) else {
                    throw fail("expected four hex digits after \\u")
                }
                code = code * 16 + digit
                at += 1
            }
            return code
        }

        mutating func number() throws(JSONError) {
            if current == UInt8(ascii: "-") { at += 1 }
            guard let first = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw fail("a number without digits") }
            at += 1
            if first != UInt8(ascii: "0") { digits() } else if let next = current, isDigit(next) { throw fail("a number with a leading zero") }
            if current == UInt8(ascii: ".") {
                at += 1
                guard let next = current, isDigit(next) else { throw fail("a fraction without digits") }
                digits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                at += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
                guard let next = current, isDigit(next) else { throw fail("an exponent without digits") }
                digits()
            }
        }

        func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

        mutating func digits() {
            while let byte = current, isDigit(byte) { at += 1 }
        }
    }
}
