import DroverPersistence
import Foundation

extension ConcurrencyRule {
    /// The key of a job with `arguments`: the template with each `{name}` replaced by that argument
    /// (`{a.b}` reaches into objects; a string as it is, anything else as JSON); nil when one is
    /// missing or null. PostgreSQL's `concurrency_key` function, which its SQL enqueue uses,
    /// renders keys the same (a test compares them).
    public func key(for arguments: JSON) -> String? {
        Self.render(keyTemplate, with: arguments)
    }

    /// `template` with each `{name}` replaced by that argument of `arguments` (as ``key(for:)``;
    /// rate-limit keys are rendered the same); nil when one is missing or null.
    static func render(_ keyTemplate: String, with arguments: JSON) -> String? {
        guard let root = try? JSONDecoder().decode(ArgumentValue.self, from: Data(arguments.text.utf8)) else { return nil }
        var result = ""
        var rest = Substring(keyTemplate)
        while let opening = rest.firstIndex(of: "{"), let closing = rest[opening...].firstIndex(of: "}") {
            var value: ArgumentValue? = root
            for part in rest[rest.index(after: opening)..<closing].split(separator: ".", omittingEmptySubsequences: false) {
                guard case .object(let members) = value else { return nil }
                value = members[String(part)]
            }
            guard let text = value?.text else { return nil }
            result += rest[..<opening] + text
            rest = rest[rest.index(after: closing)...]
        }
        return result + rest
    }

    /// A JSON value, as much of it as a key needs.
    private enum ArgumentValue: Decodable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case object([String: ArgumentValue])
        case other(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let bool = try? container.decode(Bool.self) {
                self = .bool(bool)
            } else if let int = try? container.decode(Int64.self) {
                self = .number(String(int))
            } else if let double = try? container.decode(Double.self) {
                self = .number(String(double))
            } else if let string = try? container.decode(String.self) {
                self = .string(string)
            } else if let object = try? container.decode([String: ArgumentValue].self) {
                self = .object(object)
            } else {
                self = .other("[…]")
            }
        }

        /// The text a key takes; nil for null.
        var text: String? {
            switch self {
            case .null: return nil
            case .bool(let value): return value ? "true" : "false"
            case .number(let text), .string(let text), .other(let text): return text
            case .object: return "{…}"
            }
        }
    }
}
