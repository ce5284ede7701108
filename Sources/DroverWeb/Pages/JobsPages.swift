import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation
import Hummingbird

/// `/jobs` (a filtered listing, newest first, by keyset pages), `/jobs/:id` (one job: arguments,
/// error, output tail, timeline) and their actions: retry, discard and cancel one job, and the
/// same for everything a filter matches after a page that shows the count.
enum JobsPages {
    static let pageSize = 50
    /// The listing counts its matches up to this many (the bulk page counts them all).
    static let countCap = 10_000
    static let argumentsShown = 160
    /// A text search looks at this many jobs at a time, newest first, and links to the next ones
    /// down: about 60 ms at a million jobs on 2 cores, where searching them all took a second.
    static let searchWindow = 50_000

    static let routes: [WebRoute] = [
        .page("/jobs") { context in
            let query = JobQuery(context.request.uri.queryParameters)
            guard let filter = query.filter else {
                return context.render("jobs", title: "Jobs", query.formValues + ["error": query.problem ?? "", "hasError": true])
            }
            let before = query.before
            // A text search without a window of ids is given the newest one (from max_id, if set).
            let searching = filter.text != nil && filter.minID == nil
            let result: Result<(JobPage, Int?, ClosedRange<Int>?), any Error> = await Result {
                try await context.store.read { admin in
                    var filter = filter
                    var window: ClosedRange<Int>?
                    if searching {
                        guard let found = try admin.jobWindow(count: searchWindow, from: filter.maxID) else {
                            return (JobPage(jobs: [], nextBefore: nil), 0, nil)
                        }
                        (filter.minID, filter.maxID, window) = (found.lowerBound, found.upperBound, found)
                    }
                    let page = try admin.findJobs(filter, before: before, limit: pageSize)
                    // A first page that is also the last holds every match: no count to run (a
                    // rare text would otherwise be looked for through the window twice).
                    let count = before != nil ? nil
                        : page.nextBefore == nil ? page.jobs.count : try admin.countJobs(filter, upTo: countCap + 1)
                    return (page, count, window)
                }
            }
            switch result {
            case .failure(let error as QueueError):
                return context.render("jobs", title: "Jobs", query.formValues + ["error": error.message, "hasError": true])
            case .failure(let error):
                throw error
            case .success(let (page, count, window)):
                var query = query
                var values = query.formValues
                if let window {
                    // Links (the next page, the bulk actions) keep to the window searched.
                    let unbounded = query.fields.filter { $0.0 != "min_id" && $0.0 != "max_id" }
                    query.fields = unbounded + [("min_id", String(window.lowerBound)), ("max_id", String(window.upperBound))]
                    values["window"] = "#\(window.lowerBound)–#\(window.upperBound)"
                    values["searchWindow"] = searchWindow.formatted()
                    if window.lowerBound > 1 {
                        values["olderWindow"] = "/jobs?" + JobQuery.encode(unbounded + [("max_id", String(window.lowerBound - 1))])
                    }
                }
                values["jobs"] = page.jobs.map(row)
                values["hasJobs"] = !page.jobs.isEmpty
                values["count"] = count.map { $0 > countCap ? "More than 10,000" : String($0) } ?? ""
                values["hasCount"] = count != nil
                if let next = page.nextBefore { values["next"] = "/jobs?" + query.encoded(before: next) }
                values["bulk"] = bulkActions(for: filter).map { action in
                    ["label": "\(action.rawValue.capitalized) all matching…", "href": "/jobs/bulk?" + query.encoded(action: action)]
                }
                return context.render("jobs", title: "Jobs", values)
            }
        },
        .page("/jobs/bulk") { context in
            let query = JobQuery(context.request.uri.queryParameters)
            guard let filter = query.filter, let action = query.action else {
                return context.render("bulk", title: "Bulk action", ["error": query.problem ?? "no action given", "hasError": true])
            }
            let count = try await context.store.read { try $0.countJobs(filter) }
            return context.render("bulk", title: "\(action.rawValue.capitalized) \(count) jobs?", [
                "action": action.rawValue, "count": count, "describe": query.description,
                "fields": query.hiddenFields, "back": "/jobs?" + query.encoded(),
                "states": action.states.map(\.rawValue).sorted().joined(separator: ", "),
            ])
        },
        .action("/jobs/bulk") { context in
            let query = JobQuery(form: context.form)
            guard let filter = query.filter, let action = query.action else {
                throw HTTPError(.badRequest, message: query.problem ?? "no action given")
            }
            let outcome = try await context.store.read { try $0.apply(action, to: filter) }
            return .redirect(to: "/jobs?" + query.encoded(notice: "\(action.rawValue): \(outcome.changed.count) changed, \(outcome.skipped.count) skipped"))
        },
        .page("/jobs/:id") { context in
            let id = try jobID(context)
            guard let detail = try await context.store.read({ try $0.jobDetail(id) }) else {
                throw HTTPError(.notFound, message: "no job with id \(id)")
            }
            return context.render("job", title: "Job \(id)", values(detail, notice: context.request.uri.queryParameters["notice"].map(String.init)))
        },
        .action("/jobs/:id/retry") { context in
            let id = try jobID(context)
            _ = try await context.store.read { try $0.retryFailed([id]) }
            return .redirect(to: "/jobs/\(id)")
        },
        .action("/jobs/:id/discard") { context in
            let id = try jobID(context)
            _ = try await context.store.read { try $0.discardFailed([id]) }
            return .redirect(to: "/jobs?state=failed&notice=" + JobQuery.escape("job \(id) discarded"))
        },
        .action("/jobs/:id/cancel") { context in
            let id = try jobID(context)
            let outcome = try await context.store.read { try $0.cancel(id) }
            switch outcome {
            case .discarded: return .redirect(to: "/jobs?notice=" + JobQuery.escape("job \(id) cancelled"))
            case .requested: return .redirect(to: "/jobs/\(id)?notice=" + JobQuery.escape("its worker was asked to stop it"))
            }
        },
    ]

