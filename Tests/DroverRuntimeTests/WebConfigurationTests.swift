import DroverRuntime
import DroverTestSupport
import Foundation
import Testing

/// The `web:` section: addresses, the refusal of an exposed address without a password, and how
/// the password is read (never shown).
@Suite("web: the dashboard's configuration")
struct WebConfigurationTests {
    @Test("listen takes an IPv4 or bracketed IPv6 address with a port, localhost, or a unix socket path", arguments: [
        ("127.0.0.1:8089", ListenAddress.tcp(host: "127.0.0.1", port: 8089), false),
        ("127.1.2.3:80", .tcp(host: "127.1.2.3", port: 80), false),
        ("localhost:9000", .tcp(host: "127.0.0.1", port: 9000), false),
        ("[::1]:8089", .tcp(host: "::1", port: 8089), false),
        ("[::ffff:127.0.0.1]:8089", .tcp(host: "::ffff:127.0.0.1", port: 8089), false),
        ("127.0.0.1:0", .tcp(host: "127.0.0.1", port: 0), false),
        ("/run/drover/web.sock", .unixSocket(path: "/run/drover/web.sock"), false),
        ("0.0.0.0:8089", .tcp(host: "0.0.0.0", port: 8089), true),
        ("192.0.2.10:8089", .tcp(host: "192.0.2.10", port: 8089), true),
        ("[::]:8089", .tcp(host: "::", port: 8089), true),
        ("[2001:db8::1]:443", .tcp(host: "2001:db8::1", port: 443), true),
    ])
    func addresses(_ text: String, _ expected: ListenAddress, _ exposed: Bool) throws {
        let address = try ListenAddress.parse(text).get()
        #expect(address == expected)
        #expect(address.reachableFromOtherHosts == exposed)
        #expect(try ListenAddress.parse(address.description).get() == address, "its description reads back")
    }

    @Test("an address that is not one says what to write", arguments: [
        ("8089", "has no port"),
        ("example.com:8089", "is not an IP address: write an address, not a host name"),
        ("::1:8089", "write an IPv6 address in brackets"),
        ("[::1]8089", "in brackets with a port"),
        ("[nope]:80", "is not an IPv6 address"),
        ("127.0.0.1:65536", "is not a port: use 1 to 65535"),
        ("127.0.0.1:http", "is not a port"),
        ("/run/drover/", "is a directory"),
        ("/" + String(repeating: "d", count: 120), "Drover takes at most 96: choose a shorter path"),
    ])
    func badAddresses(_ text: String, _ message: String) {
        guard case .failure(let error) = ListenAddress.parse(text) else {
            Issue.record("\(text) was taken")
            return
        }
        #expect(error.message.contains(message), "got: \(error.message)")
    }

    @Test("the section reads back as itself from drover check's rendering; no section means no dashboard")
    func section() throws {
        let yaml = """
            web:
              listen: "[::1]:9090"
              auth: {password_file: /etc/drover/web-password}
              read_only: true
            """
        let config = try ConfigurationLoader.parse(yaml, path: "d.yml")
        #expect(config.web == Configuration.Web(listen: .tcp(host: "::1", port: 9090), auth: .file("/etc/drover/web-password"), readOnly: true))
        var back = try ConfigurationLoader.parse(config.renderedYAML(), path: "d.yml")
        back.path = config.path
        #expect(back == config)
        #expect(try ConfigurationLoader.parse("web: {}\n", path: "d.yml").web == Configuration.Web())
        #expect(try ConfigurationLoader.parse("web: {}\n", path: "d.yml").web?.listen.description == "127.0.0.1:8089")
        #expect(try ConfigurationLoader.parse("workers: []\n", path: "d.yml").web == nil)
        let credential = try ConfigurationLoader.parse("web:\n  listen: 0.0.0.0:80\n  auth: {credential: web-password}\n", path: "d.yml")
        #expect(credential.web?.auth == .credential("web-password"))
        #expect(try ConfigurationLoader.parse(credential.renderedYAML(), path: "d.yml").web == credential.web)
    }

