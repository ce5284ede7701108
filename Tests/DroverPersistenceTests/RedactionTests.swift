@testable import DroverPersistence
import DroverTestSupport
import Testing

/// Every way libpq reads a password, masked by libpq's own parser (SecretForm.all).
@Suite("Masking passwords in connection strings")
struct RedactionTests {
    @Test("each form's passwords become ***, in no form left in the text or in the secrets to scrub", arguments: SecretForm.all)
    func masks(form: SecretForm) throws {
        let mask = ConnectionStringMask(form.connectionString, environmentPassword: form.environmentPassword)
        for text in form.forbidden {
            #expect(!mask.text.contains(text), "\(text) is shown: \(mask.text)")
        }
        #expect(mask.text.contains("***"), "\(mask.text)")
        if let masked = form.masked { #expect(mask.text == masked) }
        // What messages are scrubbed of covers every password as libpq reads it.
        for password in form.passwords + [form.environmentPassword].compactMap({ $0 }) {
            #expect(mask.secrets.contains(password), "\(password) is not among \(mask.secrets)")
        }
    }

    @Test("Connection.redacted masks every form the same way, and PGPASSWORD's value")
    func redactedUsesTheMask() {
        for form in SecretForm.all where form.environmentPassword == nil {
            #expect(Connection.redacted(form.connectionString) == ConnectionStringMask(form.connectionString, environmentPassword: nil).text)
        }
    }

    @Test("Connection.redacting masks, in any message, every form of a connection string's passwords and of PGPASSWORD's value")
    func redactingAMessage() {
        for form in SecretForm.all {
            let message = "setup failed: cannot reach \(form.connectionString) (\(form.passwords.joined(separator: ", ")))"
            let masked = Connection.redacting(message, secretsOf: form.connectionString, password: form.environmentPassword)
            for password in form.passwords + [form.environmentPassword].compactMap({ $0 }) where !password.isEmpty {
                #expect(!masked.contains(password), "\(password) is shown: \(masked)")
            }
            #expect(masked.hasPrefix("setup failed: cannot reach "), "\(masked)")
        }
        #expect(Connection.redacting("no secret here", secretsOf: "sqlite:///var/lib/drover.sqlite3", password: nil) == "no secret here")
    }

    @Test("a masked string libpq accepts says what the original says, but for the password")
    func maskedStillParses() throws {
        for form in SecretForm.all {
            guard let original = ConnectionStringMask.libpqOptions(form.connectionString) else { continue }
            let masked = try #require(ConnectionStringMask.libpqOptions(
                ConnectionStringMask(form.connectionString, environmentPassword: nil).text), "\(form)")
            let withoutPassword = { (options: [(keyword: String, value: String)]) in
                options.filter { $0.keyword != "password" }.map { "\($0.keyword)=\($0.value)" }
            }
            // A user or database name that shows a password is masked too.
            let shownElsewhere = original.contains { option in
                option.keyword != "password" && form.forbidden.contains { option.value.contains($0) }
            }
            if !shownElsewhere { #expect(withoutPassword(original) == withoutPassword(masked), "\(form)") }
            #expect(masked.filter { $0.keyword == "password" }.allSatisfy { $0.value == "***" }, "\(form)")
        }
    }

    @Test("strings without a password are shown as written")
    func noPassword() {
        for text in ["", "postgresql:///drover?host=/run/postgresql", "host=/run/postgresql dbname=drover user=app",
                     "postgresql://app@db:5432/app?sslmode=require", "service=drover", "password=", "postgresql://app:@db/app"] {
            #expect(ConnectionStringMask(text, environmentPassword: nil).text == text)
        }
    }

    @Test("a connection string libpq refuses fails with a message that holds none of its passwords")
    func refusedStringError() {
        for form in SecretForm.all where ConnectionStringMask.libpqOptions(form.connectionString) == nil {
            let error = #expect(throws: DatabaseError.self) { try Connection(form.connectionString) }
            #expect(error?.code == .invalidConnectionString, "\(form): \(String(describing: error))")
            for text in form.forbidden { #expect(error?.description.contains(text) == false, "\(form): \(String(describing: error))") }
        }
    }
}
