import CoreMetrics
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation
import Hummingbird
import Synchronization

/// Renders `/metrics` (Prometheus' text format) from the store.
public typealias MetricsRenderer = @Sendable (WebStore) async throws -> String

/// `/metrics`: the database's figures (``MetricsExposition``), the same whichever process serves
/// them, and this process's view of the database. When the database does not answer, the page
/// still answers (200) with `drover_database_up 0` and how long the outage has lasted, so that an
/// alert on it fires; the database's figures are left out rather than shown stale.
public enum Metrics {
    public static let renderer: MetricsRenderer = { store in
        let start = ContinuousClock.now
        do {
            let snapshot = try await store.read { try $0.metrics() }
            let took = ContinuousClock.now - start
            outage.withLock { $0 = nil }
            // swift-metrics: this process's own measure, exported by swift-prometheus's registry.
            Timer(label: "drover_metrics_read_duration_seconds", factory: MetricsExposition.factory).recordNanoseconds(took.nanoseconds)
            return MetricsExposition.render(snapshot, database: .init(up: true), readSeconds: took.seconds)
        } catch let error as DatabaseError {
            let since = outage.withLock { since in
                if since == nil { since = ContinuousClock.now }
                return since!
            }
            Counter(label: "drover_metrics_database_errors_total", dimensions: [("code", "\(error.code)")], factory: MetricsExposition.factory)
                .increment()
            return MetricsExposition.render(nil, database: .init(up: false, outageSeconds: (ContinuousClock.now - since).seconds))
        }
    }

    /// When this process first found the database unreachable, until it answers again.
    private static let outage = Mutex<ContinuousClock.Instant?>(nil)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

enum MetricsPage {
    static let routes: [WebRoute] = [
        .resource("/metrics") { context in
            WebRoute.text(try await context.settings.metrics(context.store), contentType: MetricsExposition.contentType)
        },
    ]
}