    @Test("an address other hosts can reach needs web.auth: the error names the key and the fix", arguments: [
        "web:\n  listen: 0.0.0.0:8089\n", "web:\n  listen: \"[::]:8089\"\n", "web:\n  read_only: true\n  listen: 10.1.2.3:8089\n",
    ])
    func exposedWithoutPassword(_ yaml: String) {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml, path: "d.yml") }
        let text = error?.description ?? ""
        #expect(text.hasPrefix("d.yml:"), "\(text)")
        #expect(text.contains(": web.listen: "), "\(text)")
        #expect(text.contains("can be reached from other hosts, and web.auth is not set"), "\(text)")
        #expect(text.contains("auth: {password_file: /etc/drover/web-password}"), "\(text)")
        #expect(text.contains("listen on a loopback address"), "\(text)")
    }

    @Test("wrong keys and values in web: name the file, the line and the key", arguments: [
        ("web:\n  listen: 8089\n", "d.yml:2: web.listen: \"8089\" has no port"),
        ("web:\n  port: 8089\n", "d.yml:2: web.port: unknown key; the keys allowed here are: listen, auth, read_only"),
        ("web:\n  read_only: yes\n", "d.yml:2: web.read_only: must be true or false"),
        ("web:\n  auth: {password: hunter2hunter2hunter2}\n", "d.yml:2: web.auth.password: unknown key; the keys allowed here are: password_file, credential"),
        ("web:\n  auth: {}\n", "d.yml:2: web.auth: needs one of password_file: PATH or credential: NAME"),
        ("web:\n  auth: {password_file: a, credential: b}\n", "d.yml:2: web.auth: needs one of password_file: PATH or credential: NAME (not both)"),
        ("web:\n  auth: {password_file: web-password}\n", "d.yml:2: web.auth.password_file: must be an absolute path"),
        ("web:\n  auth: {credential: ../x}\n", "d.yml:2: web.auth.credential: \"../x\" is not a credential name"),
        ("web: [127.0.0.1:80]\n", "d.yml:1: web: must be a mapping"),
    ])
    func errors(_ yaml: String, _ expected: String) {
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml, path: "d.yml") }
        #expect(error?.description.hasPrefix(expected) == true, "got: \(error?.description ?? "no error")")
    }

    @Test("the password is the file less one line break; a file every user can read, a short password or none is refused without showing it")
    func passwordFile() throws {
        let directory = try TemporaryDirectory("drover-web-secret")
        let password = "correct horse battery staple"
        let path = try directory.file(password + "\n", named: "web-password", mode: 0o640)
        #expect(try WebSecretSource.file(path).read(environment: [:]) == password)
        try directory.file(password + "\r\n", named: "web-password", mode: 0o600)
        #expect(try WebSecretSource.file(path).read(environment: [:]) == password)

        try directory.file(password, named: "web-password", mode: 0o644)
        let readable = #expect(throws: WebSecretError.self) { try WebSecretSource.file(path).read(environment: [:]) }
        #expect(readable?.description == "the dashboard's password file \(path) can be read by every user; run: chmod o-r \(path)")

        try directory.file("short-secret\n", named: "web-password", mode: 0o600)
        let short = #expect(throws: WebSecretError.self) { try WebSecretSource.file(path).read(environment: [:]) }
        #expect(short?.description.contains("shorter than 16 bytes") == true)
        #expect(short?.description.contains("short-secret") == false, "the message never shows the password")

        let missing = #expect(throws: WebSecretError.self) { try WebSecretSource.file(path + ".gone").read(environment: [:]) }
        #expect(missing?.description.contains("cannot read the dashboard's password file \(path).gone: No such file or directory") == true)
    }

    @Test("a credential is $CREDENTIALS_DIRECTORY/NAME; without that variable the error says to add LoadCredential=")
    func credential() throws {
        let directory = try TemporaryDirectory("drover-web-credential")
        try directory.file("0123456789abcdef0123\n", named: "web-password", mode: 0o400)
        let source = WebSecretSource.credential("web-password")
        #expect(try source.read(environment: ["CREDENTIALS_DIRECTORY": directory.url.path]) == "0123456789abcdef0123")
        let error = #expect(throws: WebSecretError.self) { try source.read(environment: [:]) }
        #expect(error?.description.contains("$CREDENTIALS_DIRECTORY is not set: give the unit LoadCredential=web-password:") == true)
        #expect(source.stamp(environment: ["CREDENTIALS_DIRECTORY": directory.url.path]) != nil)
    }
}
