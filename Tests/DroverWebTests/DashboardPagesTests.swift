import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// Every page and action of the dashboard over real sockets, on both databases: what a person
/// sees and what each button does to the database, and what bad input gets.
@Suite("The dashboard: every page and action")
struct DashboardPagesTests {
    /// Four failed jobs (one with a `<b>` in its error), two ready, one scheduled, a recurring
    /// task, a concurrency key with a blocked job, on queues mail and reports.
    static func scene(_ base: TestBase) throws -> (failed: [Int], ready: [Int], scheduled: Int, blocked: Int) {
        let failed = try base.admin.enqueue((0..<4).map { try NewJob("SendMail", arguments: JSON(validating: #"{"n": \#($0)}"#), queue: "mail") })
        let ready = try base.admin.enqueue([NewJob("Report", queue: "reports"), NewJob("Report", queue: "reports")])
        let scheduled = try base.admin.enqueue([NewJob("Report", queue: "reports", runAt: Date().addingTimeInterval(3600))])[0]
        try base.failJobs(failed, error: JobFailure(errorClass: "SMTPError", message: "relay <b>refused</b>", output: "last line\n"))
        try base.syncRule(ConcurrencyRule(className: "Sync", keyTemplate: "one", maxRunning: 1, duration: .seconds(600)))
        let keyed = try base.admin.enqueue([NewJob("Sync"), NewJob("Sync")])
        try base.admin.addTask(RecurringTask(key: "nightly", schedule: "0 3 * * *", timeZone: "Europe/Paris", className: "Report"))
        return (failed, ready, scheduled, keyed[1])
    }

    @Test("the jobs page filters, counts and pages; bad filters say what is wrong", arguments: Backend.allCases)
    func jobsPage(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let failed = try web.http.get("/jobs?state=failed&queue=mail")
        #expect(failed.status == 200)
        #expect(failed.body.contains("<span id=\"match-count\">4</span> jobs match"), "\(failed.body)")
        for id in scene.failed { #expect(failed.body.contains("<tr data-job=\"\(id)\">")) }
        #expect(!failed.body.contains("<tr data-job=\"\(scene.ready[0])\">"))
        #expect(failed.body.contains("SMTPError: relay &lt;b&gt;refused&lt;/b&gt;"))
        #expect(failed.body.contains("href=\"/jobs/bulk?state=failed&amp;queue=mail&amp;action=retry\""), "bulk retry offered\n\(failed.body)")
        // The CLI's filters: text in the error only, arguments that contain a JSON value.
        let byError = try web.http.get("/jobs?error=relay")
        #expect(byError.body.contains("<span id=\"match-count\">4</span>"), "\(byError.body)")
        let containing = try web.http.get("/jobs?args_contain=%7B%22n%22%3A%201%7D")
        #expect(containing.body.contains("<tr data-job=\"\(scene.failed[1])\">") && containing.body.contains("<span id=\"match-count\">1</span>"),
                "\(containing.body)")
        let notJSON = try web.http.get("/jobs?args_contain=42")
        #expect(notJSON.body.contains("class=\"error\"") && notJSON.body.contains("not a JSON object or array"), "\(notJSON.body)")
        // Text in the arguments.
        let text = try web.http.get("/jobs?text=%22n%22%3A%202")
        #expect(text.body.contains("<tr data-job=\"\(scene.failed[2])\">") && text.body.contains("<span id=\"match-count\">1</span>"),
                "\(text.body)")
        // Pages of 50: 60 more jobs make two pages; the second goes on from the first's last id.
        _ = try base.admin.enqueue((0..<60).map { _ in NewJob("Bulk", queue: "bulk") })
        let first = try web.http.get("/jobs?queue=bulk")
        let next = try #require(first.body.range(of: "href=\"/jobs?queue=bulk&amp;before_id=")).upperBound
        let cursor = String(first.body[next...].prefix { $0.isNumber })
        let second = try web.http.get("/jobs?queue=bulk&before_id=\(cursor)")
        #expect(second.body.components(separatedBy: "<tr data-job=").count - 1 == 10, "60 = 50 + 10")
        #expect(!second.body.contains("Older jobs"))
        // Bad input: said on the page, in words.
        for (query, words) in [("state=broken", "state broken is not one of"), ("queue=a%20b", "queue"),
                               ("after=yesterday", "after yesterday is not a time"), ("before_id=-3", "before_id must be a job id")] {
            let answer = try web.http.get("/jobs?" + query)
            #expect(answer.status == 200 && answer.body.contains("class=\"error\"") && answer.body.contains(words), "\(query): \(answer.body)")
        }
    }

    @Test("a text search looks at the newest 50,000 jobs, then the next ones down; its count and bulk action keep to them",
          arguments: Backend.allCases)
    func textSearchWindow(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let needle = { try NewJob("Mail", arguments: JSON(validating: #"{"to": "needle@example.com"}"#), queue: "mail") }
        // Three old needles, 50,000 jobs of hay, two new needles.
        let old = try base.admin.enqueue((0..<3).map { _ in try needle() })
        for _ in 0..<10 { _ = try base.admin.enqueue((0..<5_000).map { _ in NewJob("Hay", queue: "hay") }) }
        let new = try base.admin.enqueue((0..<2).map { _ in try needle() })
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let first = try web.http.get("/jobs?text=needle")
        #expect(first.status == 200)
        // The window: the newest 50,000 ids, so the two oldest jobs of hay are below it with the old needles.
        let bottom = new[1] - 49_999
        #expect(first.body.contains("<span id=\"search-window\">#\(bottom)–#\(new[1])</span>"), "\(first.body)")
        #expect(first.body.contains("<span id=\"match-count\">2</span> jobs match"))
        for id in new { #expect(first.body.contains("<tr data-job=\"\(id)\">")) }
        for id in old { #expect(!first.body.contains("<tr data-job=\"\(id)\">")) }
        let link = try #require(first.body.range(of: #"href="(/jobs\?text=needle&amp;max_id=\d+)" *>?"#, options: .regularExpression))
        let olderPath = String(first.body[link]).components(separatedBy: "\"")[1].replacingOccurrences(of: "&amp;", with: "&")
        #expect(olderPath == "/jobs?text=needle&max_id=\(bottom - 1)")
        let older = try web.http.get(olderPath)
        #expect(older.body.contains("<span id=\"search-window\">#1–#\(bottom - 1)</span>") && older.body.contains("<span id=\"match-count\">3</span>"),
                "\(older.body)")
        #expect(!older.body.contains("Search older jobs"), "the first job is in this window")
        // The bulk action offered is for the window shown: cancelling cancels the two new needles only.
        let bulk = try #require(first.body.range(of: #"/jobs/bulk\?[^"]*action=cancel"#, options: .regularExpression))
        let confirm = try web.http.get(String(first.body[bulk]).replacingOccurrences(of: "&amp;", with: "&"))
        #expect(confirm.body.contains("<span id=\"bulk-count\">2</span>"), "\(confirm.body)")
        let token = try #require(confirm.csrfToken)
        let form = "csrf_token=\(token)&text=needle&min_id=\(bottom)&max_id=\(new[1])&action=cancel"
        #expect(try web.http.post("/jobs/bulk", form: form).status == 303)
        #expect(try base.admin.countJobs(JobFilter(className: "Mail")) == 3, "the old needles are left")
        // A window above every job finds none; a bad one says why.
        #expect(try web.http.get("/jobs?text=needle&min_id=\(new[1] + 1)").body.contains("No jobs."))
        let bad = try web.http.get("/jobs?text=needle&min_id=9&max_id=3")
        #expect(bad.body.contains("class=\"error\"") && bad.body.contains("min_id 9 is above max_id 3"), "\(bad.body)")
    }

    @Test("a job's page shows its arguments, error, output and timeline; 404 for none; bad ids 400", arguments: Backend.allCases)
    func jobPage(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let page = try web.http.get("/jobs/\(scene.failed[0])")
        #expect(page.status == 200)
        #expect(page.body.contains("<td class=\"state failed\" id=\"job-state\">failed</td>"))
        #expect(page.body.contains("&quot;n&quot; : 0"), "pretty arguments\n\(page.body)")
        #expect(page.body.contains("<strong>SMTPError</strong>: relay &lt;b&gt;refused&lt;/b&gt;"))
        #expect(page.body.contains("<pre class=\"output\">last line\n</pre>"))
        #expect(page.body.contains("failed for good") && page.body.contains("enqueued"))
        #expect(page.body.contains("action=\"/jobs/\(scene.failed[0])/retry\"") && !page.body.contains("/cancel\""))
        let blocked = try web.http.get("/jobs/\(scene.blocked)")
        #expect(blocked.body.contains("id=\"job-state\">blocked") && blocked.body.contains("/jobs/\(scene.blocked)/cancel"))
        #expect(try web.http.get("/jobs/999999").status == 404)
        #expect(try web.http.get("/jobs/abc").status == 400)

        // A failure waiting for its retry says how long and by which policy; a snoozed job its snoozes.
        let ids = try base.admin.enqueue([NewJob("Flaky"), NewJob("Polite")])
        try StoreScene.failOnce(ids[0], policy: RetryPolicy(backoff: .fixed, baseDelay: .seconds(90), maxDelay: .seconds(90), jitter: 0),
                                url: base.url, schema: base.schema)
        try StoreScene.failOnce(ids[1], snooze: .seconds(30), url: base.url, schema: base.schema)
        let retrying = try web.http.get("/jobs/\(ids[0])").body
        #expect(retrying.contains("<p id=\"retried-in\">retried in 1m30s (fixed backoff, base 1m30s, max 1m30s, jitter 0.0)</p>"), "\(retrying)")
        let snoozed = try web.http.get("/jobs/\(ids[1])").body
        #expect(snoozed.contains("; snoozes 1</td>") && !snoozed.contains("retried-in"), "\(snoozed)")
    }

    @Test("retry, discard and cancel a job: each a POST with the token that changes the database; a wrong state is 409",
          arguments: Backend.allCases)
    func jobActions(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let token = try #require(try web.http.get("/jobs/\(scene.failed[0])").csrfToken)
        #expect(try web.http.post("/jobs/\(scene.failed[0])/retry", form: nil).status == 403, "no token")
        #expect(try base.admin.job(scene.failed[0])?.state == .failed)
        let retried = try web.http.post("/jobs/\(scene.failed[0])/retry", form: "csrf_token=\(token)")
        #expect(retried.status == 303 && retried.headers["location"] == "/jobs/\(scene.failed[0])", "\(retried)")
        #expect(try base.admin.job(scene.failed[0])?.state == .ready)
        let again = try web.http.post("/jobs/\(scene.failed[0])/retry", form: "csrf_token=\(token)")
        #expect(again.status == 409 && again.body.contains("only failed jobs can be retried"), "\(again)")
        #expect(try web.http.post("/jobs/\(scene.failed[1])/discard", form: "csrf_token=\(token)").status == 303)
        #expect(try base.admin.job(scene.failed[1]) == nil)
        #expect(try web.http.post("/jobs/\(scene.scheduled)/cancel", form: "csrf_token=\(token)").status == 303)
        #expect(try base.admin.job(scene.scheduled) == nil)
        #expect(try web.http.post("/jobs/999999/cancel", form: "csrf_token=\(token)").status == 404)
    }

    @Test("a bulk action shows the count first, then changes every job the filter matches, and says what it did",
          arguments: Backend.allCases)
    func bulk(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let confirm = try web.http.get("/jobs/bulk?state=failed&queue=mail&action=retry")
        #expect(confirm.status == 200 && confirm.body.contains("<span id=\"bulk-count\">4</span> jobs match state failed, queue mail"),
                "\(confirm.body)")
        #expect(confirm.body.contains("<input type=\"hidden\" name=\"state\" value=\"failed\">"))
        #expect(try base.admin.countJobs(JobFilter(state: .failed)) == 4, "showing the count changes nothing")
        let token = try #require(confirm.csrfToken)
        #expect(try web.http.post("/jobs/bulk", form: "state=failed&queue=mail&action=retry").status == 403)
        let done = try web.http.post("/jobs/bulk", form: "csrf_token=\(token)&state=failed&queue=mail&action=retry")
        #expect(done.status == 303 && done.headers["location"]?.contains("notice=retry%3A%204%20changed") == true, "\(done)")
        #expect(try base.admin.countJobs(JobFilter(state: .failed)) == 0)
        #expect(try base.admin.countJobs(JobFilter(state: .ready, queue: "mail")) == 4)
        let cancelled = try web.http.post("/jobs/bulk", form: "csrf_token=\(token)&queue=reports&action=cancel")
        #expect(cancelled.status == 303)
        #expect(try base.admin.countJobs(JobFilter(queue: "reports")) == 0, "ready and scheduled reports cancelled")
        let refused = try web.http.post("/jobs/bulk", form: "csrf_token=\(token)&state=finished&action=discard")
        #expect(refused.status == 409, "\(refused)")
        let bad = try web.http.post("/jobs/bulk", form: "csrf_token=\(token)&action=explode")
        #expect(bad.status == 400 && bad.body.contains("action explode is not retry, discard or cancel"), "\(bad)")
    }

    @Test("recurring tasks, concurrency keys, processes and the chart; enqueue a recurring task now", arguments: Backend.allCases)
    func otherPages(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        try base.registerProcess(name: "worker-9", hostname: "host-a")
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0"])
        let recurring = try web.http.get("/recurring")
        #expect(recurring.body.contains("<td class=\"name\">nightly</td><td><code>0 3 * * *</code></td><td>Europe/Paris</td>"), "\(recurring.body)")
        #expect(recurring.body.contains("never") && recurring.body.range(of: #"\d{4}-\d\d-\d\d 0[12]:00:00Z"#, options: .regularExpression) != nil,
                "next run at 03:00 Paris is 01:00 or 02:00 UTC\n\(recurring.body)")
        let token = try #require(recurring.csrfToken)
        let enqueued = try web.http.post("/recurring/nightly/enqueue", form: "csrf_token=\(token)")
        #expect(enqueued.status == 303 && enqueued.headers["location"]?.hasPrefix("/jobs/") == true, "\(enqueued)")
        #expect(try base.admin.countJobs(JobFilter(state: .ready, className: "Report")) == 3)
        #expect(try web.http.post("/recurring/nobody/enqueue", form: "csrf_token=\(token)").status == 404)

        var keys = try web.http.get("/concurrency")
        #expect(keys.body.contains("No rate-limit key is in use."))
        // A rate-limited class with a key that needs escaping: 2 start, 1 waits.
        _ = try base.admin.enqueue([NewJob("Throttled", arguments: try JSON(validating: #"{"to": "<b>x</b>"}"#), queue: "throttled")])
        _ = try base.admin.enqueue([NewJob("Throttled", arguments: try JSON(validating: #"{"to": "<b>x</b>"}"#), queue: "throttled")])
        _ = try base.admin.enqueue([NewJob("Throttled", arguments: try JSON(validating: #"{"to": "<b>x</b>"}"#), queue: "throttled")])
        try base.rateLimit(RateLimitRule(className: "Throttled", keyTemplate: "mail:{to}", limit: 2, period: .seconds(60)), claim: 50, on: "throttled")
        keys = try web.http.get("/concurrency")
        #expect(keys.body.contains("<td class=\"name\">mail:&lt;b&gt;x&lt;&#x2F;b&gt;</td><td>2</td><td>2</td><td>1m</td><td>1</td>")
                || keys.body.contains("<td class=\"name\">mail:&lt;b&gt;x&lt;/b&gt;</td><td>2</td><td>2</td><td>1m</td><td>1</td>"), "\(keys.body)")
        #expect(keys.body.contains("<td>1</td><td><a href=\"/jobs?key="), "\(keys.body)")
        let blockedLink = try #require(keys.body.range(of: "href=\"/jobs?state=blocked&amp;key=")).lowerBound
        let href = String(keys.body[keys.body.index(blockedLink, offsetBy: 6)...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
        #expect(try web.http.get(href).body.contains("<tr data-job=\"\(scene.blocked)\">"), "the key's blocked job")

        let processes = try web.http.get("/processes")
        #expect(processes.body.contains("<td class=\"name\">worker-9</td><td>host-a</td>"), "\(processes.body)")
        let chart = try web.http.get("/chart.svg")
        #expect(chart.status == 200 && chart.headers["content-type"]?.hasPrefix("image/svg+xml") == true && chart.body.hasPrefix("<svg"))
        chart.expectSecurityHeaders()
        let overview = try web.http.get("/")
        #expect(overview.body.contains("<img class=\"chart\" src=\"/chart.svg\"") && overview.body.contains("Newest failures"))
    }

    @Test("read-only: no action on any page, and every action refused", arguments: Backend.allCases)
    func readOnly(_ backend: Backend) throws {
        let base = try TestBase(backend)
        let scene = try Self.scene(base)
        let web = try ForegroundWeb(base.arguments + ["--listen", "127.0.0.1:0", "--read-only"])
        for path in ["/", "/jobs?state=failed", "/jobs/\(scene.failed[0])", "/recurring", "/jobs/bulk?state=failed&action=retry"] {
            let page = try web.http.get(path)
            #expect(page.status == 200 && !page.body.contains("method=\"post\"") && !page.body.contains("/jobs/bulk?"), "\(path): \(page.body)")
        }
        #expect(try web.http.post("/jobs/\(scene.failed[0])/retry", form: "csrf_token=x").status == 403)
        #expect(try web.http.post("/recurring/nightly/enqueue", form: "csrf_token=x").status == 403)
        #expect(try base.admin.countJobs(JobFilter(state: .failed)) == 4)
    }
}
