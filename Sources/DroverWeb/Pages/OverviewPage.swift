import DroverQueue
import DroverRuntime
import Foundation

/// `/`: the last hour's throughput and failures (a chart the server draws, `/chart.svg`), queues
/// (depth, latency as the oldest ready job's age, paused), processes, the newest failures and the
/// newest jobs, from the store's listings (the same as `drover queues list`, `drover processes` and
/// `drover jobs list`).
enum OverviewPage {
    /// How many of the newest jobs the page shows, and how much of each one's arguments.
    static let jobCount = 20
    /// How many of the newest failed jobs it shows.
    static let failureCount = 10
    static let argumentsShown = 200

    static let routes: [WebRoute] = [
        .page("/") { context in
            let (queues, processes, jobs, failures, minutes, pausedClasses) = try await context.store.read { admin in
                // Listings leave the arguments out; the page shows the newest few with theirs.
                let newest = try admin.listJobs(queue: nil, state: nil, className: nil, limit: jobCount)
                return (try admin.listQueues(), try admin.listProcesses(), try newest.map { try admin.job($0.id) ?? $0 },
                        try admin.findJobs(JobFilter(state: .failed), before: nil, limit: failureCount).jobs,
                        try admin.countsByMinute(last: 60), try admin.pausedClasses())
            }
            return context.render("overview", title: "Overview", [
                "queues": queues.map(row), "hasQueues": !queues.isEmpty,
                "pausedClasses": pausedClasses.map { ["name": $0.className, "ready": $0.ready, "since": Page.time($0.pausedAt)] },
                "hasPausedClasses": !pausedClasses.isEmpty,
                "processes": processes.map(row), "hasProcesses": !processes.isEmpty,
                "jobs": jobs.map(row), "hasJobs": !jobs.isEmpty,
                "failures": failures.map(JobsPages.row), "hasFailures": !failures.isEmpty,
                "finishedLastHour": minutes.reduce(0) { $0 + $1.finished }, "failedLastHour": minutes.reduce(0) { $0 + $1.failed },
                "chartWidth": ThroughputChart.width, "chartHeight": ThroughputChart.height,
            ])
        },
    ]

    static func row(_ queue: QueueInfo) -> [String: Any] {
        let verb = queue.paused ? "Resume" : "Pause"
        return [
            "name": queue.name, "ready": queue.ready, "scheduled": queue.scheduled, "claimed": queue.claimed,
            "blocked": queue.blocked, "failed": queue.failed, "paused": queue.paused,
            "oldest": queue.oldestReadyAge.map { Page.age($0) } ?? "–",
            "verb": verb, "action": "/queues/\(queue.name)/\(verb.lowercased())",
        ]
    }

    static func row(_ process: ProcessSummary) -> [String: Any] {
        [
            "kind": process.kind.rawValue, "name": process.name, "hostname": process.hostname, "pid": process.pid,
            "heartbeat": Page.age(process.heartbeatAge), "claimed": process.claimedJobs,
            "stale": process.heartbeatAge > 60,
        ]
    }

    static func row(_ job: JobInfo) -> [String: Any] {
        let arguments = Page.cut(job.arguments?.text ?? "", argumentsShown)
        return [
            "id": job.id, "className": job.className, "queue": job.queue, "state": job.state.rawValue,
            "attempts": "\(job.attempts)/\(job.maxAttempts)", "arguments": arguments,
        ]
    }
}
