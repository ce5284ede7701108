import Hummingbird

/// `/healthz`: 200 `ok` when the database answers, 503 otherwise. It needs no password (a load
/// balancer or a monitor asks it) and says nothing more than that.
enum HealthCheck {
    static let routes: [WebRoute] = [
        .resource("/healthz", isPublic: true) { context in
            do {
                try await context.store.ping()
                return WebRoute.text("ok\n")
            } catch {
                // Debug: a monitor asks every few seconds, and the outage is logged once already.
                context.settings.log.debug("health check: the database does not answer", [("error", "\(error)")])
                return WebRoute.text("the database does not answer\n", status: .serviceUnavailable)
            }
        },
    ]
}
