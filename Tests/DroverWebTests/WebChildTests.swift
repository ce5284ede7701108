import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// The supervisor's web child: started from `web:`, registered as kind web, supervised like the
/// others (restarted after SIGKILL), added, replaced and removed by reload; on both databases.
@Suite("drover start: the web child")
struct WebChildTests {
    /// A `drover start` whose configuration is the backend's database, one worker and `rest`.
    final class Supervised {
        let base: TestBase
        let listener: NotifyListener
        let configPath: String
        let process: RunningProcess

        static let fast = """
            workers:
              - queues: ["*"]
                threads: 1
            dispatchers: []
            supervisor:
              heartbeat_interval: 200ms
              alive_threshold: 1s
              shutdown_timeout: 2s

            """

        init(_ backend: Backend, web: String) throws {
            base = try TestBase(backend)
            listener = try NotifyListener()
            configPath = try base.directory.file(base.databaseSection + Self.fast + web)
            process = try DroverBinary.start(["start", "--config", configPath], environment: ["NOTIFY_SOCKET": listener.path])
        }

        deinit {
            for child in ProcessTable.children(of: process.pid) { kill(child.pid, SIGKILL) }
            kill(process.pid, SIGKILL)
            _ = try? process.wait(timeout: .seconds(10))
        }

        func waitForReady(number: Int = 0) throws -> NotifyListener.Message {
            var found: NotifyListener.Message?
            try waitUntil("READY=1 (number \(number + 1))", timeout: .seconds(30)) {
                let ready = listener.messages.filter { $0.fields["READY"] == "1" }
                found = ready.count > number ? ready[number] : nil
                return found != nil
            }
            return found!
        }

        /// The web processes registered now.
        func webProcesses() throws -> [ProcessSummary] { try base.admin.listProcesses().filter { $0.kind == .web } }

        func rewrite(web: String) throws {
            try base.directory.file(base.databaseSection + Self.fast + web)
        }

        /// Waits until exactly one web process is registered, other than `except`, and returns it.
        func waitForWeb(except old: Int? = nil) throws -> ProcessSummary {
            var found: ProcessSummary?
            try waitUntil("one web process registered\(old.map { " other than pid \($0)" } ?? "")", timeout: .seconds(30)) {
                let web = try webProcesses()
                found = web.count == 1 && web[0].pid != old ? web[0] : nil
                return found != nil
            }
            return found!
        }
    }

