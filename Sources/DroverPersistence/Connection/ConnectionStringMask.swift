import CLibPQ
import Foundation

/// A connection string with every password in it replaced by `***`, and every form those
/// passwords may take in a message, found with libpq's own parser.
///
/// libpq takes a password from a URL's user-info (`postgresql://u:secret@h/db`, percent-decoded),
/// from its query (`?password=secret`), or from a `password = value` pair, quoted or not, with
/// backslash escapes; the last one wins, but every one is masked. The masked text keeps the rest
/// as written: each password's text is replaced where it stands, and the result is parsed again to
/// prove that nothing but passwords changed (else the options libpq read are written out anew,
/// key=value, with `password='***'`). A string libpq refuses cannot connect, but still reaches an
/// error message: it is masked by a looser search (`password` in any case, anywhere; user-info up
/// to the first and to the last `@`).
///
/// Then every secret left is replaced wherever it appears (a user name equal to the password, a
/// database name that is itself a URL with a password, the value of `PGPASSWORD`).
///
/// ```swift
/// ConnectionStringMask("host=db password = 'se cret'").text    // "host=db password = ***"
/// ConnectionStringMask("postgresql://app:s%40cret@db/app").text  // "postgresql://app:***@db/app"
/// ```
struct ConnectionStringMask {
    /// The connection string, every password `***`.
    let text: String
    /// Each password as libpq reads it, as written (quoted, escaped, percent-encoded) and
    /// percent-encoded, and `PGPASSWORD`'s value: what must never reach a message. Longest first.
    let secrets: [String]

    static let marker = "***"

    init(_ raw: String, environmentPassword: String? = ProcessInfo.processInfo.environment["PGPASSWORD"]) {
        let bytes = Array(raw.utf8)
        var secrets: [String] = environmentPassword.map { [$0] } ?? []
        var text: String
        if let options = Self.libpqOptions(raw) {
            let found = Self.uriPrefixLength(bytes).map { Self.passwordsInURL(bytes, from: $0) } ?? Self.passwordsInPairs(bytes)
            text = Self.replacing(found.map(\.range), in: bytes)
            if !Self.onlyPasswordsDiffer(options, Self.libpqOptions(text)) {
                text = Self.rendered(options)
            }
            secrets += found.flatMap(\.forms)
            if let password = options.first(where: { $0.keyword == "password" })?.value {
                secrets += Found.forms(of: Array(password.utf8))
            }
            // libpq expands only the string itself: a dbname that is a connection string in turn is a
            // database name, which messages show.
            if let dbname = options.first(where: { $0.keyword == "dbname" })?.value,
               Self.uriPrefixLength(Array(dbname.utf8)) != nil || dbname.contains("=") {
                secrets += ConnectionStringMask(dbname, environmentPassword: nil).secrets
            }
        } else {
            let found = Self.suspectedPasswords(bytes)
            text = Self.replacing(found.map(\.range), in: bytes)
            secrets += found.flatMap(\.forms)
        }
        let unique = Set(secrets.filter { !$0.isEmpty })
        self.secrets = unique.sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
        self.text = ConnectionString.redact(text, secrets: self.secrets)
    }

    // MARK: - libpq

