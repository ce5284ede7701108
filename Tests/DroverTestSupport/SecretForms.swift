import Foundation

/// Connection strings that carry a password, one for each way libpq reads one (and a few it
/// refuses), for the tests that check no password is ever shown.
public struct SecretForm: Sendable, CustomStringConvertible {
    public let name: String
    public let connectionString: String
    /// The passwords in it, as libpq (or, for a string it refuses, a reader) would take them.
    public let passwords: [String]
    /// The passwords as written, where that differs from the value (quoted, escaped).
    public let written: [String]
    /// `PGPASSWORD` for this case.
    public let environmentPassword: String?
    /// What the masked string must be exactly, where pinned.
    public let masked: String?

    public var description: String { name }

    /// Every text that must not appear where this string is shown: each password as read, as
    /// written, and percent-encoded in upper and lower case.
    public var forbidden: [String] {
        var texts = passwords + written + (environmentPassword.map { [$0] } ?? [])
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        for password in passwords {
            let encoded = password.addingPercentEncoding(withAllowedCharacters: unreserved)!
            texts += [encoded, encoded.lowercased() == encoded ? encoded : lowerHex(encoded)]
        }
        return Array(Set(texts.filter { !$0.isEmpty }))
    }

    private func lowerHex(_ encoded: String) -> String {
        var out = ""
        var rest = Substring(encoded)
        while let percent = rest.firstIndex(of: "%") {
            out += rest[..<percent]
            let end = rest.index(percent, offsetBy: 3, limitedBy: rest.endIndex) ?? rest.endIndex
            out += rest[percent..<end].lowercased()
            rest = rest[end...]
        }
        return out + rest
    }

    init(_ name: String, _ connectionString: String, passwords: [String], written: [String] = [],
         environmentPassword: String? = nil, masked: String? = nil) {
        self.name = name
        self.connectionString = connectionString
        self.passwords = passwords
        self.written = written
        self.environmentPassword = environmentPassword
        self.masked = masked
    }

    public static let all: [SecretForm] = [
        SecretForm("URL user-info", "postgresql://app:Pw-userinfo-1@db.example/app",
                   passwords: ["Pw-userinfo-1"], masked: "postgresql://app:***@db.example/app"),
        SecretForm("URL user-info, percent-encoded", "postgres://app:s%40cret%2Fpw-2@db.example:5433/app",
                   passwords: ["s@cret/pw-2"], written: ["s%40cret%2Fpw-2"], masked: "postgres://app:***@db.example:5433/app"),
        SecretForm("URL user-info holding ? and :", "postgresql://app:Pw?3:x@db.example/app",
                   passwords: ["Pw?3:x"], masked: "postgresql://app:***@db.example/app"),
        SecretForm("URL query", "postgresql:///app?host=/run/postgresql&password=Pw-query-4&sslmode=disable",
                   passwords: ["Pw-query-4"], masked: "postgresql:///app?host=/run/postgresql&password=***&sslmode=disable"),
        SecretForm("URL query, name and value percent-encoded", "postgresql:///app?pass%77ord=Pw%20query%2D5",
                   passwords: ["Pw query-5"], written: ["Pw%20query%2D5"], masked: "postgresql:///app?pass%77ord=***"),
        SecretForm("URL user-info and query (libpq keeps the query's)", "postgresql://app:Pw-first-6@db/app?password=Pw-second-6",
                   passwords: ["Pw-first-6", "Pw-second-6"], masked: "postgresql://app:***@db/app?password=***"),
        SecretForm("key=value", "host=db password=Pw-pair-7 dbname=app",
                   passwords: ["Pw-pair-7"], masked: "host=db password=*** dbname=app"),
        SecretForm("key = value", "host=db password = Pw-spaced-8 dbname=app",
                   passwords: ["Pw-spaced-8"], masked: "host=db password = *** dbname=app"),
        SecretForm("key= value", "host=db password= Pw-after-9",
                   passwords: ["Pw-after-9"], masked: "host=db password= ***"),
        SecretForm("key =value, tabs", "host=db\tpassword\t=Pw-tab-10\tdbname=app",
                   passwords: ["Pw-tab-10"], masked: "host=db\tpassword\t=***\tdbname=app"),
        SecretForm("quoted, with a blank and an escaped quote", #"host=db password='Pw se cret\'11' dbname=app"#,
                   passwords: ["Pw se cret'11"], written: [#"'Pw se cret\'11'"#, #"cret\'11"#],
                   masked: "host=db password=*** dbname=app"),
        SecretForm("unquoted with backslash escapes", #"password=Pw\ back\\slash-12 host=db"#,
                   passwords: [#"Pw back\slash-12"#], written: [#"Pw\ back\\slash-12"#], masked: "password=*** host=db"),
        SecretForm("two password keys (libpq keeps the last)", "password=Pw-one-13 host=db password = 'Pw-two-13'",
                   passwords: ["Pw-one-13", "Pw-two-13"], masked: "password=*** host=db password = ***"),
        SecretForm("user name equal to the password", "postgresql://Pw-same-14:Pw-same-14@db/app",
                   passwords: ["Pw-same-14"], masked: "postgresql://***:***@db/app"),
        SecretForm("a database name that is a URL with a password", "dbname=postgresql://app:Pw-inner-15@db/app host=db",
                   passwords: ["Pw-inner-15"], masked: "dbname=postgresql://app:***@db/app host=db"),
        SecretForm("PGPASSWORD's value wherever it appears", "host=db user=Pw-env-16 dbname=app",
                   passwords: [], environmentPassword: "Pw-env-16", masked: "host=db user=*** dbname=app"),
        // libpq refuses these: nothing connects with them, but they still reach messages.
        SecretForm("upper-case keyword (refused)", "host=db PASSWORD=Pw-upper-17",
                   passwords: ["Pw-upper-17"], masked: "host=db PASSWORD=***"),
        SecretForm("mixed-case keyword with blanks (refused)", "Password = 'Pw mixed-18' host=db",
                   passwords: ["Pw mixed-18"], written: ["'Pw mixed-18'"], masked: "Password = *** host=db"),
        SecretForm("bad percent escape (refused)", "postgresql://app:Pw%zz-19@db/app",
                   passwords: ["Pw%zz-19"], masked: "postgresql://app:***@db/app"),
        SecretForm("upper-case scheme (refused)", "POSTGRESQL://app:Pw-scheme-20@db/app",
                   passwords: ["Pw-scheme-20"], masked: "POSTGRESQL://app:***@db/app"),
        SecretForm("unterminated quote (refused)", "host=db password='Pw unterminated-21",
                   passwords: ["Pw unterminated-21"], masked: "host=db password=***"),
        SecretForm("@ in an unencoded password (refused)", "postgresql://app:Pw@at-22@db/app?nonsense",
                   passwords: ["Pw@at-22", "Pw"], masked: "postgresql://app:***@db/app?nonsense"),
        // Read both as a pair's value (up to a blank) and as a query's: the longer wins.
        SecretForm("URL query in a refused URL", "postgresql://db/app?password=Pw-q-23&nonsense",
                   passwords: ["Pw-q-23"], masked: "postgresql://db/app?password=***"),
    ]
}
