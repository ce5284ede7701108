import Foundation

/// Comparisons and tokens whose timing tells an attacker nothing.
public enum Secrets {
    /// Whether `given` equals `expected`, in a time that depends only on `expected`'s length: every
    /// byte of it is looked at whatever `given` holds, so a wrong guess fails as slowly as an
    /// almost right one.
    ///
    /// ```swift
    /// Secrets.constantTimeEqual(Array(header.utf8), Array(password.utf8))
    /// ```
    @inline(never)
    public static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for index in expected.indices {
            let other = index < given.count ? given[index] : 0
            difference |= other ^ expected[index]
        }
        return difference == 0
    }

    /// 32 bytes from the system's cryptographic generator (getrandom(2)), in hex.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

/// What an `Authorization` header offers, read without judging it.
enum OfferedCredential: Equatable {
    /// HTTP Basic: any user name, the password after its first colon.
    case basic(password: String)
    /// `Bearer TOKEN`.
    case bearer(String)
    case none

    init(header: String?) {
        guard let header else { self = .none; return }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { self = .none; return }
        let scheme = parts[0].lowercased()
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "basic":
            guard let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8),
                  let colon = text.firstIndex(of: ":") else { self = .none; return }
            self = .basic(password: String(text[text.index(after: colon)...]))
        case "bearer":
            self = .bearer(value)
        default:
            self = .none
        }
    }

    /// Whether it carries `secret`, compared in constant time.
    func matches(_ secret: String) -> Bool {
        switch self {
        case .basic(let password): Secrets.constantTimeEqual(Array(password.utf8), Array(secret.utf8))
        case .bearer(let token): Secrets.constantTimeEqual(Array(token.utf8), Array(secret.utf8))
        case .none: false
        }
    }
}
