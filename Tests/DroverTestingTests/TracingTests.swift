import Drover
import DroverTestSupport
import DroverTesting
import Foundation
import InMemoryTracing
import Synchronization
import Testing
import Tracing

/// A request id carried as a header: the smallest instrument, as an app's own would propagate one.
private enum RequestID: ServiceContextKey {
    typealias Value = String
}

extension ServiceContext {
    var requestID: String? {
        get { self[RequestID.self] }
        set { self[RequestID.self] = newValue }
    }
}

private struct RequestIDInstrument: Instrument {
    static let header = "x-request-id"

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        if let id = context.requestID { injector.inject(id, forKey: Self.header, into: &carrier) }
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        if let id = extractor.extract(key: Self.header, from: carrier) { context.requestID = id }
    }
}

/// Bootstrapped once for the whole test process, as an app does first thing in main (in every
/// process, its workers included). It injects only a context that has a request id.
private let bootstrapped: Void = InstrumentationSystem.bootstrap(RequestIDInstrument())

/// Records the request id its perform runs under.
struct Traced: Job {
    var note: String
    func perform(_ context: JobContext) async throws {
        let ledger = try context.services(Ledger.self)
        ledger.record("\(note) request \(ServiceContext.current?.requestID ?? "none") attempt \(context.attempt)")
        if note == "fails once" && context.attempt == 1 { throw Flaky.Declined(attempt: 1) }
    }
}

@Suite("Trace context: injected at enqueue, restored around perform")
struct TracingTests {
    @Test("the enqueuer's context travels with the job, through the store, to every attempt of its perform", arguments: Backend.allCases)
    func requestIDReachesPerform(_ backend: Backend) async throws {
        _ = bootstrapped
        try await backend.withQueue { queue in
            var context = ServiceContext.topLevel
            context.requestID = "req-42"
            let traced = try ServiceContext.withValue(context) {
                try queue.enqueue(Traced(note: "signup"), Traced(note: "fails once"))
            }
            let plain = try queue.enqueue(Traced(note: "plain"))
            let ledger = Ledger()
            let summary = try await queue.drain([Traced.self], services: ledger)
            #expect(summary.finished.count == 3, "\(summary)")
            #expect(ledger.all == [
                "signup request req-42 attempt 1", "fails once request req-42 attempt 1", "plain request none attempt 1",
                "fails once request req-42 attempt 2",
            ])
            _ = (traced, plain)
        }
    }

    @Test("with a tracer, perform runs in a span 'perform CLASS' that is a child of the enqueuer's span, with the job's attributes and its error")
    func spans() async throws {
        let tracer = InMemoryTracer()
        let queue = try TemporaryJobDatabase()
        let ledger = Ledger()
        let (ids, summary) = try await withTracer(tracer) {
            let ids = try tracer.withSpan("POST /signup") { _ in
                [try queue.connection.enqueue(Traced(note: "fails once")), try queue.connection.enqueue(Traced(note: "ok"))]
            }
            return (ids, try await queue.drain(jobs: [Traced.self], services: ledger))
        }
        #expect(summary.finished.sorted() == ids.sorted(), "\(summary)")
        let spans = tracer.finishedSpans
        let request = try #require(spans.first { $0.operationName == "POST /signup" })
        let performs = spans.filter { $0.operationName == "perform Traced" }
        #expect(performs.count == 3, "two jobs, one of them twice: \(spans.map(\.operationName))")
        for span in performs {
            #expect(span.traceID == request.traceID && span.parentSpanID == request.spanID, "a child of the request's span")
            #expect(span.kind == .consumer)
            #expect(span.attributes["drover.job.class"]?.toSpanAttribute() == .string("Traced"))
            #expect(span.attributes["drover.job.queue"]?.toSpanAttribute() == .string("default"))
        }
        let failed = try #require(performs.first { $0.status?.code == .error }, "\(performs.map(\.status))")
        #expect(failed.attributes["drover.job.id"]?.toSpanAttribute() == .int64(Int64(ids[0])))
        #expect(failed.attributes["drover.job.attempt"]?.toSpanAttribute() == .int64(1))
        #expect(failed.errors.count == 1 && failed.errors.first?.error is Flaky.Declined, "the error the attempt threw")
    }
}
