import DroverPersistence
import DroverQueue
import Foundation
import Yams

/// Typed reads of YAML nodes; every failure names the file, the line and the key path.
struct ConfigReader {
    let path: String

    func error(_ node: Node?, _ key: String?, _ message: String) -> ConfigurationError {
        ConfigurationError(path: path, line: node?.mark?.line, key: key, message: message)
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.tag == Tag(.null) || (scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string))
    }

    /// The entries of a mapping, in file order; refuses keys outside `allowed` (when given).
    func mapping(_ node: Node, _ key: String?, allowed: [String]? = nil) throws(ConfigurationError) -> [(key: String, node: Node, value: Node)] {
        guard let mapping = node.mapping else {
            throw error(node, key, key == nil ? "the top level must be a mapping of sections (database:, workers:, …)"
                                              : "must be a mapping of keys to values")
        }
        var entries: [(key: String, node: Node, value: Node)] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(keyNode, key, "keys must be plain names") }
            let name = scalar.string
            let full = key.map { "\($0).\(name)" } ?? name
            if let allowed, !allowed.contains(name) {
                throw error(keyNode, full, "unknown key; the keys allowed here are: \(allowed.joined(separator: ", "))")
            }
            entries.append((name, keyNode, value))
        }
        return entries
    }

    func sequence(_ node: Node, _ key: String) throws(ConfigurationError) -> [Node] {
        guard let sequence = node.sequence else { throw error(node, key, "must be a list (- item, or [a, b])") }
        return Array(sequence)
    }

    func string(_ node: Node, _ key: String) throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else { throw error(node, key, "must be a string") }
        guard !scalar.string.contains("\0") else { throw error(node, key, "must not contain a NUL character") }
        return scalar.string
    }

    func int(_ node: Node, _ key: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            throw error(node, key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        guard range.contains(value) else {
            throw error(node, key, "\(value) is out of range: use \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A number from 0 to 1, such as 0.25.
    func fraction(_ node: Node, _ key: String) throws(ConfigurationError) -> Double {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Double(scalar.string), value.isFinite else {
            throw error(node, key, "must be a number from 0 to 1, such as 0.25")
        }
        guard (0...1).contains(value) else { throw error(node, key, "\(scalar.string) is out of range: use 0 to 1, such as 0.25") }
        return value
    }

    func bool(_ node: Node, _ key: String) throws(ConfigurationError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain, ["true", "false"].contains(scalar.string) else {
            throw error(node, key, "must be true or false")
        }
        return scalar.string == "true"
    }

    func duration(_ node: Node, _ key: String, _ range: ClosedRange<Duration>) throws(ConfigurationError) -> Duration {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw error(node, key, "must be a duration such as \(DurationText.examples)")
        }
        guard let value = DurationText.parse(scalar.string) else {
            let hint = Int(scalar.string) != nil ? " (a bare number has no unit: write \(scalar.string)s)" : ""
            throw error(node, key, "\"\(scalar.string)\" is not a duration; use \(DurationText.examples)\(hint)")
        }
        guard range.contains(value) else {
            throw error(node, key, "\(scalar.string) is out of range: use \(DurationText.format(range.lowerBound)) to \(DurationText.format(range.upperBound))")
        }
        return value
    }

    func strings(_ node: Node, _ key: String) throws(ConfigurationError) -> [String] {
        var values: [String] = []
        for (i, item) in try sequence(node, key).enumerated() { values.append(try string(item, "\(key)[\(i)]")) }
        return values
    }

    func stringMap(_ node: Node, _ key: String) throws(ConfigurationError) -> [String: String] {
        var values: [String: String] = [:]
        for entry in try mapping(node, key) { values[entry.key] = try string(entry.value, "\(key).\(entry.key)") }
        return values
    }

    /// A JSON object or array written in YAML.
    func json(_ node: Node, _ key: String) throws(ConfigurationError) -> JSON {
        guard node.mapping != nil || node.sequence != nil else {
            throw error(node, key, "must be a mapping or a list (the job's JSON arguments)")
        }
        let value = Self.plain(node)
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]),
              let json = try? JSON(validating: String(decoding: data, as: UTF8.self))
        else { throw error(node, key, "cannot be turned into JSON") }
        return json
    }

    /// A YAML node as Foundation values JSONSerialization understands.
    private static func plain(_ node: Node) -> Any {
        switch node {
        case .mapping(let mapping):
            var object: [String: Any] = [:]
            for (key, value) in mapping { object[key.string ?? ""] = plain(value) }
            return object
        case .sequence(let sequence):
            return sequence.map(plain)
        case .scalar(let scalar):
            if scalar.style == .plain {
                if let int = node.int { return int }
                if let double = node.float, scalar.string.contains(".") { return double }
                if scalar.string == "true" || scalar.string == "false" { return scalar.string == "true" }
                if ["", "~", "null"].contains(scalar.string) { return NSNull() }
            }
            return scalar.string
        case .alias:
            return NSNull()
        }
    }
}
