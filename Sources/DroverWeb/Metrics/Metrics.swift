import Hummingbird

/// Renders `/metrics` (Prometheus' text format) from the store.
public typealias MetricsRenderer = @Sendable (WebStore) async throws -> String

/// `/metrics`. The renderer is ``Metrics/renderer``; a test or an embedding app may give
/// ``WebSettings/metrics`` another.
public enum Metrics {
    /// What `/metrics` answers until the metrics are written.
    public static let renderer: MetricsRenderer = { _ in "# metrics: see DroverWeb/Metrics\n" }
}

enum MetricsPage {
    static let routes: [WebRoute] = [
        .resource("/metrics") { context in
            WebRoute.text(try await context.settings.metrics(context.store), contentType: "text/plain; version=0.0.4; charset=utf-8")
        },
    ]
}
