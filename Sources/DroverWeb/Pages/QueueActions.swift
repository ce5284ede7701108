import DroverQueue
import Hummingbird

/// POST `/queues/:name/pause` and `/queues/:name/resume`: what `drover queues pause|resume` does.
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
    ]
}
