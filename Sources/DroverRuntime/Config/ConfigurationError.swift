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
