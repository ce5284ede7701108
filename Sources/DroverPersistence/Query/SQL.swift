/// A SQL statement and its bound values.
///
/// Written as a string literal, every interpolated value becomes a `$n` parameter; it never becomes
/// part of the SQL text:
///
/// ```swift
/// let rows = try connection.query("SELECT id FROM drover.jobs WHERE queue_name = \(queue) AND priority < \(limit)")
/// // text: SELECT id FROM drover.jobs WHERE queue_name = $1 AND priority < $2
/// ```
///
/// Identifiers are interpolated as ``SQLIdentifier`` (quoted, never bound). Text that really is SQL
/// must be asked for by name: ``SQL/init(unsafeRaw:)`` or `\(unsafeRaw: fragment)`. A `String`
/// variable does not convert to `SQL` by itself.
public struct SQL: Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// SQL text and values in the order written; `$n` numbers are assigned when the statement is
    /// rendered, so fragments compose without renumbering.
    enum Piece: Sendable {
        case text(String)
        case bind(DatabaseValue)
    }

    private(set) var pieces: [Piece]

    public init(stringLiteral value: String) {
        pieces = [.text(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        pieces = stringInterpolation.pieces
    }

    /// SQL text taken as it is. Never pass text that contains input from outside the program.
    public init(unsafeRaw text: String) {
        pieces = [.text(text)]
    }

    /// The statement with `$1`, `$2`, … where the values go.
    public var text: String { render().text }

    /// The values, in parameter order.
    public var binds: [DatabaseValue] {
        pieces.compactMap { if case .bind(let value) = $0 { value } else { nil } }
    }

    func render() -> (text: String, binds: [DatabaseValue]) {
        var text = ""
        var binds: [DatabaseValue] = []
        for piece in pieces {
            switch piece {
            case .text(let fragment):
                text += fragment
            case .bind(let value):
                binds.append(value)
                text += "$\(binds.count)"
            }
        }
        return (text, binds)
    }

    /// Appends `other` after this statement.
    public mutating func append(_ other: SQL) {
        pieces += other.pieces
    }

    public static func + (lhs: SQL, rhs: SQL) -> SQL {
        var result = lhs
        result.append(rhs)
        return result
    }

    /// `fragments` joined by `separator`.
    public static func joined(_ fragments: [SQL], separator: String = ", ") -> SQL {
        var result = SQL(stringLiteral: "")
        for (i, fragment) in fragments.enumerated() {
            if i > 0 { result.pieces.append(.text(separator)) }
            result.append(fragment)
        }
        return result
    }

    public var description: String { text }

    public struct StringInterpolation: StringInterpolationProtocol {
        var pieces: [Piece] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            pieces.reserveCapacity(interpolationCount * 2 + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            pieces.append(.text(literal))
        }

        /// A value: becomes the next `$n` parameter.
        public mutating func appendInterpolation<Value: DatabaseEncodable>(_ value: Value) {
            pieces.append(.bind(value.databaseValue))
        }

        /// An optional value: the next `$n` parameter, NULL when nil.
        public mutating func appendInterpolation<Value: DatabaseEncodable>(_ value: Value?) {
            pieces.append(.bind(value.databaseValue))
        }

        /// An already-encoded value: becomes the next `$n` parameter.
        public mutating func appendInterpolation(_ value: DatabaseValue) {
            pieces.append(.bind(value))
        }

        /// An identifier: quoted into the text.
        public mutating func appendInterpolation(_ identifier: SQLIdentifier) {
            pieces.append(.text(identifier.quoted))
        }

        /// A fragment built the same way, with its values.
        public mutating func appendInterpolation(_ fragment: SQL) {
            pieces += fragment.pieces
        }

        /// Text taken as SQL. Never pass text that contains input from outside the program.
        public mutating func appendInterpolation(unsafeRaw fragment: String) {
            pieces.append(.text(fragment))
        }
    }
}

/// A quoted SQL identifier, optionally schema-qualified: `"drover"."jobs"`.
public struct SQLIdentifier: Hashable, Sendable, CustomStringConvertible {
    /// The unquoted parts, outermost first.
    public let parts: [String]

    /// An identifier from parts the program chose (table and column names). Quotes are doubled,
    /// so any text is safe; use ``SQLIdentifier/validated(_:)`` for names read from configuration.
    public init(_ parts: String...) {
        precondition(!parts.isEmpty && parts.allSatisfy { !$0.isEmpty && !$0.contains("\0") })
        self.parts = parts
    }

    private init(parts: [String]) { self.parts = parts }

    /// The name qualified by `schema`: `SQLIdentifier("drover").qualifying("jobs")`.
    public func qualifying(_ name: String) -> SQLIdentifier {
        SQLIdentifier(parts: parts + [name])
    }

    /// A name from configuration or the command line: lowercase letters, digits and underscores,
    /// starting with a letter or underscore, at most 63 bytes (PostgreSQL's limit), so that it
    /// never needs quoting in psql either.
    public static func validated(_ name: String, what: String = "identifier") throws(DatabaseError) -> SQLIdentifier {
        let scalars = name.unicodeScalars
        let valid = !scalars.isEmpty && scalars.count <= 63
            && scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(scalars.first!)
        guard valid else {
            throw DatabaseError(
                .invalidIdentifier,
                "\(what) \"\(name)\" is not valid: use 1 to 63 lowercase letters, digits and underscores, "
                    + "starting with a letter or underscore (for example \"drover\")")
        }
        return SQLIdentifier(parts: [name])
    }

    public var quoted: String {
        parts.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ".")
    }

    public var description: String { quoted }
}

private extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
