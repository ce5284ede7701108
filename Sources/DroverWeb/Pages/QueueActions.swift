import DroverQueue
import Hummingbird

/// POST `/queues/:name/pause` and `/queues/:name/resume`: what `drover queues pause|resume` does;
/// POST `/classes/pause` (the form's `class`) and `/classes/:name/resume`: `drover classes pause|resume`.
enum QueueActions {
    static let routes: [WebRoute] = [
        .action("/queues/:name/pause") { context in
            let name = try context.parameters.require("name")
            _ = try await context.store.read { try $0.pause(name) }
            return .redirect(to: "/")
        },
        .action("/queues/:name/resume") { context in
            let name = try context.parameters.require("name")
            _ = try await context.store.read { try $0.resume(name) }
            return .redirect(to: "/")
        },
        .action("/classes/pause") { context in
            let name = context.form["class", default: ""].trimmingCharacters(in: .whitespaces)
            do {
                try JobRules.checkClassName(name)
            } catch {
                throw HTTPError(.badRequest, message: (error as? QueueError)?.message ?? "\(error)")
            }
            _ = try await context.store.read { try $0.pauseClass(name) }
            return .redirect(to: "/")
        },
        .action("/classes/:name/resume") { context in
            let name = try context.parameters.require("name")
            _ = try await context.store.read { try $0.resumeClass(name) }
            return .redirect(to: "/")
        },
    ]
}
