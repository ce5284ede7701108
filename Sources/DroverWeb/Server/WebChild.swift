import DroverQueue
import DroverRuntime
import Foundation

/// The supervisor's web child: ``WebServer`` made from the child's spec, for
/// ``runChildProcess(extraHandlers:services:jobServices:)``.
///
/// ```swift
/// exit(runChildProcess(services: WebChild.services))
/// ```
public enum WebChild {
    public static let services: [ProcessKind: ChildServiceFactory] = [.web: { spec, log in try make(spec: spec, log: log) }]

    static func make(spec: ChildSpec, log: Log) throws -> WebServer {
        guard let part = spec.web else { throw ValidationFailure("a web child's spec has no web part") }
        let password: String?
        do {
            password = try part.auth?.read(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationFailure("web.auth: \(error.description)")
        }
        var options = StoreOptions(
            schema: spec.schema, preserveFinishedJobs: spec.preserveFinishedJobs, applicationName: "drover web \(spec.name)",
            lockTimeout: .milliseconds(Int64(max(1000, spec.heartbeatIntervalMilliseconds / 2))), migrating: .never)
        options.password = spec.pgpassword
        options.networkTimeout = .milliseconds(Int64(spec.networkTimeoutMilliseconds))
        options.statementTimeout = .milliseconds(Int64(spec.statementTimeoutMilliseconds))
        return try WebServer(settings: WebSettings(
            listen: part.listen, readOnly: part.readOnly, password: password, databaseURL: spec.databaseURL, storeOptions: options, log: log))
    }
}
