import Drover
import Tracing

/// The id of the request that caused some work, carried with it: an app's own instrument
/// (swift-distributed-tracing), the smallest there is. `signup register --request-id ID` enqueues
/// the welcome email inside a context that has it; Drover stores the header with the job, and the
/// worker restores it around `perform`, where `ServiceContext.current?.requestID` reads it. An app
/// with a tracer (swift-otel) bootstraps that instead and gets its spans the same way.
enum RequestIDKey: ServiceContextKey {
    typealias Value = String
}

extension ServiceContext {
    var requestID: String? {
        get { self[RequestIDKey.self] }
        set { self[RequestIDKey.self] = newValue }
    }
}

struct RequestIDInstrument: Instrument {
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
