import DroverTestSupport
import Foundation
import Testing

@Suite("drover check")
struct CheckCommandTests {
    private func withFile<R>(_ text: String, mode: mode_t = 0o644, _ body: (String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory("drover-check")
        return try body(try directory.file(text, mode: mode))
    }

    @Test("a valid file prints the configuration in effect, defaults filled in, password hidden; exit 0")
    func valid() throws {
        try withFile("database:\n  url: postgresql://app:hunter22@db/app\nworkers:\n  - queues: [mail]\n    threads: 2\n") { path in
            let outcome = try DroverBinary.run(["check", "--config", path])
            #expect(outcome.status == 0, "\(outcome)")
            #expect(outcome.stdout.hasPrefix("# \(path) is valid"))
            #expect(outcome.stdout.contains("  - queues: [\"mail\"]\n    threads: 2\n    processes: 1\n    polling_interval: 1s"))
            #expect(outcome.stdout.contains("dispatchers:\n  - polling_interval: 1s\n    batch_size: 500"))
            #expect(outcome.stdout.contains("shutdown_timeout: 30s"))
            #expect(outcome.stdout.contains("postgresql://app:***@db/app") && !outcome.stdout.contains("hunter22"))
            let quiet = try DroverBinary.run(["check", "--config", path, "--quiet"])
            #expect(quiet.status == 0 && quiet.stdout.isEmpty)
            // It reads DROVER_CONFIG when --config is not given.
            #expect(try DroverBinary.run(["check"], environment: ["DROVER_CONFIG": path]).stdout.hasPrefix("# \(path) is valid"))
        }
    }

    @Test("the database in effect, from --database-url or the file, is shown with every password as ***", arguments: SecretForm.all)
    func maskedDatabase(form: SecretForm) throws {
        let directory = try TemporaryDirectory("drover-check")
        let plain = try directory.file("workers: []\n", named: "plain.yml")
        let quoted = String(decoding: try JSONEncoder().encode(form.connectionString), as: UTF8.self)
        let inline = try directory.file("database:\n  url: \(quoted)\nworkers: []\n", named: "inline.yml")
        let environment: [String: String?] = ["PGPASSWORD": form.environmentPassword]
        let fromFlag = try DroverBinary.run(["check", "--config", plain, "--database-url", form.connectionString], environment: environment)
        let fromFile = try DroverBinary.run(["check", "--config", inline], environment: environment)
        for (outcome, source) in [(fromFlag, "--database-url"), (fromFile, "database.url in \(inline)")] {
            #expect(outcome.status == 0, "\(outcome)")
            let everything = outcome.stdout + outcome.stderr
            for text in form.forbidden { #expect(!everything.contains(text), "\(text) is shown: \(outcome)") }
            if let masked = form.masked {
                #expect(outcome.stdout.contains("# the database in effect: PostgreSQL \(masked), schema drover (from \(source))"), "\(outcome)")
            }
            #expect(outcome.stdout.contains("***"))
        }
    }

    @Test("a handler's env values whose names look secret are printed as ***")
    func secretEnvironment() throws {
        let text = "handlers:\n  Send:\n    command: [sh]\n    env: {API_KEY: k-123, db_password: p-456, GithubToken: t-789, LANG: C.UTF-8}\n"
        try withFile(text) { path in
            let outcome = try DroverBinary.run(["check", "--config", path])
            #expect(outcome.status == 0, "\(outcome)")
            #expect(outcome.stdout.contains(#"env: {"API_KEY": "***", "GithubToken": "***", "LANG": "C.UTF-8", "db_password": "***"}"#))
            for secret in ["k-123", "p-456", "t-789"] { #expect(!outcome.stdout.contains(secret)) }
        }
    }

    @Test("a handler whose program is missing or not executable is a warning, not an error")
    func handlerPrograms() throws {
        let text = """
            handlers:
              Present:
                command: [sh, -c, "true"]
              Missing:
                command: [no-such-program-for-drover]
              Unrunnable:
                command: [/etc/passwd]
            """
        try withFile(text) { path in
            let outcome = try DroverBinary.run(["check", "--config", path, "--quiet"])
            #expect(outcome.status == 0, "\(outcome)")
            let warnings = outcome.stderr.split(separator: "\n")
            #expect(warnings == [
                "drover: warning: handlers.Missing.command: no-such-program-for-drover is not in PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? "")); its jobs will fail until it is installed",
                "drover: warning: handlers.Unrunnable.command: /etc/passwd is not an executable file; its jobs will fail until it is",
            ])
        }
    }

    @Test("an invalid or unsafe file exits 78 naming file, line and key; nothing is printed on stdout")
    func invalid() throws {
        try withFile("workers:\n  - queues: [mail]\n    threads: 0\n") { path in
            let outcome = try DroverBinary.run(["check", "--config", path])
            #expect(outcome.status == 78, "\(outcome)")
            #expect(outcome.stderr == "drover: error: \(path):3: workers[0].threads: 0 is out of range: use 1 to 256\n")
            #expect(outcome.stdout.isEmpty)
        }
        try withFile("workers: []\n", mode: 0o666) { path in
            let outcome = try DroverBinary.run(["check", "--config", path])
            #expect(outcome.status == 78 && outcome.stderr.contains("writable by its group and by other users (mode 0666)"), "\(outcome)")
        }
        // A group-writable file decides what runs as much as a world-writable one.
        try withFile("workers: []\n", mode: 0o664) { path in
            let outcome = try DroverBinary.run(["check", "--config", path])
            #expect(outcome.status == 78, "\(outcome)")
            #expect(outcome.stderr.contains("\(path): is writable by its group (mode 0664)") && outcome.stderr.contains("run: chmod go-w \(path)"),
                    "\(outcome)")
        }
        if geteuid() == 0 {
            try withFile("workers: []\n", mode: 0o644) { path in
                let nobody = try #require(getpwnam("nobody")).pointee.pw_uid
                #expect(chown(path, nobody, 0) == 0)
                chmod(URL(fileURLWithPath: path).deletingLastPathComponent().path, 0o755)
                let outcome = try DroverBinary.run(["check", "--config", path])
                #expect(outcome.status == 78 && outcome.stderr.contains("is owned by nobody (uid \(nobody)), not by root")
                        && outcome.stderr.contains("run: chown root \(path)"), "\(outcome)")
                // As the owner itself, the file is its own to keep.
                let asOwner = try DroverBinary.run(["check", "--config", path], launcher: ["/usr/bin/setpriv", "--reuid=\(nobody)", "--regid=65534", "--clear-groups"])
                #expect(asOwner.status == 0, "\(asOwner)")
            }
        }
        let missing = try DroverBinary.run(["check", "--config", "/nonexistent/drover.yml"])
        #expect(missing.status == 78 && missing.stderr.contains("/nonexistent/drover.yml: cannot read"), "\(missing)")
    }
}
