import DroverQueue
import DroverRuntime
import Tracing

/// A job's trace context, from its enqueue to its `perform`: the enqueuer's `ServiceContext` goes
/// into a carrier of strings (through the bootstrapped instrument: `traceparent`, `tracestate`, …),
/// stored with the job; the worker extracts it, runs `perform` inside it, under a span `perform
/// CLASS` of the bootstrapped tracer. With no instrument bootstrapped nothing is stored, and the
/// span is a no-op.
enum JobTrace {
    /// What the current `ServiceContext` injects: nil with none, or when the instrument injects
    /// nothing. A context too large for the store (``JobRules/maxTraceContextBytes``) is dropped,
    /// not refused: tracing never keeps a job from being enqueued.
    static func carrier() -> [String: String]? {
        guard let context = ServiceContext.current else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        let size = carrier.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        return carrier.isEmpty || size > JobRules.maxTraceContextBytes ? nil : carrier
    }

    /// Runs `perform` in the context extracted from `job`'s carrier (a top-level one without it),
    /// under a span `perform CLASS` that records the job and, if it throws, its error.
    static func perform<T: Sendable>(
        _ job: ClaimedJob, _ perform: () async throws -> T
    ) async throws -> T {
        var context = ServiceContext.topLevel
        if let carrier = job.traceContext {
            InstrumentationSystem.instrument.extract(carrier, into: &context, using: DictionaryExtractor())
        }
        return try await ServiceContext.withValue(context) {
            try await InstrumentationSystem.tracer.withSpan("perform \(job.className)", context: context, ofKind: .consumer) { span in
                span.attributes["drover.job.id"] = job.id
                span.attributes["drover.job.class"] = job.className
                span.attributes["drover.job.queue"] = job.queue
                span.attributes["drover.job.attempt"] = job.attempt
                // A throw is recorded on the span, with an error status, by withSpan.
                return try await perform()
            }
        }
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

private struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
