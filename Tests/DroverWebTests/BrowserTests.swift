import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The dashboard as people use it, in a real browser: Debian's chromium, headless, driven through
/// chromium-driver by Selenium (Tests/Browser/dashboard.py), against `drover start` with its web
/// child: open the overview, filter the failed jobs, open one, retry it, watch it finish, pause a
/// queue, visit the other pages. Screenshots go to a temporary directory, or to
/// DROVER_SCREENSHOT_DIR (docs/images holds the README's).
@Suite("The dashboard in a real browser")
struct BrowserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("overview, filter failed jobs, retry one and watch it finish, pause a queue: in chromium", arguments: [Backend.sqlite, .postgresql])
    func browser(_ backend: Backend) throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/python3"] {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: make test installs it (scripts/install-deps web)")
        }
        let base = try TestBase(backend)
        let okFile = base.directory.url.appendingPathComponent("ok").path
        let config = base.databaseSection + """
            workers:
              - queues: ["*"]
                threads: 2
                polling_interval: 100ms
            dispatchers:
              - polling_interval: 100ms
            supervisor:
              heartbeat_interval: 200ms
              alive_threshold: 2s
              shutdown_timeout: 3s
            handlers:
              SendMail:
                command: [sh, -c, "test -e \\"$OK_FILE\\" || { echo 'relay refused' >&2; exit 1; }"]
                env: {OK_FILE: "\(okFile)"}
                max_attempts: 1
              Report:
                command: ["true"]
            recurring:
              nightly: {class: Report, schedule: "0 3 * * *", time_zone: Europe/Paris}
            web:
              listen: 127.0.0.1:0

            """
        let configPath = try base.directory.file(config)
        let system = try DroverBinary.start(["start", "--config", configPath])
        defer {
            for child in ProcessTable.children(of: system.pid) { kill(child.pid, SIGKILL) }
            kill(system.pid, SIGKILL)
            _ = try? system.wait(timeout: .seconds(10))
        }
        _ = try base.admin.enqueue([
            try NewJob("SendMail", arguments: JSON(validating: #"{"to": "ada@example.com", "note": "<script>alert(1)</script>"}"#), queue: "mail"),
            try NewJob("SendMail", arguments: JSON(validating: #"{"to": "bob@example.com"}"#), queue: "mail"),
        ] + (0..<20).map { _ in NewJob("Report", queue: "reports") })
        try waitUntil("the mail jobs failed", timeout: .seconds(60)) { try base.admin.countJobs(JobFilter(state: .failed)) == 2 }
        let address = try dashboardAddress(of: system)
        let shots = ProcessInfo.processInfo.environment["DROVER_SCREENSHOT_DIR"].map { $0 + "/\(backend.rawValue)" }
            ?? base.directory.url.appendingPathComponent("screenshots").path
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        browser.arguments = [Self.packageRoot.appendingPathComponent("Tests/Browser/dashboard.py").path, "http://\(try #require(address))", shots, okFile]
        let output = Pipe()
        browser.standardOutput = output
        browser.standardError = output
        try browser.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        browser.waitUntilExit()
        let text = String(decoding: printed, as: UTF8.self)
        #expect(browser.terminationStatus == 0, "the browser's steps:\n\(text)\n--- drover ---\n\(system.stderrSoFar.suffix(4000))")
        #expect(text.contains("browser: every step held"), "\(text)")
        #expect(try base.isPaused("mail"), "the browser paused it")
        #expect(try base.admin.countJobs(JobFilter(state: .finished, className: "SendMail")) == 1, "the retried job finished")
        for name in ["overview", "jobs-failed", "job-failed", "job-finished", "overview-paused", "recurring", "concurrency", "processes"] {
            #expect(FileManager.default.fileExists(atPath: "\(shots)/\(name).png"), "screenshot \(name)")
        }
    }
}