    static func jobID(_ context: WebContext) throws -> Int {
        let text = try context.parameters.require("id")
        guard let id = Int(text), id >= 1 else { throw HTTPError(.badRequest, message: "a job id is a whole number from 1") }
        return id
    }

    /// The actions a filter's jobs may get: retry and discard for failed ones, cancel for waiting
    /// and running ones.
    static func bulkActions(for filter: JobFilter) -> [BulkAction] {
        BulkAction.allCases.filter { action in filter.state.map(action.states.contains) ?? (action == .cancel) }
    }

    static func row(_ job: JobInfo) -> [String: Any] {
        [
            "id": job.id, "className": job.className, "queue": job.queue, "state": job.state.rawValue,
            "attempts": "\(job.attempts)/\(job.maxAttempts)", "enqueued": Page.time(job.createdAt),
            "error": job.lastError.map { "\($0.errorClass): \(Page.cut($0.message, 120))" } ?? "",
        ]
    }

    static func values(_ detail: JobDetail, notice: String?) -> [String: Any] {
        let job = detail.info
        var steps: [[String: Any]] = [["what": "enqueued", "when": Page.time(job.createdAt)]]
        if detail.scheduledAt.timeIntervalSince(job.createdAt) > 0.5 { steps.append(["what": "due", "when": Page.time(detail.scheduledAt)]) }
        if let at = job.nextRunAt { steps.append(["what": "runs next", "when": Page.time(at)]) }
        if let at = detail.readySince { steps.append(["what": "ready, waiting for a worker", "when": Page.time(at)]) }
        if let at = detail.claimedAt {
            let by = [detail.claimedByName, detail.claimedByHost.map { "on \($0)" }].compactMap { $0 }.joined(separator: " ")
            steps.append(["what": "claimed" + (by.isEmpty ? "" : " by \(by)"), "when": Page.time(at)])
        }
        if let at = job.finishedAt { steps.append(["what": "finished", "when": Page.time(at)]) }
        if let at = job.failedAt { steps.append(["what": "failed for good", "when": Page.time(at)]) }
        steps.append(["what": "last change", "when": Page.time(detail.updatedAt)])
        var values: [String: Any] = [
            "id": job.id, "className": job.className, "queue": job.queue, "state": job.state.rawValue, "priority": job.priority,
            "attempts": "\(job.attempts) failed of \(job.maxAttempts)", "crashes": job.crashes,
            "snoozes": job.snoozes, "hasSnoozes": job.snoozes > 0,
            "arguments": job.arguments.map { Page.pretty($0.text) } ?? "{}",
            "timeline": steps, "concurrencyKey": detail.concurrencyKey ?? "", "hasKey": detail.concurrencyKey != nil,
            "uniqueKey": detail.uniqueKey ?? "", "hasUniqueKey": detail.uniqueKey != nil,
            "timeout": detail.timeoutSeconds.map { DurationText.format(.milliseconds(Int64($0 * 1000))) } ?? "none",
            "canRetry": job.state == .failed, "canDiscard": job.state == .failed,
            "canCancel": [.ready, .scheduled, .blocked, .waiting, .claimed].contains(job.state),
            "notice": notice ?? "", "hasNotice": notice != nil,
        ]
        if let error = job.lastError {
            values["error"] = [
                "class": error.errorClass, "message": error.message,
                "exitStatus": error.exitStatus.map(String.init) ?? "", "hasExit": error.exitStatus != nil,
                "signal": error.signal.map(String.init) ?? "", "hasSignal": error.signal != nil,
                "output": error.output ?? "", "hasOutput": !(error.output ?? "").isEmpty,
                "retryIn": error.retryIn.map { DurationText.format(.milliseconds(Int64(($0 * 1000).rounded()))) } ?? "",
                "backoff": error.backoff ?? "", "hasRetry": error.retryIn != nil,
            ] as [String: Any]
        }
        return values
    }
}

/// The filter of `/jobs` as its query says it: each field checked, with what went wrong.
struct JobQuery {
    var fields: [(String, String)] = []
    var filter: JobFilter?
    var problem: String?
    var before: Int?
    var action: BulkAction?
    var notice: String?