    @Test("the supervisor starts, restarts after SIGKILL, replaces and removes its web child", arguments: Backend.allCases)
    func superviseWebChild(_ backend: Backend) throws {
        let directory = try TemporaryDirectory("drover-websock")
        let socket = directory.url.appendingPathComponent("web.sock").path
        let run = try Supervised(backend, web: "web:\n  listen: \(socket)\n")
        let ready = try run.waitForReady()
        #expect(ready.fields["STATUS"]?.hasPrefix("1 worker, 0 dispatchers, web on \(socket); ") == true, "\(ready)")

        // Registered as kind web, a child of this supervisor, with its address in its heartbeats.
        let first = try run.waitForWeb()
        let supervisor = try #require(try run.base.admin.listProcesses().first { $0.kind == .supervisor })
        #expect(first.supervisorID == supervisor.id)
        #expect(ProcessTable.children(of: run.process.pid).contains { $0.pid == pid_t(first.pid) })
        let http = HTTP(unixSocket: socket)
        #expect(try http.get("/healthz").body == "ok\n")
        let page = try http.get("/")
        #expect(page.status == 200 && page.body.contains("<td>web</td><td class=\"name\">\(first.name)</td>"), "the page lists itself\n\(page)")

        // SIGKILL: replaced after the backoff, and serving again on the same path.
        kill(pid_t(first.pid), SIGKILL)
        let second = try run.waitForWeb(except: first.pid)
        try waitUntil("the new web child serves", timeout: .seconds(20)) { (try? http.get("/healthz").status) == 200 }
        #expect(run.process.stderrSoFar.contains("name=\(first.name) kind=web how=\"was killed by signal 9 (SIGKILL)\""))

        // Reload with web changed (read-only): the child is replaced, and the new one hides the actions.
        _ = try run.base.admin.enqueue([NewJob("Nothing", queue: "mail")])
        try run.rewrite(web: "web:\n  listen: \(socket)\n  read_only: true\n")
        kill(run.process.pid, SIGHUP)
        let third = try run.waitForWeb(except: second.pid)
        try waitUntil("the read-only child serves", timeout: .seconds(20)) {
            guard let page = try? http.get("/"), page.status == 200 else { return false }
            return page.body.contains("read-only") && !page.body.contains("<form")
        }
        #expect(third.pid != second.pid)

        // Reload without web: removed, its socket gone; the worker keeps running.
        let worker = try #require(try run.base.admin.listProcesses().first { $0.kind == .worker })
        try run.rewrite(web: "")
        kill(run.process.pid, SIGHUP)
        try waitUntil("no web process", timeout: .seconds(20)) { try run.webProcesses().isEmpty }
        try waitUntil("the socket is gone", timeout: .seconds(10)) { !FileManager.default.fileExists(atPath: socket) }
        #expect(try run.base.admin.listProcesses().contains { $0.kind == .worker && $0.pid == worker.pid })

        // And back: added by a reload, on TCP this time (port 0: the address it got is in its heartbeat).
        try run.rewrite(web: "web: {listen: \"127.0.0.1:0\"}\n")
        kill(run.process.pid, SIGHUP)
        _ = try run.waitForWeb()
        var address: String?
        try waitUntil("the web child says where it listens", timeout: .seconds(20)) {
            address = try Self.listenAddress(in: run.base)
            return address.map { !$0.hasSuffix(":0") } ?? false
        }
        #expect(try HTTP(base: "http://\(address!)").get("/healthz").body == "ok\n")

        kill(run.process.pid, SIGTERM)
        let outcome = try run.process.wait(timeout: .seconds(30))
        #expect(outcome.status == 0, "\(outcome)")
        #expect(try run.webProcesses().isEmpty, "the web child deregistered")
    }

    @Test("with a password: the child asks for it (401, then 200), and it is in none of the child's argv, environment or log",
          arguments: Backend.allCases)
    func passwordStaysSecret(_ backend: Backend) throws {
        let secrets = try TemporaryDirectory("drover-web-secret")
        let password = "child-password-\(UUID().uuidString)"
        let file = try secrets.file(password + "\n", named: "web-password", mode: 0o600)
        let run = try Supervised(backend, web: "web:\n  listen: \"127.0.0.1:0\"\n  auth: {password_file: \(file)}\n")
        _ = try run.waitForReady()
        let web = try run.waitForWeb()
        var address: String?
        try waitUntil("the web child says where it listens", timeout: .seconds(20)) {
            address = try Self.listenAddress(in: run.base)
            return address.map { !$0.hasSuffix(":0") } ?? false
        }
        let http = HTTP(base: "http://\(address!)")
        #expect(try http.get("/").status == 401)
        #expect(try http.get("/", headers: HTTP.basic("not-" + password)).status == 401)
        #expect(try http.get("/", headers: HTTP.basic(password)).status == 200)
        #expect(try http.get("/metrics", headers: ["Authorization": "Bearer \(password)"]).status == 200)
        for file in ["cmdline", "environ"] {
            let contents = try String(decoding: Data(contentsOf: URL(fileURLWithPath: "/proc/\(web.pid)/\(file)")), as: UTF8.self)
            #expect(!contents.contains(password), "/proc/\(web.pid)/\(file) shows the password")
        }
        #expect(!run.process.stderrSoFar.contains(password), "the log shows the password")
        #expect(run.process.stderrSoFar.contains("authentication=password"))
    }

    /// The `listen` of the web process's heartbeat metadata.
    static func listenAddress(in base: TestBase) throws -> String? {
        func read<D: StoreDriver>(_: D.Type) throws -> String? {
            let (store, db) = try D.open(url: base.url, options: StoreOptions(schema: base.schema, migrating: .never))
            let rows = try db.fetch("SELECT metadata FROM \(store.schema.qualifying("processes")) WHERE kind = 'web'")
            guard let text = try rows.first?.decode("metadata", as: JSON.self).text,
                  let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
            return object["listen"] as? String
        }
        return try read(StoreFactory.driver(for: base.url))
    }
}
