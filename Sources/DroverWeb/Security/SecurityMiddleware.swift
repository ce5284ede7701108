import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation
import Hummingbird

/// What every request goes through, before and after its route: the `Host:` check (loopback
/// without a password), authentication, and the headers of every response, errors included.
struct SecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    let settings: WebSettings
    /// The paths that answer without a password.
    let publicPaths: Set<String>

    /// Scripts and styles from this server only, nothing inline; no framing; forms post here only.
    static var contentSecurityPolicy: String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        if let refusal = refusal(of: request) {
            response = refusal
        } else {
            do {
                response = try await next(request, context)
            } catch {
                response = Self.response(for: error, log: settings.log)
            }
        }
        Self.addHeaders(to: &response, path: request.uri.path)
        return response
    }

    /// Why the request is refused before its route runs, as the response; nil when it may go on.
    func refusal(of request: Request) -> Response? {
        if settings.checksHost, let authority = request.head.authority, !HostNames.isLoopback(authority: authority) {
            return WebRoute.text("This dashboard answers to localhost only (Host: \(authority) is not a loopback name).\n",
                                 status: .misdirectedRequest)
        }
        guard let password = settings.password, !publicPaths.contains(request.uri.path) else { return nil }
        if OfferedCredential(header: request.headers[.authorization]).matches(password) { return nil }
        return Response(status: .unauthorized, headers: [
            .wwwAuthenticate: "Basic realm=\"Drover\", charset=\"UTF-8\"", .contentType: "text/plain; charset=utf-8",
        ], body: .init(byteBuffer: ByteBuffer(string: "Authentication required: the dashboard's password (any user name), or Authorization: Bearer.\n")))
    }

    static func addHeaders(to response: inout Response, path: String) {
        response.headers[.contentSecurityPolicy] = contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "no-referrer"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.crossOriginOpenerPolicy] = "same-origin"
        response.headers[.crossOriginResourcePolicy] = "same-origin"
        response.headers[.cacheControl] = path.hasPrefix("/static/") ? "public, max-age=3600" : "no-store"
    }

    /// An error as a short plain-text answer; what went wrong in detail goes to the log, not to
    /// the page.
    static func response(for error: any Error, log: Log) -> Response {
        switch error {
        case let error as HTTPResponseError where error.status != .internalServerError:
            return WebRoute.text("\(error.status.code) \(error.status.reasonPhrase)\n", status: error.status)
        case let error as QueueError:
            return WebRoute.text(error.message + "\n", status: .badRequest)
        case let error as DatabaseError where DatabaseSession<Connection>.isOutage(error):
            log.warning("a page could not be served: the database does not answer", [("error", error.message)])
            return WebRoute.text("The database does not answer; Drover's log says why.\n", status: .serviceUnavailable)
        default:
            log.error("a page failed", [("error", "\(error)")])
            return WebRoute.text("Internal error; Drover's log says why.\n", status: .internalServerError)
        }
    }
}

/// What a `Host:` header names.
enum HostNames {
    /// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
    static func isLoopback(authority: String) -> Bool {
        var host = Substring(authority)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        let name = host.lowercased()
        return name == "localhost" || name.hasSuffix(".localhost") || ListenAddress.isLoopback(name)
    }
}

/// `HTTPField.Name`, whose module (swift-http-types) Hummingbird does not export whole.
typealias HeaderName = HTTPFields.Element.Name

extension HeaderName {
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
    static let crossOriginResourcePolicy = Self("Cross-Origin-Resource-Policy")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
}