    static let names = ["state", "queue", "class", "text", "error", "args_contain", "after", "before", "key", "min_id", "max_id"]

    init(_ parameters: Parameters) {
        var values: [String: String] = [:]
        for name in Self.names + ["before_id", "action", "notice"] {
            if let value = parameters[Substring(name)], !value.isEmpty { values[name] = String(value) }
        }
        self.init(values)
    }

    init(form: [String: String]) { self.init(form.filter { !$0.value.isEmpty }) }

    init(_ values: [String: String]) {
        fields = Self.names.compactMap { name in values[name].map { (name, $0) } }
        notice = values["notice"]
        var filter = JobFilter()
        do {
            if let state = values["state"] {
                guard let parsed = JobState(rawValue: state) else {
                    throw Problem("state \(state) is not one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.state = parsed
            }
            filter.queue = values["queue"]
            filter.className = values["class"]
            filter.text = values["text"]
            filter.errorText = values["error"]
            if let wanted = values["args_contain"] {
                guard let json = try? JSON(validating: wanted), json.isObject || json.isArray else {
                    throw Problem("arguments containing \(wanted) is not a JSON object or array such as {\"user\": 42}")
                }
                filter.argumentsContain = json
            }
            filter.concurrencyKey = values["key"]
            filter.enqueuedAfter = try values["after"].map { try Self.time($0, field: "after") }
            filter.enqueuedBefore = try values["before"].map { try Self.time($0, field: "before") }
            filter.minID = try values["min_id"].map { try Self.id($0, field: "min_id") }
            filter.maxID = try values["max_id"].map { try Self.id($0, field: "max_id") }
            if let minID = filter.minID, let maxID = filter.maxID, minID > maxID {
                throw Problem("min_id \(minID) is above max_id \(maxID): no job can match")
            }
            if let cursor = values["before_id"] {
                guard let id = Int(cursor), id >= 1 else { throw Problem("before_id must be a job id (a whole number from 1)") }
                before = id
            }
            if let name = values["action"] {
                guard let parsed = BulkAction(rawValue: name) else { throw Problem("action \(name) is not retry, discard or cancel") }
                action = parsed
            }
            self.filter = filter
        } catch {
            problem = (error as? Problem)?.text ?? "\(error)"
        }
    }

    struct Problem: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    static func id(_ text: String, field: String) throws -> Int {
        guard let id = Int(text), id >= 1 else { throw Problem("\(field) must be a job id (a whole number from 1)") }
        return id
    }

    /// `2026-12-02T08:00` (a browser's datetime-local, read as UTC), or with seconds, a `Z` or an offset.
    static func time(_ text: String, field: String) throws -> Date {
        for format in ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ssXXXXX", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.calendar = Calendar(identifier: .gregorian)
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        throw Problem("\(field) \(text) is not a time: write 2026-12-02T08:00 (UTC) or 2026-12-02T08:00:00+01:00")
    }

    /// The filter's fields (and the given extras) as a query string.
    func encoded(before: Int? = nil, action: BulkAction? = nil, notice: String? = nil) -> String {
        var pairs = fields
        if let before { pairs.append(("before_id", String(before))) }
        if let action { pairs.append(("action", action.rawValue)) }
        if let notice { pairs.append(("notice", notice)) }
        return Self.encode(pairs)
    }

    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0)=\(Self.escape($0.1))" }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// The form's values, to fill the filter form again.
    var formValues: [String: Any] {
        var values: [String: Any] = [:]
        for (name, value) in fields { values["f_" + name] = value }
        let current = fields.first { $0.0 == "state" }?.1
        values["stateOptions"] = ([""] + JobState.allCases.map(\.rawValue)).map { state in
            ["value": state, "label": state.isEmpty ? "any state" : state, "selected": state == (current ?? "")] as [String: Any]
        }
        values["notice"] = notice ?? ""
        values["hasNotice"] = notice != nil
        return values
    }

    /// The filter's fields as hidden inputs (a bulk action's form).
    var hiddenFields: [[String: String]] {
        fields.map { ["name": $0.0, "value": $0.1] } + (action.map { [["name": "action", "value": $0.rawValue]] } ?? [])
    }

    /// What the filter matches, in words.
    var description: String {
        fields.isEmpty ? "every job" : fields.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
}

/// What pages share: times, cut text, pretty JSON.
enum Page {
    /// `2026-12-02 08:00:00Z`.
    static func time(_ date: Date) -> String { DatabaseTime.utcText(date, separator: " ") }

    static func cut(_ text: String, _ length: Int) -> String {
        text.count > length ? String(text.prefix(length)) + "…" : text
    }

    static func pretty(_ json: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return json }
        return String(decoding: data, as: UTF8.self)
    }

    /// `42s`, `3m`, `2h5m`: how long ago, for people.
    static func age(_ seconds: Double) -> String { DurationText.format(.seconds(max(0, seconds.rounded()))) }
}

extension Dictionary where Key == String, Value == Any {
    static func + (lhs: [String: Any], rhs: [String: Any]) -> [String: Any] { lhs.merging(rhs) { $1 } }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
