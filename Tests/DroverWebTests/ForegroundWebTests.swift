import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// `drover web` in the foreground, over real sockets, on both databases: what it serves, and
/// what it refuses.
@Suite("drover web: the dashboard in the foreground")
struct ForegroundWebTests {
    @Test("serves the overview, /healthz and /metrics with the security headers, and stops on TERM", arguments: Backend.allCases)
    func servesOverview(_ backend: Backend) throws {
        let base = try TestBase(backend)
        _ = try base.admin.enqueue([NewJob("SendReport", queue: "mail")])
        _ = try base.admin.pause("reports")
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let page = try web.http.get("/")
        #expect(page.status == 200, "\(page)")
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        page.expectSecurityHeaders()
        #expect(page.body.contains("<title>Overview · Drover</title>"))
        #expect(page.body.contains("<td class=\"name\">mail</td><td>1</td>"), "mail: one ready job\n\(page.body)")
        #expect(page.body.contains("<tr class=\"paused\">\n<td class=\"name\">reports</td>"), "reports: paused\n\(page.body)")
        #expect(page.body.contains(backend == .sqlite ? "SQLite" : "PostgreSQL"))
        #expect(page.body.contains("<script src=\"/static/drover.js"), "the only script is the server's own file")
        #expect(!page.body.contains("<script>") && !page.body.contains(" onclick=") && !page.body.contains("<style"),
                "nothing inline: the policy would block it")

        let health = try web.http.get("/healthz")
        #expect(health.status == 200 && health.body == "ok\n", "\(health)")
        health.expectSecurityHeaders()
        let metrics = try web.http.get("/metrics")
        #expect(metrics.status == 200 && metrics.body.contains("drover_queue_jobs{queue=\"mail\",state=\"ready\"} 1\n"), "\(metrics)")
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        let script = try web.http.get("/static/drover.js")
        #expect(script.status == 200 && script.body.contains("data-confirm"), "\(script)")
        script.expectSecurityHeaders(cacheable: true)
        let missing = try web.http.get("/no/such/page")
        #expect(missing.status == 404)
        missing.expectSecurityHeaders()

