import Foundation

/// PostgreSQL's `jsonb @>` ("contains") in Swift, for SQLite, which has none: the SQL function
/// `drover_json_contains(haystack, needle)` that every SQLite connection gets.
///
/// The rules are PostgreSQL's: an object contains another when it has each of the other's keys
/// with a value that contains the other's value; an array contains another when each element of
/// the other is contained in some element of it (order and repeats do not matter); scalars
/// contain only an equal scalar (numbers by value: 1 and 1.0 are equal). PostgreSQL's one
/// exception, a top-level array containing a lone scalar, is kept. A differential test holds
/// this to PostgreSQL's answers.
public enum JSONContainment {
    indirect enum Value: Decodable, Equatable {
        case null, bool(Bool), number(Double), string(String), array([Value]), object([String: Value])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let bool = try? container.decode(Bool.self) {
                self = .bool(bool)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let string = try? container.decode(String.self) {
                self = .string(string)
            } else if let array = try? container.decode([Value].self) {
                self = .array(array)
            } else {
                self = .object(try container.decode([String: Value].self))
            }
        }

        static func parse(_ text: String) -> Value? { try? JSONDecoder().decode(Value.self, from: Data(text.utf8)) }
    }

    /// Whether the JSON text `haystack` contains `needle`; nil when either is not JSON.
    public static func contains(_ haystack: String, _ needle: String) -> Bool? {
        guard let a = Value.parse(haystack), let b = Value.parse(needle) else { return nil }
        if case .array(let elements) = a {
            switch b {
            case .array, .object: break
            default: return elements.contains(b)  // PostgreSQL's top-level exception
            }
        }
        return contains(a, b)
    }

    static func contains(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.object(let a), .object(let b)):
            return b.allSatisfy { key, value in a[key].map { contains($0, value) } ?? false }
        case (.array(let a), .array(let b)):
            return b.allSatisfy { wanted in
                // A scalar is looked for among the scalars; a container among the containers.
                a.contains { contains($0, wanted) && isContainer($0) == isContainer(wanted) }
            }
        default:
            return a == b
        }
    }

    private static func isContainer(_ value: Value) -> Bool {
        switch value {
        case .array, .object: true
        default: false
        }
    }
}