    /// The options libpq reads from `raw`, in libpq's order; nil when it refuses the string.
    static func libpqOptions(_ raw: String) -> [(keyword: String, value: String)]? {
        var errorMessage: UnsafeMutablePointer<CChar>? = nil
        guard let parsed = PQconninfoParse(raw, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            return nil
        }
        defer { PQconninfoFree(parsed) }
        var options: [(keyword: String, value: String)] = []
        var option = parsed
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { options.append((String(cString: keyword), String(cString: value))) }
            option += 1
        }
        return options
    }

    /// Whether `masked` says what `original` says, but for passwords, which are `***` or empty.
    private static func onlyPasswordsDiffer(
        _ original: [(keyword: String, value: String)], _ masked: [(keyword: String, value: String)]?
    ) -> Bool {
        guard let masked else { return false }
        let others = { (options: [(keyword: String, value: String)]) in options.filter { $0.keyword != "password" }.map { "\($0.keyword)=\($0.value)" } }
        let passwords = masked.filter { $0.keyword == "password" }.map(\.value)
        return others(original) == others(masked) && passwords.allSatisfy { $0 == marker || $0.isEmpty }
    }

    /// `options` as key=value pairs, quoted, with `password='***'`.
    private static func rendered(_ options: [(keyword: String, value: String)]) -> String {
        options.map { option in
            let value = option.keyword == "password" ? marker
                : option.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "\(option.keyword)='\(value)'"
        }.joined(separator: " ")
    }

    // MARK: - Where the passwords are

    /// A password's place in the text, and its value as libpq reads it.
    struct Found {
        var range: Range<Int>
        var written: [UInt8]
        var value: [UInt8]

        /// The password as written, as read, and percent-encoded (none for an empty one).
        var forms: [String] { value.isEmpty ? [] : [String(decoding: written, as: UTF8.self)] + Self.forms(of: value) }

        static func forms(of value: [UInt8]) -> [String] {
            guard !value.isEmpty else { return [] }
            let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
            func encoded(_ digits: String) -> String {
                let digits = Array(digits)
                return value.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : "%\(digits[Int($0 >> 4)])\(digits[Int($0 & 15)])" }
                    .joined()
            }
            return [String(decoding: value, as: UTF8.self), encoded("0123456789ABCDEF"), encoded("0123456789abcdef")]
        }
    }

    /// The length of `postgresql://` or `postgres://` when `bytes` starts with it (libpq's test, case and all).
    static func uriPrefixLength(_ bytes: [UInt8]) -> Int? {
        for prefix in ["postgresql://", "postgres://"] where bytes.starts(with: prefix.utf8) { return prefix.utf8.count }
        return nil
    }

    /// The passwords of a URL libpq accepted: the user-info's, up to the first `@` before any `/`
    /// (libpq's reading), and each query parameter whose percent-decoded name is `password`.
    static func passwordsInURL(_ bytes: [UInt8], from start: Int) -> [Found] {
        var found: [Found] = []
        var hostStart = start
        if let at = bytes[start...].firstIndex(where: { $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: "/") }),
           bytes[at] == UInt8(ascii: "@") {
            if let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":")) {
                found.append(urlPart(bytes, colon + 1..<at))
            }
            hostStart = at + 1
        }
        if let question = bytes[hostStart...].firstIndex(of: UInt8(ascii: "?")) {
            found += passwordsInQuery(bytes, question + 1..<bytes.count) { $0 == "password" }
        }
        return found.filter { !$0.range.isEmpty }
    }

    /// `name=value` parameters separated by `&` in `range`, whose decoded name `matches`.
    private static func passwordsInQuery(_ bytes: [UInt8], _ range: Range<Int>, matches: (String) -> Bool) -> [Found] {
        var found: [Found] = []
        var start = range.lowerBound
        while start < range.upperBound {
            let end = bytes[start..<range.upperBound].firstIndex(of: UInt8(ascii: "&")) ?? range.upperBound
            if let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) {
                let name = percentDecoded(Array(bytes[start..<equals])) ?? Array(bytes[start..<equals])
                if matches(String(decoding: name, as: UTF8.self)) { found.append(urlPart(bytes, equals + 1..<end)) }
            }
            start = end + 1
        }
        return found
    }

    private static func urlPart(_ bytes: [UInt8], _ range: Range<Int>) -> Found {
        let written = Array(bytes[range])
        return Found(range: range, written: written, value: percentDecoded(written) ?? written)
    }

    /// `%XX` decoded as libpq decodes it; nil when an escape is malformed.
    static func percentDecoded(_ bytes: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let byte = UInt8(String(decoding: bytes[i + 1...i + 2], as: UTF8.self), radix: 16) else {
                    return nil
                }
                out.append(byte)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// libpq's `isspace` in the C locale.
    private static func isSpace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D].contains(byte) }

    /// The `password` values of key=value pairs libpq accepted, read by libpq's grammar: a keyword,
    /// blanks, `=`, blanks, then a value quoted with `'` or ending at a blank, `\` escaping the
    /// next character in either.
    static func passwordsInPairs(_ bytes: [UInt8]) -> [Found] {
        var found: [Found] = []
        var i = 0
        while i < bytes.count {
            if isSpace(bytes[i]) { i += 1; continue }
            let keywordStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "="), !isSpace(bytes[i]) { i += 1 }
            let keyword = bytes[keywordStart..<i]
            while i < bytes.count, isSpace(bytes[i]) { i += 1 }
            guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { break }
            i += 1
            while i < bytes.count, isSpace(bytes[i]) { i += 1 }
            let value = pairValue(bytes, at: i)
            if keyword.elementsEqual("password".utf8), !value.range.isEmpty { found.append(value) }
            i = value.range.upperBound
        }
        return found
    }

    /// The value that starts at `start`, as libpq reads it; a quote left open runs to the end.
    private static func pairValue(_ bytes: [UInt8], at start: Int) -> Found {
        var i = start
        var value: [UInt8] = []
        let quoted = i < bytes.count && bytes[i] == UInt8(ascii: "'")
        if quoted { i += 1 }
        while i < bytes.count {
            let byte = bytes[i]
            if !quoted && isSpace(byte) { break }
            if byte == UInt8(ascii: "\\") {
                i += 1
                if i < bytes.count { value.append(bytes[i]); i += 1 }
                continue
            }
            if quoted && byte == UInt8(ascii: "'") { i += 1; break }
            value.append(byte)
            i += 1
        }
        return Found(range: start..<i, written: Array(bytes[start..<i]), value: value)
    }

    /// What looks like a password in a string libpq refuses: `password` in any case followed by
    /// `=` (blanks allowed) anywhere, read as a pair's value and as a URL query's; and, after any
    /// `://`, the user-info's password up to the first and up to the last `@` before any `/`.
    static func suspectedPasswords(_ bytes: [UInt8]) -> [Found] {
        var found: [Found] = []
        let lower = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        let keyword = Array("password".utf8)
        var i = 0
        while i + keyword.count <= lower.count {
            guard lower[i..<i + keyword.count].elementsEqual(keyword) else { i += 1; continue }
            var j = i + keyword.count
            while j < bytes.count, isSpace(bytes[j]) { j += 1 }
            if j < bytes.count, bytes[j] == UInt8(ascii: "=") {
                j += 1
                while j < bytes.count, isSpace(bytes[j]) { j += 1 }
                let pair = pairValue(bytes, at: j)
                let queryEnd = bytes[j...].firstIndex(where: { $0 == UInt8(ascii: "&") || isSpace($0) }) ?? bytes.count
                found += [pair, urlPart(bytes, j..<queryEnd)]
            }
            i += keyword.count
        }
        if let scheme = lower.indices.dropLast(2).first(where: { lower[$0...].starts(with: "://".utf8) }) {
            let start = scheme + 3
            let authorityEnd = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.count
            let ats = bytes[start..<authorityEnd].indices.filter { bytes[$0] == UInt8(ascii: "@") }
            for at in Set([ats.first, ats.last].compactMap { $0 }) {
                if let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":")) { found.append(urlPart(bytes, colon + 1..<at)) }
            }
        }
        return found.filter { !$0.range.isEmpty }
    }

    /// `bytes` with each of `ranges` (which may overlap) replaced by `***`.
    private static func replacing(_ ranges: [Range<Int>], in bytes: [UInt8]) -> String {
        var merged: [Range<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        var out = bytes
        for range in merged.reversed() { out.replaceSubrange(range, with: marker.utf8) }
        return String(decoding: out, as: UTF8.self)
    }
}