        let outcome = try web.stop()
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stderr.contains("msg=stopping reason=SIGTERM"))
    }

    /// PostgreSQL only: a server stopped under a running dashboard is a networked database's
    /// failure; a SQLite file is opened by the serving process itself and does not go away.
    @Test("PostgreSQL stopped under drover web: /metrics still answers (database up 0, the outage growing, promtool-valid), pages say 503 without the password; started again, both recover")
    func databaseDown() throws {
        let cluster = try PrivateCluster()
        // The server trusts local connections: the password is there to be kept out of sight.
        let url = cluster.url + "&password=hunter2-secret"
        let migrated = try DroverBinary.run(["migrate", "--database-url", url])
        let enqueued = try DroverBinary.run(["enqueue", "SendReport", "--queue", "mail", "--database-url", url])
        #expect(migrated.status == 0 && enqueued.status == 0, "\(migrated)\n\(enqueued)")
        let web = try ForegroundWeb(["--database-url", url, "--listen", "127.0.0.1:0"])
        let up = try web.http.get("/metrics").body
        #expect(up.contains("drover_database_up 1\n") && up.contains("drover_queue_jobs{queue=\"mail\",state=\"ready\"} 1\n"), "\(up)")
        try cluster.stop()
        let first = try web.http.get("/metrics")
        #expect(first.status == 200, "\(first)")
        #expect(first.body.contains("drover_database_up 0\n"), "\(first.body)")
        #expect(!first.body.contains("drover_queue_jobs"), "no figure from the database is made up")
        let (status, output) = try Promtool.check(first.body)
        #expect(status == 0, "promtool check metrics: \(output)\n\(first.body)")
        func outage(_ body: String) -> Double? {
            body.split(separator: "\n").first { $0.hasPrefix("drover_database_outage_seconds ") }
                .flatMap { Double($0.split(separator: " ")[1]) }
        }
        let start = try #require(outage(first.body), "\(first.body)")
        var later = start
        try waitUntil("the outage grows", timeout: .seconds(10)) {
            later = outage(try web.http.get("/metrics").body) ?? 0
            return later >= start + 1
        }
        let page = try web.http.get("/")
        #expect(page.status == 503, "\(page)")
        for answer in [first, page] {
            #expect(!answer.body.contains("hunter2-secret") && !answer.body.contains(cluster.directory), "\(answer.body)")
        }
        try cluster.start()
        try waitUntil("the dashboard is back", timeout: .seconds(30)) {
            try web.http.get("/metrics").body.contains("drover_database_up 1\n") && web.http.get("/").status == 200
        }
        let outcome = try web.stop()
        #expect(!outcome.stderr.contains("hunter2-secret"), "no password in the log")
        #expect(outcome.stderr.contains("level=error") || outcome.stderr.contains("level=warning"), "the failure is logged\n\(outcome.stderr)")
    }

    @Test("a POST without the CSRF token or with a wrong one is refused (403) and changes nothing; with the page's token it pauses and resumes the queue",
          arguments: Backend.allCases)
    func csrf(_ backend: Backend) throws {
        let base = try TestBase(backend)
        _ = try base.admin.enqueue([NewJob("SendReport", queue: "mail")])
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let page = try web.http.get("/")
        let token = try #require(page.csrfToken, "the page has a form with a token\n\(page.body)")
        #expect(token.count == 64)
        #expect(page.body.contains("<form method=\"post\" action=\"/queues/mail/pause\" data-confirm=\"Pause queue mail?\">"))

        for form in [nil, "", "csrf_token=", "csrf_token=\(String(repeating: "0", count: 64))", "csrf_token=\(token.dropLast())",
                     "csrf_token=\(token)0", "token=\(token)"] as [String?] {
            let refused = try web.http.post("/queues/mail/pause", form: form)
            #expect(refused.status == 403, "form \(form ?? "(none)"): \(refused)")
            #expect(refused.body.contains("CSRF token is missing or wrong"), "\(refused)")
            refused.expectSecurityHeaders()
        }
        let crossSite = try web.http.post("/queues/mail/pause", form: "csrf_token=\(token)", headers: ["Sec-Fetch-Site": "cross-site"])
        #expect(crossSite.status == 403, "a browser's word that the form came from another site: \(crossSite)")
        #expect(try !base.isPaused("mail"), "no refused request paused the queue")
        // GET never changes anything.
        #expect(try web.http.get("/queues/mail/pause").status == 404)
        #expect(try !base.isPaused("mail"))

        let paused = try web.http.post("/queues/mail/pause", form: "csrf_token=\(token)")
        #expect(paused.status == 303 && paused.headers["location"] == "/", "\(paused)")
        #expect(try base.isPaused("mail"))
        let after = try web.http.get("/")
        #expect(after.body.contains("action=\"/queues/mail/resume\""), "a paused queue offers resume\n\(after.body)")
        let resumed = try web.http.post("/queues/mail/resume", form: "csrf_token=\(try #require(after.csrfToken))")
        #expect(resumed.status == 303, "\(resumed)")
        #expect(try !base.isPaused("mail"))
        let invalid = try web.http.post("/queues/bad%20name/pause", form: "csrf_token=\(token)")
        #expect(invalid.status == 400, "a queue name that breaks the rules: \(invalid)")
    }

    @Test("a job class is paused from the overview (a POST with the token) on every queue, listed with its waiting jobs, and resumed",
          arguments: Backend.allCases)
    func pauseClass(_ backend: Backend) throws {
        let base = try TestBase(backend)
        _ = try base.admin.enqueue([NewJob("Sync", queue: "a"), NewJob("Sync", queue: "b"), NewJob("Mail", queue: "a")])
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let page = try web.http.get("/")
        #expect(page.body.contains("No job class is paused.") && page.body.contains("action=\"/classes/pause\""))
        let token = try #require(page.csrfToken)
        #expect(try web.http.post("/classes/pause", form: "class=Sync").status == 403, "no token")
        #expect(try base.admin.pausedClasses().isEmpty)
        let bad = try web.http.post("/classes/pause", form: "csrf_token=\(token)&class=%3Cscript%3E")
        #expect(bad.status == 400 && bad.body.contains("is not a valid class name"), "\(bad)")
        // The refused name is said back as plain text, which no browser runs.
        #expect(bad.headers["content-type"] == "text/plain; charset=utf-8" && bad.headers["x-content-type-options"] == "nosniff")
        let paused = try web.http.post("/classes/pause", form: "csrf_token=\(token)&class=Sync")
        #expect(paused.status == 303 && paused.headers["location"] == "/", "\(paused)")
        #expect(try base.admin.pausedClasses().map(\.className) == ["Sync"])
        let after = try web.http.get("/")
        #expect(after.body.contains("<tr class=\"paused\"><td class=\"name\">Sync</td><td>2</td>"), "\(after.body)")
        #expect(after.body.contains("action=\"/classes/Sync/resume\""))
        let resumed = try web.http.post("/classes/Sync/resume", form: "csrf_token=\(try #require(after.csrfToken))")
        #expect(resumed.status == 303, "\(resumed)")
        #expect(try base.admin.pausedClasses().isEmpty)
    }

    @Test("read-only: the page has no form and no token, and every action is refused (403)", arguments: Backend.allCases)
    func readOnly(_ backend: Backend) throws {
        let base = try TestBase(backend)
        _ = try base.admin.enqueue([NewJob("SendReport", queue: "mail")])
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0", "--read-only"])
        let page = try web.http.get("/")
        #expect(page.status == 200)
        #expect(page.body.contains("<td class=\"name\">mail</td>"))
        #expect(!page.body.contains("<form") && !page.body.contains("csrf_token") && !page.body.contains("<button"), "\(page.body)")
        #expect(page.body.contains("read-only"))
        let refused = try web.http.post("/queues/mail/pause", form: "csrf_token=whatever")
        #expect(refused.status == 403 && refused.body.contains("read-only"), "\(refused)")
        #expect(try !base.isPaused("mail"))
    }

    @Test("values from the database are escaped: a job's arguments or a host name holding <script> show as text", arguments: Backend.allCases)
    func escaping(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let attack = "<script>alert(1)</script>"
        let id = try base.admin.enqueue([NewJob("SendReport", arguments: try JSON(validating: #"{"note": "<script>alert(1)</script>", "quote": "\"'&"}"#))])[0]
        try base.registerProcess(name: "worker-evil", hostname: attack + "\"><img src=x onerror=alert(2)>")
        try base.admin.addTask(RecurringTask(key: "nightly", schedule: "@daily", className: "Report", arguments: try JSON(validating: #"{"x": "<script>"}"#)))
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        // Every page, and a filter that echoes what was typed.
        for path in ["/jobs", "/jobs/\(id)", "/processes", "/recurring", "/concurrency", "/jobs?text=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                     "/jobs?queue=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/jobs/bulk?action=cancel&class=%3Cscript%3Ealert(1)%3C%2Fscript%3E"] {
            let other = try web.http.get(path)
            #expect(other.status == 200, "\(path): \(other)")
            #expect(!other.body.contains(attack) && !other.body.contains("<img src=x"), "\(path): \(other.body)")
            other.expectSecurityHeaders()
        }
        #expect(try web.http.get("/jobs/\(id)").body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the job's arguments show as text")
        let page = try web.http.get("/")
        #expect(page.status == 200)
        #expect(!page.body.contains(attack), "\(page.body)")
        #expect(!page.body.contains("<img src=x"), "\(page.body)")
        #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the arguments show as text\n\(page.body)")
        #expect(page.body.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;</td>"),
                "the host name shows as text\n\(page.body)")
        #expect(page.body.contains("&quot;\\&quot;&#39;&amp;&quot;"), "quotes and ampersands too\n\(page.body)")
    }

    @Test("on a loopback address with no password, a request naming another host (DNS rebinding) is refused")
    func hostCheck() throws {
        let base = try TestBase(.sqlite)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let port = web.address.split(separator: ":").last.map(String.init) ?? ""
        for host in ["evil.example", "evil.example:\(port)", "127.0.0.1.evil.example"] {
            let refused = try web.http.get("/", headers: ["Host": host])
            #expect(refused.status == 421, "Host: \(host): \(refused)")
            refused.expectSecurityHeaders()
        }
        for host in ["localhost:\(port)", "127.0.0.1:\(port)", "[::1]:\(port)", "localhost"] {
            #expect(try web.http.get("/", headers: ["Host": host]).status == 200, "Host: \(host)")
        }
    }

    @Test("a password: 401 without it or with a wrong one; 200 with it as Basic (any user) or Bearer; /healthz needs none")
    func authentication() throws {
        let base = try TestBase(.sqlite)
        let password = "a-long-dashboard-password-0123"
        let file = try base.directory.file(password + "\n", named: "web-password", mode: 0o600)
        let config = try base.directory.file(base.databaseSection + "web:\n  listen: 0.0.0.0:0\n  auth: {password_file: \(file)}\n")
        let web = try ForegroundWeb(["--config", config])
        let port = try #require(web.address.split(separator: ":").last)
        #expect(web.address == "0.0.0.0:\(port)", "an address other hosts can reach, allowed with a password")
        let http = HTTP(base: "http://127.0.0.1:\(port)")
        for headers in [[:], HTTP.basic("wrong-password-but-long-enough"), HTTP.basic(password + "x"), HTTP.basic(String(password.dropLast())),
                        ["Authorization": "Bearer wrong"], ["Authorization": "Bearer"], ["Authorization": "Basic !!!"],
                        ["Authorization": password]] {
            let refused = try http.get("/", headers: headers)
            #expect(refused.status == 401, "\(headers): \(refused)")
            #expect(refused.headers["www-authenticate"] == "Basic realm=\"Drover\", charset=\"UTF-8\"")
            #expect(!refused.body.contains("mail") && !refused.body.contains(password))
            refused.expectSecurityHeaders()
            #expect(try http.get("/metrics", headers: headers).status == 401)
            #expect(try http.post("/queues/mail/pause", form: "csrf_token=x", headers: headers).status == 401)
        }
        #expect(try http.get("/", headers: HTTP.basic(password)).status == 200)
        #expect(try http.get("/", headers: HTTP.basic(password, user: "")).status == 200)
        #expect(try http.get("/metrics", headers: ["Authorization": "Bearer \(password)"]).status == 200)
        // Host names are anyone's with a password: a reverse proxy passes its own.
        #expect(try http.get("/", headers: HTTP.basic(password).merging(["Host": "drover.example"]) { a, _ in a }).status == 200)
        let health = try http.get("/healthz")
        #expect(health.status == 200 && health.body == "ok\n", "\(health)")
        #expect(!web.process.stderrSoFar.contains(password), "the password is never logged")
    }

    @Test("an address other hosts can reach without a password is refused: exit 78, and the message names the fix")
    func exposedWithoutPassword() throws {
        let base = try TestBase(.sqlite)
        for listen in ["0.0.0.0:8089", "[::]:8089"] {
            let outcome = try DroverBinary.run(["web"] + base.arguments + ["--listen", listen])
            #expect(outcome.status == 78, "\(outcome)")
            #expect(outcome.stderr.contains("--listen: web.listen: \(listen) can be reached from other hosts, and web.auth is not set"), "\(outcome)")
            #expect(outcome.stderr.contains("auth: {password_file: /etc/drover/web-password}"), "\(outcome)")
        }
        let config = try base.directory.file(base.databaseSection + "web:\n  listen: 0.0.0.0:8089\n")
        for command in [["web"], ["check"], ["start"]] {
            let outcome = try DroverBinary.run(command + ["--config", config])
            #expect(outcome.status == 78, "\(command): \(outcome)")
            #expect(outcome.stderr.contains("web.listen: 0.0.0.0:8089 can be reached from other hosts"), "\(command): \(outcome)")
        }
        let usage = try DroverBinary.run(["web", "--listen", "example.com:80"])
        #expect(usage.status == 64, "\(usage)")
        #expect(usage.stderr.contains("--listen: \"example.com\" is not an IP address"), "\(usage)")
    }

    @Test("a password file every user may read, or one that is missing, is a configuration error (78) that never shows the password")
    func badPasswordFile() throws {
        let base = try TestBase(.sqlite)
        let password = "visible-to-all-users-0123456789"
        let file = try base.directory.file(password, named: "web-password", mode: 0o644)
        let config = try base.directory.file(base.databaseSection + "web:\n  listen: 127.0.0.1:0\n  auth: {password_file: \(file)}\n")
        let outcome = try DroverBinary.run(["web", "--config", config])
        #expect(outcome.status == 78, "\(outcome)")
        #expect(outcome.stderr.contains("web.auth: the dashboard's password file \(file) can be read by every user; run: chmod o-r \(file)"), "\(outcome)")
        #expect(!outcome.stderr.contains(password))
        let started = try DroverBinary.run(["start", "--config", config])
        #expect(started.status == 78 && started.stderr.contains("chmod o-r"), "\(started)")
        #expect(!started.stderr.contains(password))
    }

    @Test("a unix socket: served with mode 0660, and the file is gone once it stops")
    func unixSocket() throws {
        let base = try TestBase(.sqlite)
        let path = base.directory.url.appendingPathComponent("web.sock").path
        let web = try ForegroundWeb(base.arguments + ["--listen", path])
        var info = stat()
        #expect(stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o660)
        let page = try web.http.get("/", headers: ["Host": "drover.example"])
        #expect(page.status == 200, "a unix socket has no Host check: a reverse proxy names its own\n\(page)")
        #expect(try web.http.get("/healthz").body == "ok\n")
        #expect(try web.stop().status == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a database that cannot be used is said at once: exit 69")
    func databaseUnavailable() throws {
        let outcome = try DroverBinary.run(["web", "--database-url", "postgresql:///drover?host=/nonexistent&connect_timeout=2", "--listen", "127.0.0.1:0"])
        #expect(outcome.status == 69, "\(outcome)")
    }
}
