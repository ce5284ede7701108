import Foundation
import Yams

/// Where the dashboard listens (`web.listen`, `drover web --listen`): an IP address and a port, or
/// a unix socket path.
///
/// ```swift
/// let address = try ListenAddress.parse("127.0.0.1:8089").get()   // .tcp(host: "127.0.0.1", port: 8089)
/// address.reachableFromOtherHosts                                 // false: loopback
/// ```
public enum ListenAddress: Sendable, Equatable, Codable, CustomStringConvertible {
    /// `host` is an IP address (an IPv6 one without brackets); port 0 takes any free port.
    case tcp(host: String, port: Int)
    case unixSocket(path: String)

    /// What `web:` listens on when it names nothing.
    public static let defaultAddress = ListenAddress.tcp(host: "127.0.0.1", port: 8089)
    /// The longest unix socket path taken: the kernel's `sun_path` holds 108 bytes with its NUL,
    /// and the dashboard binds at the path and a dot and its pid first (then renames).
    static let maximumSocketPath = 96

    /// Reads `127.0.0.1:8089`, `[::1]:8089`, `0.0.0.0:8089`, `localhost:8089` or `/run/drover/web.sock`;
    /// a failure says what is wrong and what to write instead.
    public static func parse(_ text: String) -> Result<ListenAddress, ListenAddressError> {
        func fail(_ message: String) -> Result<ListenAddress, ListenAddressError> { .failure(ListenAddressError(message: message)) }
        let examples = "127.0.0.1:8089, [::1]:8089 or an absolute unix socket path such as /run/drover/web.sock"
        if text.hasPrefix("/") {
            guard text.utf8.count <= maximumSocketPath else {
                return fail("the unix socket path is \(text.utf8.count) bytes long; Drover takes at most \(maximumSocketPath): choose a shorter path")
            }
            guard !text.hasSuffix("/") else { return fail("\"\(text)\" is a directory; name the socket file in it, such as \(text)web.sock") }
            return .success(.unixSocket(path: text))
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return fail("\"\(text)\" is not an address: write an IPv6 address in brackets with a port, such as [::1]:8089")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard isIPv6(String(host)) else { return fail("\"\(host)\" is not an IPv6 address; write one such as [::1]:8089") }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return fail("\"\(text)\" has no port: write \(examples)")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.contains(":") else { return fail("\"\(text)\": write an IPv6 address in brackets, such as [::1]:8089") }
            guard host == "localhost" || isIPv4(String(host)) else {
                return fail("\"\(host)\" is not an IP address: write an address, not a host name (a name could stand for "
                    + "another address than the one meant), such as 127.0.0.1:8089, 0.0.0.0:8089 or [::1]:8089")
            }
        }
        guard let port = Int(portText), (0...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            return fail("\"\(portText)\" is not a port: use 1 to 65535 (0 takes any free port), such as 127.0.0.1:8089")
        }
        return .success(.tcp(host: host == "localhost" ? "127.0.0.1" : String(host), port: port))
    }

    /// Whether another host could connect: not for a loopback address (127.0.0.0/8, ::1) or a unix
    /// socket; yes for any other address, `0.0.0.0` and `::` included.
    public var reachableFromOtherHosts: Bool {
        switch self {
        case .unixSocket: false
        case .tcp(let host, _): !Self.isLoopback(host)
        }
    }

