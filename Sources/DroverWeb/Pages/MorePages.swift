import DroverQueue
import DroverRuntime
import Foundation
import Hummingbird

/// `/recurring` (schedule, time zone, last and next run; enqueue now), `/concurrency` (each key's
/// holders and blocked jobs), `/processes` (host, pid, kind, heartbeat age, running jobs) and the
/// overview's chart (`/chart.svg`, drawn by the server).
enum MorePages {
    static let routes: [WebRoute] = [
        .page("/recurring") { context in
            let tasks = try await context.store.read { try $0.listTasks() }
            let now = Date()
            return context.render("recurring", title: "Recurring tasks", [
                "tasks": tasks.map { info -> [String: Any] in
                    let task = info.task
                    let next: String
                    do {
                        next = try Schedule(task.schedule, timeZone: task.timeZone).next(after: now).map(Page.time) ?? "never"
                    } catch {
                        next = "never: \(error)"
                    }
                    return [
                        "key": task.key, "schedule": task.schedule, "timeZone": task.timeZone, "className": task.className,
                        "queue": task.queue ?? JobRules.defaultQueue, "next": next,
                        "last": info.lastRunAt.map(Page.time) ?? "never", "lastJob": info.lastJobID.map(String.init) ?? "",
                        "hasLastJob": info.lastJobID != nil, "lastState": info.lastJobState?.rawValue ?? "",
                        "source": task.isStatic ? "configuration" : "added at run time",
                        "action": "/recurring/\(JobQuery.escape(task.key))/enqueue",
                    ]
                },
                "hasTasks": !tasks.isEmpty,
                "notice": context.request.uri.queryParameters["notice"].map(String.init) ?? "",
            ])
        },
        .action("/recurring/:key/enqueue") { context in
            let key = try context.parameters.require("key")
            let id = try await context.store.read { try $0.enqueueTaskNow(key) }
            return .redirect(to: "/jobs/\(id)?notice=" + JobQuery.escape("enqueued now from recurring task \(key)"))
        },
        .page("/concurrency") { context in
            let (keys, rateKeys) = try await context.store.read { admin in (try admin.concurrencyKeys(), try admin.rateLimitKeys()) }
            return context.render("concurrency", title: "Concurrency and rate limits", [
                "rateKeys": rateKeys.map { key -> [String: Any] in
                    [
                        "key": key.key, "started": key.started, "limit": key.limit, "period": DurationText.format(key.period),
                        "waiting": key.waiting, "lineEnds": key.lastWaitingAt.map(Page.time) ?? "–",
                    ]
                },
                "hasRateKeys": !rateKeys.isEmpty,
                "keys": keys.map { key -> [String: Any] in
                    [
                        "key": key.key, "limit": key.maxRunning, "holding": key.holding, "blocked": key.blocked,
                        "expires": key.expiresAt.map(Page.time) ?? "–",
                        "holders": "/jobs?key=\(JobQuery.escape(key.key))",
                        "blockedJobs": "/jobs?state=blocked&key=\(JobQuery.escape(key.key))",
                    ]
                },
                "hasKeys": !keys.isEmpty,
            ])
        },
        .page("/processes") { context in
            let processes = try await context.store.read { try $0.listProcesses() }
            return context.render("processes", title: "Processes", [
                "processes": processes.map { process -> [String: Any] in
                    [
                        "kind": process.kind.rawValue, "name": process.name, "hostname": process.hostname, "pid": process.pid,
                        "heartbeat": Page.age(process.heartbeatAge), "running": process.claimedJobs,
                        "supervisor": process.supervisorID.map(String.init) ?? "", "id": process.id,
                    ]
                },
                "hasProcesses": !processes.isEmpty,
            ])
        },
        .resource("/chart.svg") { context in
            let minutes = try await context.store.read { try $0.countsByMinute(last: 60) }
            return WebRoute.text(ThroughputChart.svg(minutes), contentType: "image/svg+xml; charset=utf-8")
        },
    ]
}
