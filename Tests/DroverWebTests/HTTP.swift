import DroverTestSupport
import Foundation

/// HTTP over a real socket, with curl: a TCP URL, or a unix socket and a path.
struct HTTP {
    struct Answer: CustomStringConvertible {
        let status: Int
        /// Header names in lower case; the last of a repeated one.
        let headers: [String: String]
        let body: String
        var description: String { "HTTP \(status)\n\(headers.sorted { $0.key < $1.key }.map { "\($0): \($1)" }.joined(separator: "\n"))\n\n\(body)" }
    }

    /// `http://127.0.0.1:PORT`, or nil with `unixSocket`.
    let base: String
    let unixSocket: String?

    init(base: String) {
        self.base = base
        unixSocket = nil
    }

    init(unixSocket: String) {
        base = "http://localhost"
        self.unixSocket = unixSocket
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> Answer {
        try request(["-X", "GET"], path, headers: headers)
    }

    /// A form POST (`application/x-www-form-urlencoded`); `form` nil sends no body.
    func post(_ path: String, form: String?, headers: [String: String] = [:]) throws -> Answer {
        try request(["-X", "POST"] + (form.map { ["--data-raw", $0] } ?? []), path, headers: headers)
    }

    private func request(_ arguments: [String], _ path: String, headers: [String: String]) throws -> Answer {
        var argv = ["-sS", "-i", "--max-time", "10", "--noproxy", "*"] + arguments
        if let unixSocket { argv += ["--unix-socket", unixSocket] }
        for (name, value) in headers { argv += ["-H", "\(name): \(value)"] }
        argv.append(base + path)
        let process = try RunningProcess(executable: "/usr/bin/curl", arguments: argv, environment: [:])
        let outcome = try process.wait(timeout: .seconds(20))
        guard outcome.status == 0 else { throw HTTPFailure(description: "curl \(argv.joined(separator: " ")): \(outcome)") }
        return try Self.parse(outcome.stdout)
    }

    static func parse(_ text: String) throws -> Answer {
        guard let split = text.range(of: "\r\n\r\n") else { throw HTTPFailure(description: "no header end in: \(text)") }
        let head = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let fields = head[0].split(separator: " ")
        guard fields.count >= 2, let status = Int(fields[1]) else { throw HTTPFailure(description: "bad status line: \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    /// Basic credentials for `password` (any user name).
    static func basic(_ password: String, user: String = "admin") -> [String: String] {
        ["Authorization": "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()]
    }
}

struct HTTPFailure: Error, CustomStringConvertible {
    let description: String
}

extension HTTP.Answer {
    /// The CSRF token of the page's first form.
    var csrfToken: String? {
        guard let range = body.range(of: "name=\"csrf_token\" value=\"") else { return nil }
        return String(body[range.upperBound...].prefix { $0 != "\"" })
    }
}