    /// Whether `host` (an IP address) is a loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.x.x.
    public static func isLoopback(_ host: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        return bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    public var description: String {
        switch self {
        case .unixSocket(let path): path
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch Self.parse(text) {
        case .success(let address): self = address
        case .failure(let error): throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct ListenAddressError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Where the dashboard's password comes from (`web.auth`): never the password itself, which
/// stays out of the configuration, argv, the environment and every log.
public enum WebSecretSource: Sendable, Equatable, Codable, CustomStringConvertible {
    /// `password_file: PATH`: a file only its owner and group may read.
    case file(String)
    /// `credential: NAME`: `$CREDENTIALS_DIRECTORY/NAME`, which systemd fills from the unit's
    /// `LoadCredential=NAME:PATH`.
    case credential(String)

    /// The shortest password taken: a dashboard that can pause queues is worth a long one.
    public static let minimumLength = 16

    public var description: String {
        switch self {
        case .file(let path): "password_file \(path)"
        case .credential(let name): "credential \(name)"
        }
    }

    /// The file that holds the password.
    public func path(environment: [String: String]) throws(WebSecretError) -> String {
        switch self {
        case .file(let path):
            return path
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                throw WebSecretError(
                    "web.auth.credential names the systemd credential \"\(name)\", but $CREDENTIALS_DIRECTORY is not set: "
                        + "give the unit LoadCredential=\(name):/etc/drover/web-password (systemctl edit drover), "
                        + "or use password_file: outside systemd")
            }
            return directory + "/" + name
        }
    }

    /// Reads the password: the file's contents less one final line break. Refuses a file that
    /// every user may read, and a password shorter than ``minimumLength``. Messages name the file
    /// and never its contents.
    public func read(environment: [String: String]) throws(WebSecretError) -> String {
        let path = try path(environment: environment)
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw WebSecretError("cannot read the dashboard's password file \(path): \(String(cString: strerror(errno))); "
                + "create it (such as: openssl rand -base64 32 > \(path)), readable by Drover's user only")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw WebSecretError("the dashboard's password file \(path) is not a regular file") }
        if case .file = self, info.st_mode & S_IROTH != 0 {
            throw WebSecretError("the dashboard's password file \(path) can be read by every user; run: chmod o-r \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WebSecretError("cannot read the dashboard's password file \(path): \(String(cString: strerror(errno)))")
        }
        var bytes = Array(data)
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        let text = String(decoding: bytes, as: UTF8.self)
        guard !bytes.contains(UInt8(ascii: "\n")) else {
            throw WebSecretError("the dashboard's password file \(path) holds more than one line; keep the password alone in it")
        }
        guard text.utf8.count >= Self.minimumLength else {
            throw WebSecretError("the dashboard's password in \(path) is shorter than \(Self.minimumLength) bytes; "
                + "make a longer one (such as: openssl rand -base64 32 > \(path))")
        }
        return text
    }

    /// What changes when the password file is replaced (inode, size, time of change), without its
    /// contents: a reload gives the web child a changed file by starting a new one.
    public func stamp(environment: [String: String]) -> String? {
        guard let path = try? path(environment: environment) else { return nil }
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(info.st_ino)-\(info.st_size)-\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }
}

public struct WebSecretError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Configuration {
    /// The `web:` section: the dashboard and `/metrics`, served by a child of the supervisor.
    public struct Web: Sendable, Equatable {
        public var listen = ListenAddress.defaultAddress
        /// Where the password comes from; nil: no authentication, which only a loopback address or
        /// a unix socket may go without.
        public var auth: WebSecretSource?
        /// Hides every action and refuses every action's POST.
        public var readOnly = false

        public init(listen: ListenAddress = .defaultAddress, auth: WebSecretSource? = nil, readOnly: Bool = false) {
            self.listen = listen
            self.auth = auth
            self.readOnly = readOnly
        }

        /// Why these settings must not run: an address other hosts can reach, with no password.
        public var exposureProblem: String? {
            guard listen.reachableFromOtherHosts, auth == nil else { return nil }
            return "\(listen) can be reached from other hosts, and web.auth is not set: anyone who reaches it could read "
                + "job arguments and pause queues. Add auth: {password_file: /etc/drover/web-password} (or credential: NAME "
                + "with LoadCredential=), or listen on a loopback address (127.0.0.1:PORT) or a unix socket path"
        }
    }
}

extension ConfigReader {
    /// The keys of `web:` and of its `auth:` (drover.yml(5) documents each).
    static let webKeys = ["listen", "auth", "read_only"]
    static let webAuthKeys = ["password_file", "credential"]

    func web(_ node: Node) throws(ConfigurationError) -> Configuration.Web {
        var web = Configuration.Web()
        var listenNode = node
        for entry in try mapping(node, "web", allowed: Self.webKeys) {
            let field = "web.\(entry.key)"
            switch entry.key {
            case "listen":
                listenNode = entry.value
                switch ListenAddress.parse(try string(entry.value, field)) {
                case .success(let address): web.listen = address
                case .failure(let error): throw self.error(entry.value, field, error.message)
                }
            case "read_only": web.readOnly = try bool(entry.value, field)
            default: web.auth = try webAuth(entry.value)
            }
        }
        if let problem = web.exposureProblem { throw error(listenNode, "web.listen", problem) }
        return web
    }

    private func webAuth(_ node: Node) throws(ConfigurationError) -> WebSecretSource {
        let entries = try mapping(node, "web.auth", allowed: Self.webAuthKeys)
        guard entries.count == 1, let entry = entries.first else {
            throw error(node, "web.auth", "needs one of password_file: PATH or credential: NAME (not both)")
        }
        let field = "web.auth.\(entry.key)"
        let value = try string(entry.value, field)
        if entry.key == "password_file" {
            guard value.hasPrefix("/") else { throw error(entry.value, field, "must be an absolute path, such as /etc/drover/web-password") }
            return .file(value)
        }
        guard !value.isEmpty, value.count <= 255, value != ".", value != "..",
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-:".contains($0)) }) else {
            throw error(entry.value, field, "\"\(value)\" is not a credential name: use letters, digits, _ . - and :, as in LoadCredential=web-password:/etc/drover/web-password")
        }
        return .credential(value)
    }
}
